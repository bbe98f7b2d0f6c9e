"""What every ``synthdspy`` command shares: the Typer app, the stderr console, the ``--set`` help and
the decorator that turns user errors into one red line and an exit code."""

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


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"synthdspy {version('synthdspy')}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: bool = typer.Option(False, "--version", help="Print the installed synthdspy version and exit.",
                                      callback=_print_version, is_eager=True),
) -> None:
    """Synthetic training data as optimizable DSPy programs."""



SET_EXAMPLES = {
    "compile": "compile.optimizer=gepa",
    "generate": "lm.generator.temperature=0.9",
    "doctor": "lm.judge.timeout_s=30",
    "train": "trainer.max_steps=200",
    "curriculum-compare": "mixture.gsm8k=3",
    "tune": "study.n_trials=4",
    "transfer": "stats.bootstrap=500",
    "collapse": "generations=3",
}
SET_HELP = {command: f"Override a config key, e.g. --set {example} (repeatable)."
            for command, example in SET_EXAMPLES.items()}
"""Each command's ``--set`` help, with an example key of that command's own config."""
OUTPUT_HELP = "Output directory, overriding the config's output.dir (default: runs/<name>)."
CONFIG_HELP = "Config file (TOML), e.g. {}."


def output_override(output: str | None) -> list[str]:
    """The ``--set`` override that ``--output/-o DIR`` stands for (none without ``-o``); the path is
    written as a TOML string, so a name like ``2024`` stays a path."""
    import json

    return [f"output.dir={json.dumps(output)}"] if output else []


def at_least_one(value: int | None) -> int | None:
    """Typer callback for ``-n``: a count below 1 is rejected while parsing, before any file is read,
    with one line and exit code 2."""
    if value is not None and value < 1:
        console.print(f"[bold red]error:[/] -n {value}: must be at least 1", highlight=False)
        raise typer.Exit(2)
    return value


def user_error_types() -> tuple[type[Exception], ...]:
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
            if not isinstance(exc, user_error_types()):
                raise
            from rich.markup import escape

            from synthdspy.tracking import scrub_env_secrets

            console.print(f"[bold red]error:[/] {escape(scrub_env_secrets(str(exc)))}", highlight=False)
            raise typer.Exit(1 if isinstance(exc, RunAbortedError) else 2) from None

    return wrapper  # type: ignore[return-value]


def load_experiment_arg(config: str, overrides: list[str] | None, seeds: str | None = None) -> Any:
    """The experiment file ``config`` with ``--set`` ``overrides`` (and ``--seeds``) applied."""
    from synthdspy.config import load_experiment

    return load_experiment(config, overrides or [], seeds=seeds)
