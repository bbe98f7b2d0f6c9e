"""What ``synthdspy generate`` prints when it ends: the summary, or the ``--estimate`` projection."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console

EXPORT_FILES = {"dataset": "dataset", "parquet": "records.parquet", "jsonl": "records.jsonl"}
"""Each ``--export`` format's path inside ``<output dir>/generate``."""
EXPORT_NOTES = {"dataset": "(datasets.load_from_disk)", "parquet": "", "jsonl": ""}


class ExportMarker:
    """``generate/exports.json``: the store state (passed, rejected and stored counts), ``-n`` and
    formats the current exports were made from. A re-run that changed none of them (a finished
    100k run started again) skips re-exporting and re-logging the records table; the marker is
    removed before an export starts and written after every format is done, so an interrupted
    export is redone."""

    def __init__(self, generate_dir: Path, store: Any, n: int, formats: Iterable[str]) -> None:
        self.path = Path(generate_dir) / "exports.json"
        self.targets = export_paths(generate_dir, formats)
        self.state = {"passed": store.n_passed, "rejected": store.n_rejected, "stored": len(store), "n": n,
                      "formats": sorted(self.targets)}

    def current(self) -> bool:
        """Whether the exports on disk were made from this very state."""
        try:
            made = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return False
        return made == self.state and all(t.exists() for t in self.targets.values())

    def start(self) -> None:
        """Forget the previous exports (before writing new ones)."""
        self.path.unlink(missing_ok=True)

    def done(self) -> None:
        """Record that every export now reflects this state."""
        self.path.write_text(json.dumps(self.state), encoding="utf-8")


def export_paths(generate_dir: str | Path, formats: Iterable[str]) -> dict[str, Path]:
    """``{format: path}`` of each ``--export`` format under ``generate_dir`` (``<output dir>/generate``).

    Raises:
        KeyError: a format that is not ``dataset``, ``parquet`` or ``jsonl``.
    """
    return {fmt: Path(generate_dir) / EXPORT_FILES[fmt] for fmt in formats}


def print_summary(console: Console, out: Any, n: int, exp: Any, export: tuple[str, ...]) -> None:
    """The run summary: records passed/rejected, exported versus stored, failures by class, why it
    stopped, spending, and where the files are: one line per ``export`` format, with its path."""
    from synthdspy.tracking import ui_command

    s = out.stats
    console.print(
        f"passed {s.passed}, rejected {s.rejected} (kept with reasons), failed units {s.failed_units}; "
        f"{s.units_run} units run now, {s.units_resumed} finished by an earlier run (resumed)"
    )
    console.print(f"exported {out.exported} of the {s.passed} passed records stored (-n {n}); "
                  f"{s.passed_now} new in {s.seconds:.1f}s ({s.passed_now / max(s.seconds, 1e-6):.2f} records/s)")
    if s.failures:
        classes = ", ".join(f"{k} {v}" for k, v in sorted(s.failures.items(), key=lambda kv: -kv[1]))
        console.print(f"[yellow]warning:[/] {s.failed_units} units failed ({classes}); each error is in "
                      f"{out.store_dir / 'failures.jsonl'}")
    if s.units_run and not out.meter.calls and not s.failed_units:
        console.print("note: every LM answer of this run was served from the response cache (nothing billed)")
    if s.stopped_by == "budget":
        before = f" (${out.spent_before_usd:.4f} of it by earlier runs here)" if out.spent_before_usd else ""
        console.print(f"[yellow]stopped by the spending cap:[/] ${out.spent_before_usd + out.meter.cost_usd:.4f} "
                      f"spent{before}; re-run with a higher --max-usd to resume")
    elif s.stopped_by == "batch_pending":
        console.print(f"[yellow]a provider batch is still running:[/] {s.passed} of {n} records so far; re-run the "
                      "same command to poll it (nothing is submitted twice)")
    elif s.passed < n:
        console.print(f"[yellow]warning:[/] only {s.passed} of {n} records passed after every rollout was spent; "
                      f"see `synthdspy gate-report {exp.output.dir}` for the reasons")
    console.print(f"LM usage (billed; cache hits are free): {out.meter.describe()}")
    if out.parse_stats.counts:
        console.print(f"parse failures: {out.parse_stats.describe()}")
    for fmt, path in export_paths(out.store_dir.parent, dict.fromkeys(export)).items():
        console.print(f"{fmt + ':':<11} {path}  {EXPORT_NOTES[fmt]}".rstrip())
    console.print(f"store:      {out.store_dir}")
    console.print(f"MLflow run: {out.run_id}  ->  {ui_command(out.tracking_uri)}" if out.run_id
                  else "MLflow:     off (\\[tracking] enabled = false)")


def print_estimate(console: Console, out: Any, n: int) -> None:
    """Project tokens, dollars and wall time for ``n`` passed records from the units just run
    (linear in passed records; the rate is this run's, at its concurrency)."""
    s = out.stats
    if not s.passed_now:
        console.print(f"estimate: {s.units_run} units ran and none passed, so nothing can be projected; "
                      f"usage so far: {out.meter.describe()}")
        return
    if not out.meter.calls:
        console.print(f"estimate: the {s.units_run} units were served wholly from the response cache (nothing "
                      "billed), so tokens and cost of fresh calls cannot be projected; use another output.dir "
                      "or endpoint, or set cache = false")
        return
    scale = n / s.passed_now
    tokens = out.meter.metrics()["total.tokens"]
    cost = "unpriced" if out.meter.unpriced else f"${out.meter.cost_usd * scale:,.2f}"
    console.print(f"estimate from {s.units_run} units ({s.passed_now} passed, {s.rejected} rejected, "
                  f"{s.failed_units} failed) in {s.seconds:.1f}s:")
    console.print(f"  for -n {n}: about {tokens * scale:,.0f} tokens, {cost}, {s.seconds * scale / 60:,.1f} minutes "
                  f"at this concurrency; the {s.passed} records made now are kept and a run resumes from them")
