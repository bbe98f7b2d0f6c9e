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

app = typer.Typer(help="Synthetic training data as optimizable DSPy programs.", no_args_is_help=True)
console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

SET_HELP = "Override a config key, e.g. --set compile.optimizer=bootstrap_rs (repeatable)."


def user_errors(fn: F) -> F:
    """Turn user errors raised by ``fn`` into a one-line message and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ConfigError, FileNotFoundError) as exc:
            console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


@app.command()
@user_errors
def train(
    config: str = typer.Argument(..., help="Training config (TOML), e.g. experiments/train_mixture.toml."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),  # noqa: B008 - typer idiom
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
