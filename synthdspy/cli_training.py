"""Proxy-training commands: ``train``, ``tune``, ``sample``, ``collapse`` and ``curriculum-compare``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from synthdspy.cli_common import OUTPUT_HELP, SET_HELP, app, at_least_one, console, output_override, user_errors


@app.command()
@user_errors
def train(
    config: str = typer.Argument(..., help="Training config (TOML), e.g. experiments/train_mixture.toml."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP["train"]),
    output: str = typer.Option("", "--output", "-o", help=OUTPUT_HELP),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT/checkpoint.pt."),
) -> None:
    """Train one proxy GPT on a data mixture and print the final loss of every validation split.

    Under ``torchrun`` the processes train together (DistributedDataParallel); rank 0 prints."""
    from rich.table import Table

    from synthdspy.training import EvalEvent, load_train_config
    from synthdspy.training import train as run_training
    from synthdspy.training.distributed import is_main_process

    cfg = load_train_config(config, set_ + output_override(output))
    main = is_main_process()
    if main:
        console.print(f"training [bold]{cfg.name}[/]: {cfg.total_steps} steps x {cfg.tokens_per_step} tokens")

    def progress(event: EvalEvent) -> None:
        shown = "  ".join(f"{k} {v.nats_per_token:.3f}" for k, v in list(event.losses.items())[:4])
        more = f"  (+{len(event.losses) - 4} splits)" if len(event.losses) > 4 else ""
        console.print(f"step {event.step}/{cfg.total_steps} ({event.reason})  {shown}{more}", highlight=False)

    result = run_training(cfg, on_eval=progress, resume=resume)
    if not main:
        return
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
    config: str = typer.Argument(..., help="Tuning config (TOML), e.g. experiments/mixture_tuning.toml."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP["tune"]),
    output: str = typer.Option("", "--output", "-o", help=OUTPUT_HELP),
    workers: int = typer.Option(1, "--workers", help="Worker processes on this machine sharing the study."),
    storage: str = typer.Option("", "--storage", help="Optuna storage: RDB URL or journal:PATH (default SQLite)."),
    join: bool = typer.Option(False, "--join", help="Only run trials of a study another `tune` owns."),
) -> None:
    """Tune mixture weights and curriculum pacing by proxy trainings; compare with baselines."""
    from rich.live import Live
    from rich.table import Table

    from synthdspy.tuning.config import load_tune_config
    from synthdspy.tuning.study import progress_printer
    from synthdspy.tuning.study import tune as run_tune

    cfg = load_tune_config(config, set_ + output_override(output) + ([f"study.storage={storage}"] if storage else []))

    def progress_table(rows) -> Table:
        table = Table(title=f"{cfg.name}: {cfg.train.total_steps} steps x {cfg.train.tokens_per_step} tokens per trial")
        for col in ("study", "finished", "pruned", "running", "failed", "best target"):
            table.add_column(col, justify="right")
        for p in rows:
            best = "-" if p.best is None else f"{p.best:.4f}"
            table.add_row(p.kind, f"{p.finished}/{p.total}", str(p.pruned), str(p.running), str(p.failed), best)
        return table

    if not console.is_terminal:  # a log or a pipe: a live table would show nothing until the end
        lines = progress_printer(lambda line: console.print(line, markup=False, highlight=False))
        summary = run_tune(cfg, workers=workers, join=join, on_progress=lines)
    else:
        with Live(progress_table([]), console=console, refresh_per_second=2) as live:
            summary = run_tune(cfg, workers=workers, join=join,
                               on_progress=lambda rows: live.update(progress_table(rows)))
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
    console.print(summary.verdict, highlight=False)
    counts = summary.counts["tuned"]
    console.print(f"tuner: {counts['complete']} complete, {counts['pruned']} pruned, {counts['fail']} failed; "
                  f"{summary.elapsed_s:.0f} s; report in {cfg.out_dir / 'report'}")


@app.command()
@user_errors
def transfer(
    study_dir: str = typer.Argument(..., help="Output directory of a `synthdspy tune` study, e.g. runs/NAME."),
    target: str = typer.Option(..., "--target", help="Transfer experiment (TOML): experiments/mixture_transfer.toml."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP["transfer"]),
) -> None:
    """Retrain a study's best, baseline and random mixtures at a larger scale; rank correlation and regret."""
    from synthdspy.transfer.config import load_transfer_config
    from synthdspy.transfer.run import transfer as run_transfer

    cfg = load_transfer_config(target, set_)
    s = run_transfer(cfg, study_dir, on_progress=lambda msg: console.print(msg, highlight=False))
    iv, r = s.interval, s.regret
    console.print(f"Spearman rho {s.rho:.3f} [{iv.low:.3f}, {iv.high:.3f}] ({iv.confidence:.0%} bootstrap); "
                  f"proxy's pick {s.mixtures[r.pick].label} ranks {r.target_rank}/{len(s.mixtures)} at target "
                  f"scale, regret {r.regret:+.4f} {s.metric}; report in {cfg.out_dir / 'report'}", highlight=False)


@app.command()
@user_errors
def sample(
    model_dir: str = typer.Argument(..., help="Output directory of `synthdspy train` (checkpoint.pt, tokenizer.json)."),
    n: int = typer.Option(..., "-n", help="Number of samples (documents).", callback=at_least_one),
    output: str = typer.Option(..., "-o", "--output", help="JSONL file to write ({\"text\": ...} per line)."),
    temperature: float = typer.Option(1.0, "--temperature", help="Softmax temperature; 0 is greedy decoding."),
    max_tokens: int = typer.Option(256, "--max-tokens", help="Most tokens generated per sample."),
    top_k: int = typer.Option(0, "--top-k", help="Keep the k most likely tokens (0: all)."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling: keep tokens up to this mass (1: all)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed and batch size: same samples)."),
    batch_size: int = typer.Option(64, "--batch-size", help="Samples generated together."),
    prompt: str = typer.Option("", "--prompt", help="Text every sample starts with (kept in the output)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
) -> None:
    """Sample documents from a trained proxy model into JSONL that `synthdspy train` reads as a source."""
    import itertools
    import time

    from synthdspy.configio import ConfigError
    from synthdspy.training.sampling import iter_samples, load_for_sampling, write_jsonl

    if n < 1 or not 0 < top_p <= 1 or top_k < 0:
        raise ConfigError(f"need -n >= 1, 0 < --top-p <= 1 and --top-k >= 0 (got {n}, {top_p}, {top_k})")
    start = time.perf_counter()
    model, tok = load_for_sampling(model_dir, device)
    rows = iter_samples(model, tok, max_tokens, temperature, top_k or None, top_p, seed, min(batch_size, n), prompt)
    samples = list(itertools.islice(rows, n))
    path = write_jsonl(samples, output)
    tokens = sum(s.n_tokens for s in samples)
    console.print(f"{n} samples, {tokens:,} tokens generated in {time.perf_counter() - start:.1f} s -> {path}")
    console.print(f'train on them: [[sources]] path = "{path}", format = "jsonl", template = "{{text}}"',
                  markup=False, highlight=False)


@app.command("curriculum-compare")
@user_errors
def curriculum_compare(
    config: str = typer.Argument(..., help="Training config with a [curriculum], e.g. experiments/train_mixture.toml."),
    seeds: int = typer.Option(3, "--seeds", help="Seeds per schedule (training seeds config.seed + 0, 1, ...)."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP["curriculum-compare"]),
    output: str = typer.Option("", "--output", "-o", help="Output directory (default: runs/curriculum/<name>)."),
    workers: int = typer.Option(1, "--workers", help="Training processes in parallel (2 on a 2-core machine)."),
) -> None:
    """Every curriculum schedule family against no curriculum at equal tokens: table, plot and JSON."""
    from synthdspy.training import load_train_config
    from synthdspy.training.curriculum_compare import ARMS, compare

    cfg = load_train_config(config, set_)
    out = output or f"runs/curriculum/{cfg.name}"
    console.print(f"{len(ARMS)} schedules x {seeds} seeds, {cfg.total_steps} steps x {cfg.tokens_per_step} tokens each")
    summary = compare(cfg, seeds, out, workers, on_run=lambda r: console.print(
        f"{r.arm} seed {r.seed}: target {r.target:.4f} bits/byte, {r.tokens:,} tokens, {r.elapsed_s:.0f} s",
        highlight=False))
    console.print(Path(summary["paths"]["table"]).read_text(encoding="utf-8"), markup=False, highlight=False)
    console.print(f"table, plot and JSON in {out}")


@app.command()
@user_errors
def collapse(
    config: str = typer.Argument(..., help="Collapse config (TOML), e.g. experiments/model_collapse.toml."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP["collapse"]),
    output: str = typer.Option("", "--output", "-o", help="Output directory (over [output] dir; default runs/<name>)."),
) -> None:
    """Model collapse: generations trained on samples, replacing or accumulating data; loss on real text."""
    from synthdspy.config_tables import OutputConfig
    from synthdspy.training.collapse import load_collapse_config, run_collapse

    cfg = load_collapse_config(config, set_)
    if output:
        cfg = cfg.model_copy(update={"output": OutputConfig(dir=output)})
    models = len(cfg.seeds) * (2 * cfg.generations - 1)
    t = cfg.train.trainer
    steps = t.max_steps or -(-t.token_budget // (t.batch_size * t.grad_accum_steps * cfg.train.model.block_size))
    console.print(f"{cfg.name}: {models} models of {steps} steps, "
                  f"{len(cfg.seeds)} seeds, {cfg.workers} worker(s)")

    def done(chain) -> None:
        last = {r.regime: r.heldout_nats for r in chain}
        console.print(f"seed {chain[0].seed}: generation 0 {chain[0].heldout_nats:.4f}, last generation "
                      f"replace {last['replace']:.4f}, accumulate {last['accumulate']:.4f} nats/char", highlight=False)

    report = run_collapse(cfg, on_chain=done)
    console.print(Path(report["paths"]["table"]).read_text(encoding="utf-8"), markup=False, highlight=False)
    console.print(f"plot, table and JSON in {cfg.out_dir}")
