"""The ``synthdspy`` command line: thin wrappers that parse, load config and call library functions.

User errors (:class:`synthdspy.configio.ConfigError` and friends) are printed as one red message
with exit code 2, never as a stack trace.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from synthdspy.configio import ConfigError
from synthdspy.llm_failures import RunAbortedError

app = typer.Typer(help="Synthetic training data as optimizable DSPy programs.", no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)  # long paths and commands stay on one line
F = TypeVar("F", bound=Callable[..., Any])

DOCTOR_TIMEOUT_S = 15.0  # seconds per request, no retries: doctor answers within 15 s per role
SET_HELP = "Override a config key, e.g. --set compile.optimizer=bootstrap_rs (repeatable)."


def main() -> None:
    """The console entry point (``synthdspy``, ``python -m synthdspy``): run the command, then exit
    without tearing down every imported module.

    Interpreter finalization of DSPy, LiteLLM, MLflow, datasets and torch takes 1.5-3 s on 2 cores
    after the work is done. Exit handlers still run (MLflow's trace export, logging) and the
    standard streams are flushed, then the process ends with the command's exit code. An uncaught
    exception takes Python's normal path.
    """
    import atexit
    import os
    import sys

    try:
        app(prog_name="synthdspy")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, (int, type(None))):
            print(exc.code, file=sys.stderr)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _user_error_types() -> tuple[type[Exception], ...]:
    """Errors caused by the user's files (imported on demand: the store pulls in ``datasets``)."""
    from synthdspy.seeds.loading import SeedLoadError
    from synthdspy.store import StoreError

    return ConfigError, FileNotFoundError, SeedLoadError, StoreError, RunAbortedError


def user_errors(fn: F) -> F:
    """Turn user errors raised by ``fn`` (a bad config, seed file, program file or store) into a
    one-line message, with secret values redacted, and exit code 2; a run stopped by a run-fatal
    LM error or the circuit breaker (:class:`~synthdspy.llm_failures.RunAbortedError`) exits 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not isinstance(exc, _user_error_types()):
                raise
            from rich.markup import escape

            from synthdspy.tracking import scrub_env_secrets

            console.print(f"[bold red]error:[/] {escape(scrub_env_secrets(str(exc)))}", highlight=False)
            raise typer.Exit(1 if isinstance(exc, RunAbortedError) else 2) from None

    return wrapper  # type: ignore[return-value]


def _load(experiment: str, overrides: list[str] | None, seeds: str | None = None):
    from synthdspy.config import load_experiment

    return load_experiment(experiment, overrides or [], seeds=seeds)


@app.command("compile")
@user_errors
def compile_cmd(
    experiment: str = typer.Argument(..., help="Experiment TOML file."),
    set_: list[str] = typer.Option(None, "--set", help=SET_HELP),
    seeds: str = typer.Option(None, "--seeds", help="Seed file or hf:// id replacing seeds.source."),
) -> None:
    """Optimize the experiment's program on the train seeds; compare baseline and compiled on dev seeds."""
    from synthdspy.pipeline import run_compile
    from synthdspy.report import summary_table
    from synthdspy.tracking import ui_command

    exp = _load(experiment, set_, seeds)
    out = run_compile(exp)
    Console().print(summary_table(out.summary))
    for note in out.summary.get("notes", []):
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"LM usage (billed, whole compile): {out.summary['usage']['line']}")
    console.print(f"compiled program: {out.program_path}")
    console.print(f"report:           {out.paths['report_md']}  ({out.paths['report_json'].name})")
    console.print(f"MLflow run:       {out.run_id}  ->  {ui_command(out.tracking_uri)}")


@app.command("generate")
@user_errors
def generate_cmd(
    experiment: str = typer.Argument(..., help="Experiment TOML file."),
    n: int = typer.Option(100, "-n", help="Number of passed records to produce."),
    program: str = typer.Option(None, "--program", help="Compiled program JSON (default: uncompiled)."),
    export: list[str] = typer.Option(["dataset"], "--export", help="dataset, parquet and/or jsonl."),
    set_: list[str] = typer.Option(None, "--set", help=SET_HELP),
    seeds: str = typer.Option(None, "--seeds", help="Seed file or hf:// id replacing seeds.source."),
    max_usd: float = typer.Option(None, "--max-usd", help="Stop launching units once this many dollars are spent "
                                  "(in-flight units finish; re-run with a higher cap to resume)."),
    estimate: bool = typer.Option(False, "--estimate", help="Run a few units, then project tokens, cost and time "
                                  "for -n (the records are kept; a later run resumes from them)."),
) -> None:
    """Generate N records with gates applied; resumes an interrupted run in the same output directory.

    Exit codes: 0 all N records passed; 1 fewer than N (LM failures, the circuit breaker, the
    spending cap, or rollouts spent); 2 a configuration or input error.
    """
    from synthdspy.generate_report import print_estimate, print_summary
    from synthdspy.pipeline import run_generate

    bad = [e for e in export if e not in ("dataset", "parquet", "jsonl")]
    if bad:
        raise ConfigError(f"--export {bad}: expected dataset, parquet or jsonl")
    if max_usd is not None and max_usd <= 0:
        raise ConfigError(f"--max-usd {max_usd:g}: must be a positive number of dollars")
    exp = _load(experiment, set_, seeds)
    units = max(3, exp.lm.generator.concurrency) if estimate else None
    out = run_generate(exp, n, program, tuple(export), max_usd=max_usd, unit_limit=units)
    if estimate:
        print_estimate(console, out, n)
        return
    print_summary(console, out, n, exp)
    if out.stats.passed < n:
        raise typer.Exit(1)


@app.command("tasks")
def tasks_cmd() -> None:
    """List the registered generation tasks and quality gates with their parameters."""
    from rich.table import Table

    from synthdspy.catalog import GATES, TASKS
    from synthdspy.registry import describe

    for title, table in (("tasks", TASKS), ("gates", GATES)):
        t = Table(title=title)
        for col in ("name", "what it does", "parameters (type = default)"):
            t.add_column(col)
        for name in sorted(table):
            entry = table[name]
            params = "\n".join(f"{p}: {ty} = {d!r}" for p, ty, d in describe(entry)) or "-"
            t.add_row(name, entry.summary, params)
        Console().print(t)


@app.command("doctor")
@user_errors
def doctor_cmd(
    experiment: str = typer.Argument(..., help="Experiment TOML file."),
    set_: list[str] = typer.Option(None, "--set", help=SET_HELP),
) -> None:
    """Check that each configured LM role answers a one-line request (15 s timeout, no retries)."""
    from synthdspy.llm_failures import classify
    from synthdspy.lm import ROLES, build_lms
    from synthdspy.tracking import scrub_env_secrets

    exp = _load(experiment, set_)
    quick = {"timeout_s": DOCTOR_TIMEOUT_S, "num_retries": 0}
    lms = build_lms(exp.lm.model_copy(update={r: getattr(exp.lm, r).model_copy(update=quick) for r in ROLES}))
    failures = 0
    for role in ROLES:
        lm = getattr(lms, role)
        try:
            answer = lm("Reply with the single word: ready", cache=False)
            console.print(f"[green]ok[/]   {role:<10} {lm.model}: {str(answer[0])[:60]!r}")
        except Exception as exc:
            failures += 1
            detail = scrub_env_secrets(" ".join(str(exc).split()))[:200]
            failure = classify(exc)
            console.print(f"[red]fail[/] {lms.endpoints[role]}: {failure.kind}:{failure.reason}: {detail}")
    if failures:
        raise typer.Exit(1)

DIVERSITY_METRICS = (
    "context_length,self_repetition,ngram_diversity,compression_ratio,"
    "homogenization_rougel,homogenization_bleu,kmeans_score,vendi_score"
)


@app.command()
@user_errors
def diversity(
    data: list[str] = typer.Argument(..., help="JSONL/Parquet files or datasets directories."),
    text_field: str = typer.Option("text", "--text-field", "-f", help="Field holding the text."),
    metrics: str = typer.Option(DIVERSITY_METRICS, "--metrics", help="Comma-separated metric names; also "
                                "perplexity,perplexity_gap (need --ppl-model). llm_cluster is added by --lm."),
    output: str = typer.Option("diversity_report", "--output", "-o", help="Output directory."),
    ppl_model: list[str] = typer.Option(None, "--ppl-model", help="A transformers causal-LM dir or a "
                                        "`synthdspy train` output dir (small model first, then large)."),
    lm: str = typer.Option(None, "--lm", help="Cluster-agent judge LM (LiteLLM string or sim/...)."),
    api_base: str = typer.Option(None, "--api-base", help="Server of --lm (vLLM, Ollama, a proxy)."),
    api_key_env: str = typer.Option(None, "--api-key-env", help="Environment variable holding --lm's API key."),
    cluster_rounds: int = typer.Option(5000, "--cluster-rounds", "-N", help="N (paper 5000)."),
    k_samples: int = typer.Option(10, "--k-samples", "-K", help="K (paper 10)."),
    criteria_rounds: int = typer.Option(100, "--criteria-rounds", "-M", help="M (paper 100)."),
    criteria_samples: int = typer.Option(5, "--criteria-samples", "-J", help="J, samples per criteria round "
                                         "(paper 5)."),
    n_criteria: int = typer.Option(5, "--n-criteria", help="k, metadata and metrics kept each."),
    threads: int = typer.Option(8, "--threads", help="Concurrent cluster-agent LM calls."),
    adaptive_tol: float = typer.Option(None, "--adaptive-tol", help="Stop at this CI half-width."),
    criteria: str = typer.Option(None, "--criteria", help="Frozen criteria JSON to reuse."),
    max_pairwise_texts: int = typer.Option(300, "--max-pairwise-texts", help="Homogenization cap."),
    seed: int = typer.Option(0, "--seed"),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow URI (default: SQLite in output)."),
) -> None:
    """Measure the diversity of text sets: lexical, embedding, perplexity and LLM cluster-agent metrics."""
    from synthdspy.metrics.diversity.report import markdown_table, run_diversity

    judge = cluster_config = None
    if lm is not None:
        from synthdspy.lm import lm_from_model_string
        from synthdspy.metrics.diversity.cluster_agent import ClusterAgentConfig

        judge = lm_from_model_string(lm, role="judge", api_base=api_base, api_key_env=api_key_env)
        cluster_config = ClusterAgentConfig(
            cluster_rounds=cluster_rounds, k_samples=k_samples, criteria_rounds=criteria_rounds,
            criteria_samples=criteria_samples, n_criteria=n_criteria, num_threads=threads,
            adaptive_tol=adaptive_tol, seed=seed,
        )
    report = run_diversity(
        data, text_field=text_field, metrics=[m.strip() for m in metrics.split(",") if m.strip()],
        output_dir=output, ppl_models=ppl_model or [], lm=judge, cluster_config=cluster_config,
        criteria_path=criteria, max_pairwise_texts=max_pairwise_texts, seed=seed, tracking_uri=tracking_uri,
    )
    if report.simulated:
        console.print("[bold yellow]llm_cluster: SIMULATED LM, not a real model's judgement[/]")
    typer.echo(markdown_table(report))
    if report.criteria_usage is not None:
        console.print(f"cluster-agent LM usage (billed, cache hits free): {report.llm_usage()}")
    console.print(f"wrote {report.output_dir}/diversity.json and {len(report.figures)} charts; "
                  f"MLflow: {report.tracking_uri}")


@app.command("compare")
@user_errors
def compare_cmd(
    output_dir: str = typer.Argument("runs/quickstart", help="An experiment's output directory (its mlflow.db)."),
    experiment: str = typer.Option(None, "--experiment", help="Only this MLflow experiment."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow tracking URI (default: OUTPUT_DIR's)."),
) -> None:
    """Table of compiled variants and baselines, and a quality-vs-diversity Pareto plot (PNG)."""
    from pathlib import Path

    from rich.table import Table

    from synthdspy.compare import load_variants, pareto_front, pareto_plot

    if tracking_uri is None:
        db = Path(output_dir) / "mlflow.db"
        if not db.exists():
            raise ConfigError(f"{db}: no MLflow database (compile an experiment first, or pass --tracking-uri)")
        tracking_uri = f"sqlite:///{db.resolve()}"
    try:
        rows = load_variants(tracking_uri, experiment)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if not rows:
        raise ConfigError(f"no compile runs in {tracking_uri}")
    front = {r.run_id + r.variant for r in pareto_front(rows)}
    sim = " (SIMULATED LM: not real results)" if any(r.simulated for r in rows) else ""
    table = Table(title=f"variants{sim}")
    columns = ("variant", "optimizer", "score", "quality", "diversity", "diversity metric", "pass rate",
               "opt. tokens", "opt. $", "Pareto")
    for col in columns:
        table.add_column(col)
    for r in rows:
        interval = f" [{r.diversity_low:.3f}, {r.diversity_high:.3f}]" if r.diversity_low is not None else ""
        table.add_row(r.variant, r.optimizer, f"{r.score:.3f}", f"{r.quality:.3f}", f"{r.diversity:.3f}{interval}",
                      r.diversity_metric, f"{r.pass_rate:.2f}", f"{r.optimize_tokens:.0f}",
                      f"{r.optimize_cost_usd:.4f}", "*" if r.run_id + r.variant in front else "")
    table.caption = "Pareto: not dominated in (quality, diversity) by a row with the same diversity metric."
    Console(width=160).print(table)
    png = pareto_plot(rows, Path(output_dir) / "pareto.png")
    console.print(f"Pareto plot: {png}")


@app.command("gate-report")
@user_errors
def gate_report_cmd(
    run_dir: str = typer.Argument(..., help="A generate run's output dir, or its store directory."),
) -> None:
    """Pass rate and common failure reasons per gate; adversarial_qa confusion matrix. Writes gate_report.*"""
    from synthdspy.gate_report import gate_report, to_markdown, write_gate_report

    report = gate_report(run_dir)
    typer.echo(to_markdown(report))
    json_path, md_path = write_gate_report(report)
    console.print(f"wrote {json_path} and {md_path}")


@app.command()
@user_errors
def train(
    config: str = typer.Argument(..., help="Training config (TOML), e.g. experiments/train_mixture.toml."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    output: str = typer.Option("", "--output", help="Output directory (default: runs/train/<name>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT/checkpoint.pt."),
) -> None:
    """Train one proxy GPT on a data mixture and print the final loss of every validation split."""
    from rich.table import Table

    from synthdspy.training import EvalEvent, load_train_config
    from synthdspy.training import train as run_training

    cfg = load_train_config(config, set_)
    if output:
        cfg = cfg.model_copy(update={"output_dir": output})
    console.print(f"training [bold]{cfg.name}[/]: {cfg.total_steps} steps x {cfg.tokens_per_step} tokens")

    def progress(event: EvalEvent) -> None:
        shown = "  ".join(f"{k} {v.nats_per_token:.3f}" for k, v in list(event.losses.items())[:4])
        more = f"  (+{len(event.losses) - 4} splits)" if len(event.losses) > 4 else ""
        console.print(f"step {event.step}/{cfg.total_steps} ({event.reason})  {shown}{more}", highlight=False)

    result = run_training(cfg, on_eval=progress, resume=resume)
    table = Table(title=f"{result.name}: {result.steps} steps, {result.tokens:,} tokens, {result.device}")
    table.add_column("split")
    table.add_column("loss (nats/token)", justify="right")
    table.add_column("bits/byte", justify="right")
    for name, loss in result.losses.items():
        table.add_row(name, f"{loss.nats_per_token:.4f}", f"{loss.bits_per_byte:.4f}")
    Console().print(table)
    mfu = f", MFU {result.mfu:.1%}" if result.mfu is not None else ""
    speed = f"{result.tokens_per_s:,.0f} tokens/s{mfu}, {result.elapsed_s:.0f} s"
    console.print(f"{speed}; output in {result.output_dir} (continue a stopped run with --resume)")
    if result.tracking_uri:
        from synthdspy.tracking import ui_command

        console.print(f"MLflow run {result.run_id}: {ui_command(result.tracking_uri)}")


@app.command()
@user_errors
def tune(
    experiment: str = typer.Argument(..., help="Tuning experiment (TOML), e.g. experiments/mixture_tuning.toml."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    workers: int = typer.Option(1, "--workers", help="Worker processes on this machine sharing the study."),
    storage: str = typer.Option("", "--storage", help="Optuna storage: RDB URL or journal:PATH (default SQLite)."),
    join: bool = typer.Option(False, "--join", help="Only run trials of a study another `tune` owns."),
) -> None:
    """Tune mixture weights and curriculum pacing by proxy trainings; compare with baselines."""
    from rich.live import Live
    from rich.table import Table

    from synthdspy.tuning.config import load_tune_config
    from synthdspy.tuning.study import tune as run_tune

    cfg = load_tune_config(experiment, set_ + ([f"study.storage={storage}"] if storage else []))

    def progress_table(rows) -> Table:
        table = Table(title=f"{cfg.name}: {cfg.train.total_steps} steps x {cfg.train.tokens_per_step} tokens per trial")
        for col in ("study", "finished", "pruned", "running", "failed", "best target"):
            table.add_column(col, justify="right")
        for p in rows:
            best = "-" if p.best is None else f"{p.best:.4f}"
            table.add_row(p.kind, f"{p.finished}/{p.total}", str(p.pruned), str(p.running), str(p.failed), best)
        return table

    with Live(progress_table([]), console=console, refresh_per_second=2) as live:
        summary = run_tune(cfg, workers=workers, join=join, on_progress=lambda rows: live.update(progress_table(rows)))
    if summary is None:
        return
    table = Table(title=f"{cfg.name}: {cfg.objective.metric} (target = {dict(cfg.objective.target)})")
    for col in ("run", "trial", "target", "worst split", "regret", "mixture", "schedule"):
        table.add_column(col, justify="right" if col in ("trial", "target", "worst split", "regret") else "left")
    for r in summary.rows:
        mix = " ".join(f"{g}={w:.2f}" for g, w in sorted(r.weights.items(), key=lambda kv: -kv[1]))
        sched = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.schedule.items()
                         if not isinstance(v, list)) + "".join(
            f" {k}=[{', '.join(f'{x:.2f}' for x in v)}]" for k, v in r.schedule.items() if isinstance(v, list))
        table.add_row(r.label, str(r.number), f"{r.target:.4f}", f"{r.worst:.4f}", f"{r.regret:+.4f}", mix, sched)
    Console(width=200).print(table)
    counts = summary.counts["tuned"]
    console.print(f"tuner: {counts['complete']} complete, {counts['pruned']} pruned, {counts['fail']} failed; "
                  f"{summary.elapsed_s:.0f} s; report in {cfg.out_dir / 'report'}")
