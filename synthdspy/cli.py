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
) -> None:
    """Generate N records with gates applied; resumes an interrupted run in the same output directory."""
    from synthdspy.pipeline import run_generate
    from synthdspy.tracking import ui_command

    bad = [e for e in export if e not in ("dataset", "parquet", "jsonl")]
    if bad:
        raise ConfigError(f"--export {bad}: expected dataset, parquet or jsonl")
    exp = _load(experiment, set_, seeds)
    try:
        out = run_generate(exp, n, program, tuple(export))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    s = out.stats
    console.print(
        f"passed {s.passed}, rejected {s.rejected} (kept with reasons), failed units {s.failed_units}; "
        f"{s.units_run} units run, {s.units_skipped} resumed from an earlier run"
    )
    console.print(f"dataset:    {out.dataset_dir}  (datasets.load_from_disk)")
    console.print(f"store:      {out.store_dir}")
    console.print(f"MLflow run: {out.run_id}  ->  {ui_command(out.tracking_uri)}")


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
    """Check that each configured LM role answers a one-line request."""
    from synthdspy.lm import ROLES, build_lms

    exp = _load(experiment, set_)
    lms = build_lms(exp.lm)
    failures = 0
    for role in ROLES:
        lm = getattr(lms, role)
        try:
            answer = lm("Reply with the single word: ready", cache=False)
            console.print(f"[green]ok[/]   {role:<10} {lm.model}: {str(answer[0])[:60]!r}")
        except Exception as exc:
            failures += 1
            console.print(f"[red]fail[/] {role:<10} {lm.model}: {type(exc).__name__}: {str(exc)[:200]}")
    if failures:
        raise typer.Exit(1)
