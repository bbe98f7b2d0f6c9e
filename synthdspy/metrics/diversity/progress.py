"""Progress of long diversity runs, and the parallel runner that reports it.

On a terminal, ``dspy.Parallel`` draws its own progress bar. Off a terminal (a pipe, a log file, CI)
nothing redraws, so :class:`ProgressLines` prints plain lines instead, to stderr (stdout keeps the
table for pipes): ``[diversity] criteria: 40/100 rounds, 12 s`` at the start of a stage, at most
every :data:`EVERY_S` seconds while it runs, and at its end.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

import dspy

EVERY_S = 15.0
"""Seconds between two progress lines of one stage."""

PREFIX = "[diversity]"


def _off_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return not (callable(isatty) and isatty())


def note(text: str, stream: TextIO | None = None) -> None:
    """Print ``[diversity] text`` to ``stream`` (default: the current stderr) when it is not a terminal."""
    stream = stream or sys.stderr
    if _off_terminal(stream):
        print(f"{PREFIX} {text}", file=stream, flush=True)


class ProgressLines:
    """Plain, periodic progress lines of one stage of ``total`` steps, off a terminal only.

    Args:
        label: the stage, e.g. ``"cluster-agent on davinci"``.
        total: steps expected (the maximum when a stage may stop early).
        unit: what a step is, e.g. ``"rounds"``.
        stream: where lines go (default: the current stderr); nothing is printed on a terminal.
        every_s: least seconds between two lines while the stage runs.
        clock: seconds, monotonic (injectable for tests).

    Prints a line when created, from :meth:`advance` (thread-safe) when ``every_s`` has passed since
    the last line, and from :meth:`finish`.
    """

    def __init__(self, label: str, total: int, unit: str, stream: TextIO | None = None,
                 every_s: float = EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream or sys.stderr
        self.enabled = _off_terminal(self.stream)
        self.every_s, self.clock = every_s, clock
        self.done = 0
        self.start = self.last = clock()
        self._lock = threading.Lock()
        self._print()

    def _print(self, note: str = "") -> None:
        if self.enabled:
            elapsed = self.clock() - self.start
            text = f"{PREFIX} {self.label}: {self.done}/{self.total} {self.unit}, {elapsed:.0f} s{note}"
            print(text, file=self.stream, flush=True)

    def advance(self, steps: int = 1) -> None:
        """Count ``steps`` more; print a line when ``every_s`` has passed since the last one."""
        with self._lock:
            self.done += steps
            now = self.clock()
            if now - self.last >= self.every_s:
                self.last = now
                self._print()

    def finish(self, note: str = "") -> None:
        """Print the stage's last line, with ``note`` appended (e.g. ``"; stopped early"``)."""
        with self._lock:
            self._print(note)


def run_parallel(jobs: list[tuple[Any, dict[str, Any]]], num_threads: int,
                 progress: ProgressLines | None = None) -> list[Any]:
    """Run (callable, kwargs) jobs on ``dspy.Parallel`` threads (DSPy settings propagate).

    Returns the results in job order, None for a job that raised or timed out. Each finished job
    advances ``progress``; the terminal progress bar shows only on a terminal.
    """
    if not jobs:
        return []
    if progress is not None:
        jobs = [(_ticking(fn, progress), kwargs) for fn, kwargs in jobs]
    quiet = len(jobs) < 2 or not sys.stderr.isatty()  # piped output: no carriage-return progress lines
    parallel = dspy.Parallel(num_threads=num_threads, max_errors=len(jobs) + 1, timeout=600,
                             disable_progress_bar=quiet)
    return parallel(jobs)


def _ticking(fn: Callable[..., Any], progress: ProgressLines) -> Callable[..., Any]:
    def run(**kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        finally:
            progress.advance()

    return run
