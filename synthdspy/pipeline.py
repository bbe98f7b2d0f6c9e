"""The compile and generate runs behind the CLI: config -> LMs -> seeds -> program -> files + MLflow."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthdspy import tracking
from synthdspy.config import Experiment
from synthdspy.lm import LMs, build_lms


@dataclass
class CompileOutputs:
    """Files and identifiers a compile run leaves behind."""

    program_path: Path
    paths: dict[str, Path]
    summary: dict[str, Any]
    tracking_uri: str
    run_id: str


def run_params(exp: Experiment, lms: LMs) -> dict[str, Any]:
    """Flattenable params for MLflow: the experiment config (no secrets) and the model of each role."""
    params = exp.model_dump(mode="json")
    params["lm_models"] = lms.describe()
    return params


def _enable_autolog(exp: Experiment) -> None:
    if not exp.tracking.autolog:
        return
    with contextlib.suppress(Exception):  # tracing is a bonus; never fail a run over it
        import dspy
        import mlflow

        mlflow.dspy.autolog(log_traces=True, log_traces_from_compile=False, log_traces_from_eval=True,
                            log_compiles=False, log_evals=False, silent=True)
        # autolog turns on DSPy's per-module usage tracking, which warns for every module that returns
        # records rather than a Prediction; synthdspy meters usage per LM role itself (synthdspy.lm).
        dspy.configure(track_usage=False)


def run_compile(exp: Experiment) -> CompileOutputs:
    """Compile ``exp``'s program and write program, reports and samples under ``exp.output.dir``.

    One MLflow run (tag ``kind=compile``) holds the flattened config, baseline and compiled metrics,
    usage, and the files as artifacts.

    Raises:
        synthdspy.configio.ConfigError: bad seeds or LM settings.
    """
    import mlflow

    from synthdspy.optimizers.compile import compile_program
    from synthdspy.report import compile_summary, write_compile_report
    from synthdspy.seeds.source import train_dev_seeds

    out = Path(exp.output.dir)
    lms = build_lms(exp.lm)
    train, dev = train_dev_seeds(exp.seeds)
    uri = tracking.configure(exp.tracking.uri, exp.tracking.experiment, out)
    _enable_autolog(exp)
    tags = {"kind": "compile", "optimizer": exp.compile.optimizer, "simulated": str(lms.simulated)}
    with tracking.run(f"compile-{exp.name}", params=run_params(exp, lms), tags=tags) as active:
        result = compile_program(exp, lms, train, dev)
        program_path = result.program.save_program(out / "compiled_program.json", extra={"experiment": exp.name})
        summary = compile_summary(exp.name, result, lms.describe(), lms.simulated)
        paths = write_compile_report(out, summary, result)
        tracking.log_metrics({**result.baseline.metrics("baseline"), **result.compiled.metrics("compiled")})
        tracking.log_metrics({f"optimize.{k}": v for k, v in result.optimize_usage.items()})
        tracking.log_metrics({"optimize.seconds": result.optimize_seconds})
        mlflow.log_artifact(str(program_path))
        for p in paths.values():
            mlflow.log_artifact(str(p))
        run_id = active.info.run_id
    return CompileOutputs(program_path, paths, summary, uri, run_id)


@dataclass
class GenerateOutputs:
    """Where a generate run wrote its store and exports, and what it counted."""

    store_dir: Path
    dataset_dir: Path
    stats: Any
    tracking_uri: str
    run_id: str


def run_generate(exp: Experiment, n: int, program_path: str | None = None, export: tuple[str, ...] = ("dataset",),
                 show_progress: bool = True) -> GenerateOutputs:
    """Generate ``n`` passed records with the (compiled) program into ``exp.output.dir/generate``.

    Resumes a previous run in the same directory. Exports the passed records as a Hugging Face
    dataset (``dataset/``), and optionally ``records.parquet`` / ``records.jsonl``.

    Raises:
        ValueError: ``program_path`` is not a synthdspy program file.
    """
    import mlflow

    from synthdspy.generation import generate
    from synthdspy.program import SynthesisProgram
    from synthdspy.seeds.source import experiment_seeds
    from synthdspy.store import RecordStore

    out = Path(exp.output.dir) / "generate"
    lms = build_lms(exp.lm)
    program = SynthesisProgram.load_program(program_path) if program_path else SynthesisProgram.from_experiment(exp)
    pool = max(n, exp.seeds.train_size + exp.seeds.dev_size)
    seeds = experiment_seeds(exp.seeds, pool)
    store = RecordStore(out / "store")
    uri = tracking.configure(exp.tracking.uri, exp.tracking.experiment, Path(exp.output.dir))
    tags = {"kind": "generate", "simulated": str(lms.simulated), "program_hash": program.program_hash}
    params = {**run_params(exp, lms), "n": n, "program": program_path or "(uncompiled)"}
    with tracking.run(f"generate-{exp.name}", params=params, tags=tags) as active:
        stats = generate(program, seeds, lms, store, n, show_progress=show_progress)
        dataset_dir = out / "dataset"
        for fmt in export:
            target = {"dataset": dataset_dir, "parquet": out / "records.parquet", "jsonl": out / "records.jsonl"}[fmt]
            store.export(target, fmt=fmt, passed_only=True, limit=n)
        tracking.log_metrics({"passed": stats.passed, "rejected": stats.rejected, "failed_units": stats.failed_units,
                              **lms.meter.metrics()})
        for name in ("units.jsonl", "failures.jsonl"):
            if (store.directory / name).exists():
                mlflow.log_artifact(str(store.directory / name))
        run_id = active.info.run_id
    return GenerateOutputs(out / "store", dataset_dir, stats, uri, run_id)
