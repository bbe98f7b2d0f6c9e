"""The files of a generate run's store besides the records: ``run.json``, the unit journal, the lock.

- ``run.json`` ties a store to one program, generator model and endpoint (:func:`claim_store`).
- ``units.jsonl`` / ``failures.jsonl`` journal finished and failed units (:class:`UnitJournal`);
  a last line torn by a kill is cut off on open, like the record store's.
- ``spend.json`` holds the dollars all of the store's runs have billed (:class:`SpendLedger`), so
  ``--max-usd`` caps the output directory's run, not each invocation.
- ``.lock`` holds an exclusive ``flock`` for the life of a run (:func:`exclusive_lock`), so a second
  ``generate`` on the same directory refuses instead of duplicating every record. The kernel drops
  the lock when the process dies, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from synthdspy.configio import ConfigError
from synthdspy.tracking import scrub_env_secrets

log = logging.getLogger(__name__)


@contextlib.contextmanager
def exclusive_lock(directory: Path) -> Iterator[None]:
    """Hold ``directory/.lock`` exclusively inside the block.

    Raises:
        ConfigError: another process holds it (one line naming the directory and its pid).
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ".lock"
    fh = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise ConfigError(f"{directory}: another generate run (pid {holder}) is writing to this store; wait for it "
                          "to finish or set another output.dir") from None
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def claim_store(directory: Path, identity: dict[str, Any]) -> None:
    """Tie the store in ``directory`` to one program and generator endpoint (``run.json``).

    ``identity`` holds ``program_hash``, ``task``, ``generator`` (model) and ``api_base``. A new
    store records it; a store that holds another program's or another endpoint's records is
    refused, so a resume never mixes records of two programs or two servers.

    Raises:
        ConfigError: the store belongs to another program or endpoint (the message names both).
    """
    path = directory / "run.json"
    if path.exists():
        theirs = json.loads(path.read_text(encoding="utf-8"))
        theirs.setdefault("api_base", None)
        if {k: theirs.get(k) for k in identity} != identity:
            raise ConfigError(
                f"{directory}: holds records of program {theirs.get('program_hash')} (task {theirs.get('task')}, "
                f"generator {theirs.get('generator')} at {theirs.get('api_base') or 'its default endpoint'}); this "
                f"run is program {identity['program_hash']} (task {identity['task']}, generator "
                f"{identity['generator']} at {identity.get('api_base') or 'its default endpoint'}). Set another "
                f"output.dir, or remove {directory} to start over"
            )
        return
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(identity, indent=2) + "\n", encoding="utf-8")


def _repair_last_line(path: Path) -> None:
    """Cut a last line that a kill left without its newline."""
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    keep = data.rfind(b"\n") + 1
    log.warning("%s: dropping torn last line (%d bytes) left by an interrupted write", path, len(data) - keep)
    with path.open("r+b") as fh:
        fh.truncate(keep)


class UnitJournal:
    """Append-only ``units.jsonl`` of finished units and ``failures.jsonl`` of failed ones."""

    def __init__(self, directory: Path) -> None:
        self.done_path = directory / "units.jsonl"
        self.fail_path = directory / "failures.jsonl"
        self._lock = threading.Lock()
        self.done: set[str] = set()
        for path in (self.done_path, self.fail_path):
            _repair_last_line(path)
        if self.done_path.exists():
            for line in self.done_path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(json.JSONDecodeError, KeyError, TypeError):
                    self.done.add(json.loads(line)["unit"])

    def _append(self, path: Path, entry: dict) -> None:
        with self._lock, path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
            fh.flush()

    def finish(self, unit: str, n_records: int) -> None:
        """Mark ``unit`` as finished with ``n_records`` records stored."""
        self._append(self.done_path, {"unit": unit, "records": n_records})
        self.done.add(unit)

    def fail(self, unit: str, seed_id: str, rollout: int, error: BaseException, attempts: int,
             failure_class: str = "", error_type: str | None = None) -> None:
        """Record a unit that failed after ``attempts`` tries, with the error's type (``error_type``
        when it was raised in another process), message (secrets scrubbed) and failure class
        (``record:truncated``, ``transient:timeout`` ...)."""
        self._append(self.fail_path, {
            "unit": unit, "seed_id": seed_id, "rollout": rollout, "attempts": attempts, "class": failure_class,
            "error": error_type or type(error).__name__, "message": scrub_env_secrets(str(error))[:2000],
        })


class SpendLedger:
    """Dollars billed by every invocation of one store's run, kept in ``directory/spend.json``.

    :attr:`prior` is what earlier invocations spent; :meth:`record` writes ``prior`` plus this
    invocation's total, at most once a second unless forced (an atomic replace), so a kill loses at
    most the last second's spend.

    Raises:
        ConfigError: ``spend.json`` is unreadable (one line naming the file).
    """

    def __init__(self, directory: Path, interval_s: float = 1.0) -> None:
        self.path, self.interval_s, self._written = directory / "spend.json", interval_s, 0.0
        self._lock = threading.Lock()
        self.prior = 0.0
        if self.path.exists():
            try:
                self.prior = float(json.loads(self.path.read_text(encoding="utf-8"))["usd"])
                if not math.isfinite(self.prior) or self.prior < 0:
                    raise ValueError(f"usd = {self.prior}")
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError(f"{self.path}: unreadable spend ledger ({exc}); it should hold "
                                  '{"usd": <dollars spent, at least 0>}') from None

    def record(self, spent_now: float, force: bool = False) -> None:
        """Write ``prior + spent_now`` (USD) unless written less than ``interval_s`` ago. A failed
        write (disk full, read-only directory) is logged, never raised: it must not fail the unit
        whose answer it counts, nor hide why a run stopped."""
        now = time.monotonic()
        with self._lock:
            if not force and now - self._written < self.interval_s:
                return
            self._written = now
            tmp = self.path.with_suffix(".json.tmp")
            try:
                tmp.write_text(json.dumps({"usd": self.prior + spent_now}), encoding="utf-8")
                os.replace(tmp, self.path)
            except OSError as exc:
                log.warning("%s: spend not recorded (%s); --max-usd on a re-run will not count it", self.path, exc)
