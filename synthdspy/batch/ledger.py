"""The batch jobs of a generate run, kept in its output directory so a re-run polls, not resubmits.

Files under ``<output.dir>/generate/``:

- ``batches.jsonl``: one event a line: ``{"event": "submitted", "batch_id", "group", "round",
  "requests", "time"}`` once the provider has accepted a batch, ``{"event": "collected",
  "batch_id", "status", "answered", "failed", "time"}`` once its answers are stored. A batch
  submitted and not collected is *open*: the next run polls it.
- ``batches/<batch_id>.requests.jsonl``: the batch's requests, ``{"custom_id", "role", "key"}``
  (``key``: DSPy's cache-key request, so an answer can be cached under it in any later process).
- ``batches/answers.jsonl``: every outcome, ``{"digest", "role", "key", "body", "cost_usd",
  "online_usd"}`` for an answer, ``{"digest", "role", "error": {"status", "code", "message"},
  "final"}`` for a failed request. A run first replays it into ``dspy.cache`` (answers a cleared
  cache lost) and into the collector (failed attempts, final failures).

A kill between the provider accepting a batch and the ``submitted`` line being written loses that
one batch's id (its requests are submitted again); every other kill loses nothing.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from synthdspy.batch.defer import BatchCall, Collector, has_answer, store_answer


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # a line cut by a kill
            yield json.loads(line)


class Ledger:
    """The batch files of one generate directory (see the module doc)."""

    def __init__(self, directory: Path) -> None:
        self.events_path = directory / "batches.jsonl"
        self.dir = directory / "batches"
        self.answers_path = self.dir / "answers.jsonl"
        self._lock = threading.Lock()

    def _append(self, path: Path, entry: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
            fh.flush()

    def open_batches(self) -> list[dict[str, Any]]:
        """Submitted and not yet collected batches, oldest first."""
        events = list(_lines(self.events_path))
        collected = {e["batch_id"] for e in events if e.get("event") == "collected"}
        return [e for e in events if e.get("event") == "submitted" and e["batch_id"] not in collected]

    def rounds(self) -> int:
        """The highest round submitted so far (0 before any)."""
        return max((e.get("round", 0) for e in _lines(self.events_path) if e.get("event") == "submitted"), default=0)

    def submitted(self, batch_id: str, group: str, round_no: int, calls: list[BatchCall]) -> None:
        """Record a batch the provider accepted, with its requests."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with (self.dir / f"{batch_id}.requests.jsonl").open("w", encoding="utf-8") as fh:
            for call in calls:
                fh.write(json.dumps({"custom_id": call.digest, "role": call.role, "key": call.key}) + "\n")
        self._append(self.events_path, {"event": "submitted", "batch_id": batch_id, "group": group,
                                        "round": round_no, "requests": len(calls), "time": time.time()})

    def requests(self, batch_id: str) -> dict[str, dict[str, Any]]:
        """{custom_id: {"role", "key"}} of a submitted batch."""
        return {r["custom_id"]: r for r in _lines(self.dir / f"{batch_id}.requests.jsonl")}

    def answered(self, digest: str, role: str, key: dict[str, Any], body: dict[str, Any],
                 cost: float | None, online: float | None) -> None:
        """Keep an answer (and its batch and online price in USD; None when unpriced)."""
        self._append(self.answers_path, {"digest": digest, "role": role, "key": key, "body": body,
                                         "cost_usd": cost, "online_usd": online})

    def failed(self, digest: str, role: str, error: dict[str, Any], final: bool) -> None:
        """Keep a failed attempt of a request (``final``: it will not be sent again)."""
        self._append(self.answers_path, {"digest": digest, "role": role, "error": error, "final": final})

    def collected(self, batch_id: str, status: str, answered: int, failed: int) -> None:
        """Mark a batch's answers as stored."""
        self._append(self.events_path, {"event": "collected", "batch_id": batch_id, "status": status,
                                        "answered": answered, "failed": failed, "time": time.time()})

    def restore(self, collector: Collector, error_of: Any) -> None:
        """Replay ``answers.jsonl``: answers missing from ``dspy.cache`` are put back; failed
        attempts are counted and final failures re-armed (``error_of(entry)`` builds the error)."""
        for entry in _lines(self.answers_path):
            if "body" in entry:
                if not has_answer(entry["key"]):
                    store_answer(entry["key"], entry["body"])
            elif entry.get("final"):
                collector.final[entry["digest"]] = error_of(entry)
            else:
                collector.attempts[entry["digest"]] = collector.attempts.get(entry["digest"], 0) + 1

    def totals(self) -> dict[str, float | int]:
        """Over every answer of the run: ``answers``, ``failed_attempts``, ``cost_usd`` (batch
        prices) and ``online_usd`` (the same tokens at online prices), priced answers only."""
        out: dict[str, float | int] = {"answers": 0, "failed_attempts": 0, "cost_usd": 0.0, "online_usd": 0.0}
        for entry in _lines(self.answers_path):
            if "body" not in entry:
                out["failed_attempts"] += 1
                continue
            out["answers"] += 1
            if entry.get("cost_usd") is not None and entry.get("online_usd") is not None:
                out["cost_usd"] += entry["cost_usd"]
                out["online_usd"] += entry["online_usd"]
        return out
