"""The generate loop: (seed, rollout) units run concurrently through a program into a resumable store.

Engine: one asyncio event loop; each unit runs the program's synchronous ``forward`` in a greenlet
whose LM calls are awaited on DSPy's async path (:mod:`synthdspy.greenlet_bridge`), so up to
``[lm.generator] concurrency`` units are in flight from one thread; blocking gates (sandboxed code,
embedding dedup) run on worker threads.

A *unit* is one seed at one rollout. Rollout r > 0 re-uses the seed with ``rollout_id=r`` so the
LM samples again while a re-run replays DSPy's cache. Units are taken in order: every seed at
rollout 0, then every seed at rollout 1, ... until the store holds ``n`` passed records or
``max_rollouts`` passes are spent.

Never more work than ``n`` needs: units in flight count towards the target, scaled by the passed
records a finished unit has yielded so far, so a run pays for at most a few units beyond ``n``.

Failures (:mod:`synthdspy.llm_failures`): transient LM errors are retried inside the LM engine;
a run-fatal one (wrong key, no quota, unknown model) stops the run at once with
:class:`RunAbortedError`; a record-fatal one (context length, refusal, truncation) fails its unit
with the reason in ``failures.jsonl``; any other error (an unparseable answer) retries the unit
once, re-sending only the failed call (:mod:`synthdspy.unit_calls`). The circuit breaker
(:mod:`synthdspy.run_guard`) stops a run whose units keep failing, and ``max_usd`` stops launching
units once that much has been spent (in-flight units finish; a re-run resumes).

Resume: a unit is written to ``units.jsonl`` only after all of its records are in the store. On a
re-run, finished units are skipped; an interrupted unit is run again, and because record ids are
stable, the store drops the records it already has. Stateful gates (dedup) are first handed the
stored records (``Gate.restore``). So a killed run finishes with no lost and no duplicated record.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from synthdspy import greenlet_bridge, startup_gc
from synthdspy.configio import ConfigError
from synthdspy.llm_failures import Failure, RunAbortedError, causes, classify
from synthdspy.lm import LMs, roles_context
from synthdspy.program import SynthesisProgram
from synthdspy.ratelimit import EndpointAbortedError
from synthdspy.records import Record, Seed, SeedFieldError
from synthdspy.run_dir import UnitJournal
from synthdspy.run_guard import CircuitBreaker
from synthdspy.store import RecordStore
from synthdspy.trace_sampling import trace_failure, traced_attempt
from synthdspy.unit_calls import failed_calls, unit_attempt

T = TypeVar("T")


@dataclass
class GenerateStats:
    """Counts of one generate run: ``passed``/``rejected`` records in the store (including what a
    resumed store already held), ``failed_units`` and ``units_run`` by this invocation,
    ``units_resumed`` (finished by an earlier run), ``stopped_by`` (``budget``, ``unit_limit`` or
    empty; the circuit breaker and run-fatal errors raise instead), ``failures`` by class,
    ``seconds`` of wall time and ``passed_now``, the records this invocation added."""

    passed: int
    rejected: int
    failed_units: int
    units_run: int
    units_resumed: int
    stopped_by: str = ""
    failures: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    passed_now: int = 0


def run_unit(program: SynthesisProgram, seed: Seed, rollout: int, lms: LMs, max_attempts: int = 2) -> list[Record]:
    """Run one unit; after an unclassified error (an unparseable answer), retry it up to
    ``max_attempts`` times in total, re-sending only the calls that failed (the others replay
    from the cache, so they are not paid twice). MLflow traces the attempts that
    :mod:`synthdspy.trace_sampling` picks.

    Raises:
        SeedFieldError: at once, when the seed lacks a field the task needs.
        Exception: an LM error of class run, record or transient (retries happen in the engine),
            or the last error when every attempt failed.
    """
    refresh: frozenset[str] = frozenset()
    for attempt in range(max_attempts):
        with roles_context(lms), unit_attempt(refresh, attempt) as log, traced_attempt(attempt) as traced:
            try:
                return program(seed, rollout=rollout)
            except SeedFieldError:
                raise
            except Exception as exc:
                if classify(exc).kind != "other" or attempt + 1 >= max_attempts:
                    if not traced:
                        trace_failure(seed, rollout, exc)
                    raise
                refresh = refresh | failed_calls(exc, log)
    raise AssertionError("unreachable: the last attempt returns or raises")


def units(seeds: list[Seed], max_rollouts: int) -> Iterator[tuple[str, Seed, int]]:
    """(unit key, seed, rollout) in generation order."""
    for rollout in range(max_rollouts):
        for seed in seeds:
            yield f"{seed.id}#{rollout}", seed, rollout


def aborted(exc: BaseException, failure: Failure, lms: LMs) -> RunAbortedError:
    """A one-line :class:`RunAbortedError` for a run-fatal ``exc``: the role(s) on the failing
    model, their endpoint and key variable, the failure class and the provider's message."""
    exc = next((link.__cause__ for link in causes(exc) if isinstance(link, EndpointAbortedError) and link.__cause__),
               exc)  # a unit refused after another's fatal answer: report that answer
    model = getattr(exc, "model", None)
    named = [r for r, m in lms.describe().items() if model and (m == model or m.endswith(f"/{model}"))]
    named = named or [r for r, m in lms.describe().items() if not m.startswith("sim/")]
    where = "; ".join(lms.endpoints.get(r, r) for r in named)
    message = " ".join(str(exc).split())[:300]
    return RunAbortedError(f"{failure.reason} error from {where}: {message}")


def stop_endpoints(lms: LMs) -> None:
    """Abort the rate limiter of every role's endpoint, so no further request of this run is sent."""
    for role in (lms.generator, lms.judge, lms.reflection):
        limiter = getattr(getattr(role, "engine", None), "limiter", None)
        if limiter is not None:
            limiter.abort(RunAbortedError("the run stopped"))


@dataclass
class _Loop:
    """The mutable state of one run (kept together for the progress line)."""

    n: int
    store: RecordStore
    lms: LMs
    breaker: CircuitBreaker
    started: float = field(default_factory=time.monotonic)
    passed_start: int = 0
    finished_units: int = 0
    passed_by_units: int = 0
    failed: int = 0

    def per_unit(self) -> float:
        """Passed records a finished unit has yielded so far (1.0 before any finished)."""
        return self.passed_by_units / self.finished_units if self.finished_units else 1.0

    def info(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = (self.store.n_passed - self.passed_start) / elapsed
        left = self.n - self.store.n_passed
        eta = f"ETA {left / rate:,.0f}s" if rate > 0 and left > 0 else "ETA -"
        meter = self.lms.meter
        cost = f"${meter.cost_usd:.4f}" + (" + unpriced" if meter.unpriced else "")
        fails = self.breaker.describe() or "none"
        return (f"{rate:.2f} rec/s  {cost}  {eta}  rejected {self.store.n_rejected}  "
                f"failed units {self.failed} ({fails})")


def generate(
    program: SynthesisProgram, seeds: list[Seed], lms: LMs, store: RecordStore, n: int,
    max_rollouts: int = 10, max_attempts: int = 2, show_progress: bool = True,
    max_usd: float | None = None, unit_limit: int | None = None, breaker: CircuitBreaker | None = None,
) -> GenerateStats:
    """Generate until ``store`` holds ``n`` passed records (see the module docstring).

    Args:
        program: the (compiled) synthesis program.
        seeds: the seeds, cycled with increasing rollout ids.
        lms: LM roles; up to ``lms.concurrency`` units run at once.
        store: where records (passed and rejected) go.
        n: target number of passed records.
        max_rollouts: passes over ``seeds`` before giving up on reaching ``n``.
        max_attempts: tries per unit after an unparseable answer.
        max_usd: stop launching units once the meter has spent this many dollars.
        unit_limit: run at most this many new units (``--estimate``).
        breaker: the circuit breaker (default :class:`CircuitBreaker`).

    Raises:
        ConfigError: a seed lacks a field the task needs before any unit has succeeded.
        RunAbortedError: a run-fatal LM error, or the circuit breaker tripped.
    """
    journal = UnitJournal(store.directory)
    if len(store):
        program.gates.restore(store.iter_records())
    loop = _Loop(n, store, lms, breaker or CircuitBreaker(), passed_start=store.n_passed)
    resumed = len(journal.done)
    progress = Progress(
        TextColumn("[bold]generate"), BarColumn(), MofNCompleteColumn(), TextColumn("passed"),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), disable=not show_progress,
    )
    with progress, startup_gc.frozen_heap():
        bar = progress.add_task("generate", total=n, completed=min(n, store.n_passed), info=loop.info())
        ran, stopped_by = run_event_loop(_units_loop(program, seeds, journal, loop, max_rollouts, max_attempts,
                                                     max_usd, unit_limit, lambda: progress.update(
                                                         bar, completed=min(n, store.n_passed), info=loop.info())))
    return GenerateStats(store.n_passed, store.n_rejected, loop.failed, ran, resumed,
                         stopped_by, dict(loop.breaker.by_class), time.monotonic() - loop.started,
                         store.n_passed - loop.passed_start)


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, or on a fresh thread when this thread already runs an event loop (a
    notebook), with the caller's context (DSPy settings) either way."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(contextvars.copy_context().run, asyncio.run, main).result()


async def _units_loop(program: SynthesisProgram, seeds: list[Seed], journal: UnitJournal, loop: _Loop,
                      max_rollouts: int, max_attempts: int, max_usd: float | None, unit_limit: int | None,
                      show: Callable[[], None]) -> tuple[int, str]:
    """Launch units (each a greenlet task, :mod:`synthdspy.greenlet_bridge`) up to the concurrency,
    collect them as they finish; returns (units run, why launching stopped)."""
    lms, ran, stopped_by, exhausted = loop.lms, 0, "", False
    todo = units(seeds, max_rollouts)
    pending: dict[asyncio.Task, tuple[str, Seed, int]] = {}

    def wanted() -> bool:
        return loop.store.n_passed + len(pending) * loop.per_unit() < loop.n

    try:
        while True:
            while not exhausted and not stopped_by and len(pending) < lms.concurrency and wanted():
                if max_usd is not None and lms.meter.cost_usd >= max_usd:
                    stopped_by = "budget"
                elif unit_limit is not None and ran + len(pending) >= unit_limit:
                    stopped_by = "unit_limit"
                elif (nxt := next(todo, None)) is None:
                    exhausted = True
                elif nxt[0] not in journal.done:
                    task = asyncio.ensure_future(greenlet_bridge.spawn(run_unit, program, nxt[1], nxt[2], lms,
                                                                       max_attempts))
                    pending[task] = nxt
            if not pending:
                return ran, stopped_by
            finished, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                key, seed, rollout = pending.pop(task)
                ran += 1
                trip = _finish(task, key, seed, rollout, journal, loop, max_attempts)
                if trip:
                    show()  # the progress line's last state counts the unit that tripped it
                    raise RunAbortedError(f"circuit breaker: {trip}; failures by class: "
                                          f"{loop.breaker.describe()}; last error in {journal.fail_path}")
            show()
    except BaseException:
        stop_endpoints(lms)  # units waiting for a request slot or in backoff end now
        for task in pending:  # requests on the wire are cancelled; their units are re-run on resume
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        raise


def _finish(fut: asyncio.Future, key: str, seed: Seed, rollout: int, journal: UnitJournal, loop: _Loop,
            max_attempts: int) -> str | None:
    """Store a finished unit's records, or journal its failure; returns why the breaker tripped."""
    try:
        records = fut.result()
    except SeedFieldError as exc:
        if not journal.done:
            raise ConfigError(f"{exc} (no unit has succeeded: check the seed file and the [seeds] fields "
                              "mapping)") from None
        loop.failed += 1
        journal.fail(key, seed.id, rollout, exc, 1, "record:seed_field")
        return None
    except Exception as exc:
        failure = classify(exc)
        if failure.kind == "run":
            raise aborted(exc, failure, loop.lms) from None
        loop.failed += 1
        journal.fail(key, seed.id, rollout, exc, max_attempts if failure.kind == "other" else 1,
                     f"{failure.kind}:{failure.reason}")
        return loop.breaker.record(failure)
    before = loop.store.n_passed
    for record in records:
        loop.store.append(record)
    journal.finish(key, len(records))
    loop.finished_units += 1
    loop.passed_by_units += loop.store.n_passed - before
    return loop.breaker.record(None)
