"""Proxy-training commands: ``train`` and ``tune``."""

from __future__ import annotations

import typer
from rich.console import Console

from synthdspy.cli_common import SET_HELP, app, console, user_errors


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
