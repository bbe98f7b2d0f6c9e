"""The generate loop: (seed, rollout) units run concurrently through a program into a resumable store.

A *unit* is one seed at one rollout. Rollout r > 0 re-uses the seed with ``rollout_id=r`` so the
LM samples again while a re-run replays DSPy's cache. Units are taken in order: every seed at
rollout 0, then every seed at rollout 1, ... until the store holds ``n`` passed records or
``max_rollouts`` passes are spent.

Resume: a unit is written to ``units.jsonl`` only after all of its records are in the store. On a
re-run, finished units are skipped; an interrupted unit is run again, and because record ids are
stable, the store drops the records it already has. Stateful gates (dedup) are first handed the
stored records (``Gate.restore``). So a killed run finishes with no lost and no duplicated record.
A store is tied to the program and generator that started it (:func:`claim_store`).
A unit that still fails after ``max_attempts`` (retries bypass the cache, so a malformed cached
answer is not replayed) is written to ``failures.jsonl`` with its error.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from synthdspy.configio import ConfigError
from synthdspy.lm import LMs, roles_context
from synthdspy.program import SynthesisProgram
from synthdspy.records import Record, Seed, SeedFieldError
from synthdspy.store import RecordStore
from synthdspy.tracking import scrub_env_secrets


@dataclass
class GenerateStats:
    """Counts of one generate run: ``passed``/``rejected`` records in the store (including what a
    resumed store already held), ``failed_units`` and ``units_run`` by this invocation, and
    ``units_resumed``, the units an earlier run had finished."""

    passed: int
    rejected: int
    failed_units: int
    units_run: int
    units_resumed: int


def claim_store(directory: Path, program: SynthesisProgram, generator: str) -> None:
    """Tie the store in ``directory`` to one program and generator model (``run.json``).

    A new store records them; a store that holds another program's records (another task, gate,
    parameter or prompt: another ``program_hash``) or another generator's is refused, so a resume
    never mixes records of two programs or counts old records as this program's.

    Raises:
        ConfigError: the store belongs to another program or generator (the message names both
            and the directory).
    """
    path = directory / "run.json"
    mine = {"program_hash": program.program_hash, "task": program.task_cfg.name, "generator": generator}
    if path.exists():
        theirs = json.loads(path.read_text(encoding="utf-8"))
        if {k: theirs.get(k) for k in mine} != mine:
            raise ConfigError(
                f"{directory}: holds records of program {theirs.get('program_hash')} (task "
                f"{theirs.get('task')}, generator {theirs.get('generator')}); this run is program "
                f"{mine['program_hash']} (task {mine['task']}, generator {generator}). Set another "
                f"output.dir, or remove {directory} to start over"
            )
        return
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(mine, indent=2) + "\n", encoding="utf-8")


class UnitJournal:
    """Append-only ``units.jsonl`` of finished units and ``failures.jsonl`` of failed ones."""

    def __init__(self, directory: Path) -> None:
        self.done_path = directory / "units.jsonl"
        self.fail_path = directory / "failures.jsonl"
        self._lock = threading.Lock()
        self.done: set[str] = set()
        if self.done_path.exists():
            for line in self.done_path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(json.JSONDecodeError):
                    self.done.add(json.loads(line)["unit"])

    def _append(self, path: Path, entry: dict) -> None:
        with self._lock, path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
            fh.flush()

    def finish(self, unit: str, n_records: int) -> None:
        """Mark ``unit`` as finished with ``n_records`` records stored."""
        self._append(self.done_path, {"unit": unit, "records": n_records})
        self.done.add(unit)

    def fail(self, unit: str, seed_id: str, rollout: int, error: BaseException, attempts: int) -> None:
        """Record a unit that failed ``attempts`` times, with the error type and message."""
        self._append(self.fail_path, {
            "unit": unit, "seed_id": seed_id, "rollout": rollout, "attempts": attempts,
            "error": type(error).__name__, "message": scrub_env_secrets(str(error))[:2000],
        })


@contextlib.contextmanager
def uncached(lms: LMs) -> Iterator[None]:
    """Run with cache-bypassing copies of the generator and judge (for retries)."""
    gen = lms.generator.copy(cache=False)
    judge = lms.judge.copy(cache=False)
    fresh = LMs(gen, judge, lms.reflection, lms.concurrency, lms.meter, lms.simulated)
    with roles_context(fresh):
        yield


def run_unit(program: SynthesisProgram, seed: Seed, rollout: int, lms: LMs, max_attempts: int) -> list[Record]:
    """Run one unit, retrying on any error up to ``max_attempts`` times in total.

    Raises:
        SeedFieldError: at once, when the seed lacks a field the task needs.
        Exception: the last error when every attempt failed.
    """
    last: BaseException | None = None
    for attempt in range(max_attempts):
        try:
            with uncached(lms) if attempt else roles_context(lms):
                return program(seed, rollout=rollout)
        except SeedFieldError:
            raise  # the seed itself is wrong: no retry can help
        except Exception as exc:  # any provider, adapter or gate error: retry, then record
            last = exc
    assert last is not None
    raise last


def units(seeds: list[Seed], max_rollouts: int) -> Iterator[tuple[str, Seed, int]]:
    """(unit key, seed, rollout) in generation order."""
    for rollout in range(max_rollouts):
        for seed in seeds:
            yield f"{seed.id}#{rollout}", seed, rollout


def generate(
    program: SynthesisProgram, seeds: list[Seed], lms: LMs, store: RecordStore, n: int,
    max_rollouts: int = 10, max_attempts: int = 3, show_progress: bool = True,
) -> GenerateStats:
    """Generate until ``store`` holds ``n`` passed records (see the module docstring for resume).

    Args:
        program: the (compiled) synthesis program.
        seeds: the seeds, cycled with increasing rollout ids.
        lms: LM roles; ``lms.concurrency`` units run at once.
        store: where records (passed and rejected) go.
        n: target number of passed records.
        max_rollouts: passes over ``seeds`` before giving up on reaching ``n``.
        max_attempts: tries per unit before it is recorded as failed.

    Raises:
        ConfigError: a seed lacks a field the task needs before any unit has succeeded (a wrong
            seed file or ``[seeds] fields`` mapping); later such seeds are recorded as failed units.
    """
    journal = UnitJournal(store.directory)
    if len(store):
        program.gates.restore(store.iter_records())
    resumed = len(journal.done)
    failed = 0
    ran = 0
    todo = units(seeds, max_rollouts)
    progress = Progress(
        TextColumn("[bold]generate"), BarColumn(), MofNCompleteColumn(), TextColumn("passed"),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), disable=not show_progress,
    )

    def info() -> str:
        return f"rejected {store.n_rejected}  failed units {failed}"

    with progress, ThreadPoolExecutor(max_workers=lms.concurrency) as pool:
        bar = progress.add_task("generate", total=n, completed=min(n, store.n_passed), info=info())
        pending: dict[Future, tuple[str, Seed, int]] = {}
        exhausted = False
        while True:
            while not exhausted and len(pending) < lms.concurrency and store.n_passed < n:
                nxt = next(todo, None)
                if nxt is None:
                    exhausted = True
                    break
                key, seed, rollout = nxt
                if key in journal.done:
                    continue
                ctx = contextvars.copy_context()
                fut = pool.submit(ctx.run, run_unit, program, seed, rollout, lms, max_attempts)
                pending[fut] = nxt
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                key, seed, rollout = pending.pop(fut)
                ran += 1
                try:
                    records = fut.result()
                except Exception as exc:
                    if isinstance(exc, SeedFieldError) and not journal.done:
                        raise ConfigError(f"{exc} (no unit has succeeded: check the seed file and the "
                                          "[seeds] fields mapping)") from None
                    failed += 1
                    journal.fail(key, seed.id, rollout, exc, 1 if isinstance(exc, SeedFieldError) else max_attempts)
                    continue
                for record in records:
                    store.append(record)
                journal.finish(key, len(records))
            progress.update(bar, completed=min(n, store.n_passed), info=info())
    return GenerateStats(store.n_passed, store.n_rejected, failed, ran, resumed)

