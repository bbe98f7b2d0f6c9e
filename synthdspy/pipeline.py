"""The compile and generate runs behind the CLI: config -> LMs -> seeds -> program -> files + MLflow."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthdspy import startup_gc, tracking
from synthdspy.adapters import ParseStats
from synthdspy.config import Experiment
from synthdspy.llm_failures import RunAbortedError
from synthdspy.lm import LMs, build_lms
from synthdspy.records import content_hash
from synthdspy.usage import UsageMeter


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


@contextlib.contextmanager
def autolog_traces(enabled: bool) -> Iterator[None]:
    """MLflow DSPy autolog (traces only) inside the block, off again after it.

    Only around plain program runs (held-out evaluations, generation): inside optimizers, MLflow's
    patched ``dspy.Evaluate`` turns a failed evaluation into a ``None`` score that breaks DSPy's
    progress arithmetic, so optimization runs untraced.
    """
    if not enabled:
        yield
        return
    import dspy
    import mlflow

    mlflow.dspy.autolog(log_traces=True, log_traces_from_compile=False, log_traces_from_eval=True,
                        log_compiles=False, log_evals=False, silent=True)
    # autolog turns on DSPy's per-module usage tracking, which warns for every module that returns
    # records rather than a Prediction; synthdspy meters usage per LM role itself (synthdspy.lm).
    dspy.configure(track_usage=False)
    try:
        yield
    finally:
        mlflow.dspy.autolog(disable=True, silent=True)


def log_candidates(candidates: list) -> None:
    """One nested MLflow run per candidate the optimizer evaluated: its score, each predictor's
    instructions and demo count as params, and its predictors as a readable artifact."""
    import mlflow

    from synthdspy.report import predictors_markdown

    for rank, (score, program) in enumerate(candidates):
        params = {"rank": rank}
        for name, predictor in program.named_predictors():
            params[f"{name}.instructions"] = predictor.signature.instructions
            params[f"{name}.demos"] = len(predictor.demos)
        with tracking.run(f"candidate-{rank}", params=params, tags={"kind": "candidate"}, nested=True):
            tracking.log_metrics({"candidate.score": float(score)})
            mlflow.log_text(predictors_markdown(program), "predictors.md")


def config_hash(exp: Experiment) -> str:
    """Content hash of everything that shapes a compile (output and tracking settings excluded)."""
    return content_hash(exp.model_dump(mode="json", exclude={"output", "tracking"}), length=10)


def variant_name(exp: Experiment) -> str:
    """``compile.variant`` or ``<experiment>-<optimizer>-<config hash>``."""
    return exp.compile.variant or f"{exp.name}-{exp.compile.optimizer}-{config_hash(exp)}"


def run_compile(exp: Experiment) -> CompileOutputs:
    """Compile ``exp``'s program into a named variant under ``exp.output.dir/variants/<variant>/``.

    Writes ``compiled_program.json``, ``report.md``/``report.json``, ``predictors.md``,
    ``samples.jsonl`` and (with the cluster-agent objective) the frozen ``criteria.json``. One MLflow
    run per variant (tags ``kind=compile``, ``variant``, ``optimizer``) holds the flattened config,
    baseline and compiled held-out metrics, budget use, and the files as artifacts; MLflow's DSPy
    autolog adds traces of the held-out evaluations.

    Raises:
        synthdspy.configio.ConfigError: bad seeds or LM settings.
        RunAbortedError: the LMs failed (run-fatal error, or every held-out batch failed); nothing
            is left behind: no variant directory, no compiled program, no MLflow run.
    """

    variant = variant_name(exp)
    out = Path(exp.output.dir) / "variants" / variant
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _compile_into(exp, variant, out)
    except RunAbortedError:
        if created:  # no half-written variant: the directory, its files and its MLflow run go
            shutil.rmtree(out, ignore_errors=True)
        raise


def _compile_into(exp: Experiment, variant: str, out: Path) -> CompileOutputs:
    from synthdspy.metrics.objective import diversity_label
    from synthdspy.optimizers.compile import compile_program
    from synthdspy.seeds.source import train_dev_seeds

    lms = build_lms(exp.lm)
    train, dev = train_dev_seeds(exp.seeds)
    on = exp.tracking.enabled
    uri = tracking.configure(exp.tracking.uri, exp.tracking.experiment, Path(exp.output.dir)) if on else ""
    chash = config_hash(exp)
    baseline_hash = content_hash(exp.model_dump(mode="json", exclude={"output", "tracking", "compile"}), length=10)
    tags = {"kind": "compile", "variant": variant, "optimizer": exp.compile.optimizer, "config_hash": chash,
            "baseline_hash": baseline_hash, "simulated": str(lms.simulated),
            "diversity_metric": diversity_label(exp.objective)}
    with tracking.run(variant, params=run_params(exp, lms), tags=tags) if on else contextlib.nullcontext() as active:
        run_id = active.info.run_id if on else ""
        try:
            result = compile_program(exp, lms, train, dev, out_dir=out,
                                     traced=lambda: autolog_traces(on and exp.tracking.autolog))
        except RunAbortedError as exc:
            failed: RunAbortedError | None = exc
        else:
            failed = None
            program_path, paths, summary = _save_compile(exp, variant, out, chash, lms, result)
            if on:
                _log_compile(exp, variant, out, chash, result, [program_path, *paths.values()])
    if failed is not None:
        if on:
            import mlflow

            mlflow.delete_run(run_id)  # a failed compile leaves no "compiled" run behind
        raise failed
    return CompileOutputs(program_path, paths, summary, uri, run_id)


def _save_compile(exp: Experiment, variant: str, out: Path, chash: str, lms: LMs,
                  result: Any) -> tuple[Path, dict[str, Path], dict[str, Any]]:
    """Save the compiled program and the reports into ``out``."""
    from synthdspy.report import compile_summary, write_compile_report

    program_path = result.program.save_program(
        out / "compiled_program.json", extra={"experiment": exp.name, "variant": variant, "config_hash": chash})
    summary = compile_summary(exp.name, variant, chash, exp.compile.optimizer, result, lms)
    return program_path, write_compile_report(out, summary, result), summary


def _log_compile(exp: Experiment, variant: str, out: Path, chash: str, result: Any, files: list[Path]) -> None:
    """Log a compile's metrics, candidates and files to the active MLflow run, and the variant as an
    MLflow model with its prompts in the Prompt Registry."""
    import mlflow

    tracking.log_metrics({**result.baseline.metrics("baseline"), **result.compiled.metrics("compiled")})
    tracking.log_metrics({f"optimize.{k}": v for k, v in result.optimize_usage.items()})
    tracking.log_metrics({f"criteria.{k}": v for k, v in result.criteria_usage.items()})
    used = result.budget["used"]
    tracking.log_metrics({"optimize.seconds": result.optimize_seconds,
                          **{f"budget.used.{k}": v for k, v in used.items()}})
    mlflow.set_tag("stopped_by_budget", str(result.budget["stopped_by_budget"] or ""))
    log_candidates(result.candidates)
    for p in [*files, out / "criteria.json"]:
        if p.exists():
            mlflow.log_artifact(str(p))
    from synthdspy.mlflow_variants import log_variant

    log_variant(files[0], exp, variant, chash)


@dataclass
class GenerateOutputs:
    """Where a generate run wrote its store and exports, and what it counted and spent."""

    store_dir: Path
    dataset_dir: Path
    stats: Any
    tracking_uri: str
    run_id: str
    meter: UsageMeter
    parse_stats: ParseStats
    exported: int = 0
    spent_before_usd: float = 0.0  # by earlier invocations on the same store (its spend ledger)


def _store_identity(program: Any, exp: Experiment) -> dict[str, Any]:
    from synthdspy.lm import effective_api_base

    gen = exp.lm.generator
    return {"program_hash": program.program_hash, "task": program.task_cfg.name, "generator": gen.model,
            "api_base": effective_api_base(gen)}


def _first_answer(exp: Experiment, lms: LMs) -> Callable[[], bool] | None:
    """A predicate that holds once the run's first LM request has been answered (or has failed):
    MLflow's set-up waits for it (:class:`~synthdspy.tracking.BackgroundSetup`), so the imports and
    work that request needs have the interpreter to themselves. None where nothing would signal it:
    roles on the in-process simulator, batch rounds, the Ray engine's workers."""
    before = lms.requests_finished()
    local = exp.generate.engine == "local" and not exp.generate.batch
    real = any(not getattr(exp.lm, r).is_simulated for r in ("generator", "judge"))
    return (lambda: lms.requests_finished() > before) if local and real else None


def run_generate(exp: Experiment, n: int, program_path: str | None = None, export: tuple[str, ...] = ("dataset",),
                 show_progress: bool = True, max_usd: float | None = None,
                 unit_limit: int | None = None) -> GenerateOutputs:
    """Generate ``n`` passed records with the (compiled) program into ``exp.output.dir/generate``.

    Resumes a previous run in the same directory (which it locks for its life). Exports the passed
    records as a Hugging Face dataset (``dataset/``), and optionally ``records.parquet`` /
    ``records.jsonl``. ``max_usd`` caps the dollars spent by all runs on this directory together
    (``store/spend.json``: a re-run gets what is left of the cap); ``unit_limit`` runs only that many
    units (``--estimate``).

    Raises:
        ConfigError: ``program_path`` is not a valid synthdspy program file, the output directory
            holds records of another program or endpoint, another run holds its lock, ``n < 1``,
            or ``max_usd`` is set while a role's model has no price.
        RunAbortedError: a run-fatal LM error or the circuit breaker.
    """
    from synthdspy.configio import ConfigError
    from synthdspy.generate_report import ExportMarker
    from synthdspy.generate_tracking import GenerateTracking
    from synthdspy.generation import generate
    from synthdspy.pricing import check_budget_priced
    from synthdspy.program import SynthesisProgram
    from synthdspy.run_dir import SpendLedger, claim_store, exclusive_lock
    from synthdspy.seeds.source import experiment_seeds
    from synthdspy.store import RecordStore

    if n < 1:
        raise ConfigError(f"-n {n}: the number of records to generate must be at least 1")
    if max_usd is not None:
        check_budget_priced({r: (getattr(exp.lm, r).model, getattr(exp.lm, r).price) for r in ("generator", "judge")},
                            f"--max-usd {max_usd:g}")
    out = Path(exp.output.dir) / "generate"
    program = SynthesisProgram.for_experiment(exp, program_path or None)  # warns when they differ
    pool = max(n, exp.seeds.train_size + exp.seeds.dev_size)
    seeds = experiment_seeds(exp.seeds, pool)
    with exclusive_lock(out):
        claim_store(out / "store", _store_identity(program, exp))
        ledger = SpendLedger(out / "store")  # --max-usd caps the directory's run, earlier invocations included
        lms = build_lms(exp.lm)
        lms.meter.on_cost = ledger.record
        tags = {"kind": "generate", "simulated": str(lms.simulated), "program_hash": program.program_hash}
        params = {**run_params(exp, lms), "n": n, "program": program_path or "(uncompiled)"}
        with GenerateTracking(exp, f"generate-{exp.name}", params, tags, after=_first_answer(exp, lms)) as run, \
                RecordStore(out / "store") as store:
            failure: BaseException | None = None
            try:
                from synthdspy.trace_sampling import unit_traces  # [tracking] trace_units/_failures/_max_chars

                with autolog_traces(run.traced), unit_traces(exp.tracking):
                    from synthdspy.batch.rounds import generate_runner  # [generate] batch: synthdspy.batch

                    online = generate
                    if exp.generate.engine == "ray":  # [generate] engine: synthdspy.ray_engine
                        from synthdspy.ray_engine.driver import ray_runner

                        online = ray_runner(exp)
                    startup_gc.release()
                    stats = generate_runner(exp, online)(program, seeds, lms, store, n, show_progress=show_progress,
                                                         max_usd=None if max_usd is None else max_usd - ledger.prior,
                                                         unit_limit=unit_limit)
            except BaseException as exc:  # logged to the run first, then raised
                failure = exc
            ledger.record(lms.meter.cost_usd, force=True)
            run.log_units(store, lms)
            if failure is not None:
                raise failure
            store.flush()
            dataset_dir = out / "dataset"
            exported = min(n, store.n_passed)
            marker = ExportMarker(out, store, n, export)
            if marker.current():  # nothing changed since the last export: a re-run of a finished run
                run.log_unchanged(stats, exported)
            else:
                marker.start()
                for fmt, target in marker.targets.items():
                    store.export(target, fmt=fmt, passed_only=True, limit=n)
                from synthdspy.dataset_card import generation_facts  # records table, gate report and card facts

                run.log_outputs(out, store, lambda: generation_facts(program, exp, lms, program_path), stats,
                                exported)
                marker.done()
    return GenerateOutputs(out / "store", dataset_dir, stats, run.uri, run.run_id, lms.meter, lms.parse_stats,
                           exported, ledger.prior)
