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
