"""The ``synthdspy`` command line: thin wrappers that parse, load config and call library functions.

User errors (:class:`synthdspy.configio.ConfigError` and friends) are printed as one red message
with exit code 2, never as a stack trace.
"""

from __future__ import annotations

import json

import typer
from rich.console import Console

from synthdspy.cli_common import (
    CONFIG_HELP,
    OUTPUT_HELP,
    SET_HELP,
    app,
    at_least_one,
    console,
    load_experiment_arg,
    output_override,
    user_errors,
)
from synthdspy.configio import ConfigError

DOCTOR_TIMEOUT_S = 15.0  # seconds per request, no retries: doctor answers within 15 s per role


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


@app.command("compile")
@user_errors
def compile_cmd(
    config: str = typer.Argument(..., help=CONFIG_HELP.format("experiments/quickstart.toml")),
    set_: list[str] = typer.Option(None, "--set", help=SET_HELP["compile"]),
    seeds: str = typer.Option(None, "--seeds", help="Seed file or hf:// id replacing seeds.source."),
    output: str = typer.Option(None, "--output", "-o", help=OUTPUT_HELP),
) -> None:
    """Optimize the experiment's program on the train seeds; compare baseline and compiled on dev seeds."""
    from synthdspy.pipeline import run_compile
    from synthdspy.report import summary_table
    from synthdspy.tracking import ui_command

    exp = load_experiment_arg(config, [*(set_ or []), *output_override(output)], seeds)
    out = run_compile(exp)
    Console().print(summary_table(out.summary))
    for note in out.summary.get("notes", []):
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"LM usage (billed, whole compile): {out.summary['usage']['line']}")
    console.print(f"compiled program: {out.program_path}")
    console.print(f"report:           {out.paths['report_md']}  ({out.paths['report_json'].name})")
    console.print(f"MLflow run:       {out.run_id}  ->  {ui_command(out.tracking_uri)}" if out.run_id
                  else "MLflow:           off (\\[tracking] enabled = false)")


@app.command("generate")
@user_errors
def generate_cmd(
    config: str = typer.Argument(..., help=CONFIG_HELP.format("experiments/quickstart.toml")),
    n: int = typer.Option(100, "-n", help="Number of passed records to produce (at least 1).", callback=at_least_one),
    program: str = typer.Option(None, "--program", help="Compiled program JSON (default: uncompiled)."),
    export: list[str] = typer.Option(["dataset"], "--export", help="dataset, parquet and/or jsonl."),
    set_: list[str] = typer.Option(None, "--set", help=SET_HELP["generate"]),
    seeds: str = typer.Option(None, "--seeds", help="Seed file or hf:// id replacing seeds.source."),
    output: str = typer.Option(None, "--output", "-o", help=OUTPUT_HELP),
    max_usd: float = typer.Option(None, "--max-usd", help="Stop launching units once this output directory's runs "
                                  "have spent this many dollars together (in-flight units finish; re-run with a "
                                  "higher cap to resume)."),
    estimate: bool = typer.Option(False, "--estimate", help="Run a few units, then project tokens, cost and time "
                                  "for -n (the records are kept; a later run resumes from them)."),
    push_to_hub: str = typer.Option(None, "--push-to-hub", help="Then upload the dataset export and its card to "
                                    "this Hub dataset repo (owner/name, private; token from $HF_TOKEN)."),
    batch: bool = typer.Option(False, "--batch", help="Send the requests through the provider's batch API (half "
                               "price, answers within 24 h; [generate] batch). A re-run polls a running batch."),
    no_wait: bool = typer.Option(False, "--no-wait", help="With --batch: submit or poll once, then exit."),
    engine: str = typer.Option(None, "--engine", help="local (default) or ray: run the units on a Ray cluster "
                               "([generate] engine)."),
    ray_address: str = typer.Option(None, "--ray-address", help="With --engine ray: auto or ray://HOST:10001 "
                                    "(default: a local Ray on this machine's cores)."),
) -> None:
    """Generate N records with gates applied; resumes an interrupted run in the same output directory.

    Exit codes: 0 all N records passed; 1 fewer than N (LM failures, the circuit breaker, the
    spending cap, or rollouts spent); 2 a configuration or input error.
    """
    from synthdspy import startup_gc

    with startup_gc.held():  # the imports before the first LM request; released once the units start
        from synthdspy.generate_report import print_estimate, print_summary
        from synthdspy.pipeline import run_generate

        bad = [e for e in export if e not in ("dataset", "parquet", "jsonl")]
        if bad:
            raise ConfigError(f"--export {bad}: expected dataset, parquet or jsonl")
        if max_usd is not None and max_usd <= 0:
            raise ConfigError(f"--max-usd {max_usd:g}: must be a positive number of dollars")
        if push_to_hub:
            from synthdspy.hub import check_push, push

            check_push(push_to_hub, export=tuple(export))  # before generating: a bad id or missing token fails now
        batch_sets = ["generate.batch=true"] * batch + ["generate.batch_wait=false"] * no_wait
        batch_sets += [f"generate.engine={json.dumps(engine)}"] * (engine is not None)
        batch_sets += [f"generate.ray_address={json.dumps(ray_address)}"] * (ray_address is not None)
        exp = load_experiment_arg(config, [*(set_ or []), *output_override(output), *batch_sets], seeds)
        units = max(3, exp.lm.generator.concurrency) if estimate else None
        out = run_generate(exp, n, program, tuple(export), max_usd=max_usd, unit_limit=units)
        if estimate:
            print_estimate(console, out, n)
            return
        print_summary(console, out, n, exp, tuple(export))
        if push_to_hub:
            console.print(f"pushed to {push(exp.output.dir, push_to_hub)}")
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
            t.add_column(col, overflow="fold")  # long values wrap onto more lines, never cut
        for name in sorted(table):
            entry = table[name]
            params = "\n".join(f"{p}: {ty} = {d!r}" for p, ty, d in describe(entry)) or "-"
            t.add_row(f"{name}\n(plugin: {entry.source})" if entry.source else name, entry.summary, params)
        Console().print(t)


@app.command("doctor")
@user_errors
def doctor_cmd(
    config: str = typer.Argument(..., help=CONFIG_HELP.format("experiments/quickstart.toml")),
    set_: list[str] = typer.Option(None, "--set", help=SET_HELP["doctor"]),
) -> None:
    """Check that each configured LM role answers a one-line request (15 s timeout, no retries)."""
    from synthdspy.llm_failures import classify
    from synthdspy.lm import ROLES, build_lms
    from synthdspy.tracking import scrub_env_secrets

    exp = load_experiment_arg(config, set_)
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


# Registered after this module's commands, so that `synthdspy --help` lists compile and generate first.
from synthdspy import cli_hub, cli_reports, cli_training  # noqa: E402, F401
