"""Append-only, resumable record store for generation runs, with exports to Hugging Face formats.

Records (passed and rejected, with their verdicts) are JSON lines in shards
``records-00000.jsonl``, ``records-00001.jsonl`` ... of ``shard_size`` records each. Every append
is written and flushed to the operating system, so killing the process (even SIGKILL) loses at
most the line being written; ``os.fsync`` runs every ``fsync_every`` appends, after
:meth:`RecordStore.append_many` and on :meth:`RecordStore.close`, against power loss.

Resume: record ids are deterministic (:meth:`Record.make_id`), so a restarted run re-produces
the same ids and :meth:`RecordStore.append` drops the ones already stored.

Dataset layout (:meth:`RecordStore.to_dataset`): ``id``, ``task``, ``instruction``, ``input``,
``output``, ``chosen``, ``rejected`` are strings (the last two may be null), ``responses`` a list
of strings, ``reward_scores`` a list of floats, ``turns`` a list of {role, content} structs and
``passed`` a bool; the open-ended nested fields ``dimensions``, ``metadata``, ``provenance`` and
``verdicts`` are JSON strings (their keys vary between tasks and gates, which Arrow columns
cannot hold), readable with ``json.loads``.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthdspy.records import Record

if TYPE_CHECKING:
    import datasets

log = logging.getLogger(__name__)

SHARD_PATTERN = re.compile(r"records-(\d{5})\.jsonl")
JSON_COLUMNS = ("dimensions", "metadata", "provenance", "verdicts")
EXPORT_FORMATS = ("dataset", "parquet", "jsonl")
TURN_KEYS = {"role", "content"}


class StoreError(Exception):
    """A store file is corrupt (not at its end) or an export cannot be made; the message names the file."""


def _features() -> datasets.Features:
    from datasets import Features, List, Value

    text = Value("string")
    return Features(
        {
            "id": text,
            "task": text,
            "instruction": text,
            "input": text,
            "output": text,
            "chosen": text,
            "rejected": text,
            "responses": List(text),
            "reward_scores": List(Value("float64")),
            "turns": List({"role": text, "content": text}),
            "passed": Value("bool"),
            **{name: text for name in JSON_COLUMNS},
        }
    )


def record_to_row(record: Record) -> dict[str, Any]:
    """One dataset row for ``record`` (layout in the module docstring).

    Raises:
        StoreError: a turn with keys other than ``role``/``content`` (it would not fit the column).
    """
    row = record.model_dump(mode="json")
    for turn in row["turns"] or []:
        if set(turn) - TURN_KEYS:
            raise StoreError(
                f"record {record.id}: turn keys {sorted(turn)} do not fit the role/content column"
            )
    row["passed"] = record.passed
    for name in JSON_COLUMNS:
        row[name] = json.dumps(row[name], ensure_ascii=False)
    return row


def _shard_paths(directory: Path) -> list[Path]:
    """The ``records-NNNNN.jsonl`` shards in ``directory``, in write order."""
    return sorted(p for p in directory.iterdir() if SHARD_PATTERN.fullmatch(p.name))


def read_records(directory: str | Path) -> Iterator[Record]:
    """The records of the store in ``directory``, in write order, without opening it for writing.

    For reports on a store that a generate run may still be writing: nothing is repaired or
    written, and a torn last line (a write in progress or cut by a kill) is skipped.

    Raises:
        StoreError: a malformed line that is not the last line of the last shard, naming the file
            and line.
    """
    shards = _shard_paths(Path(directory))
    for i, path in enumerate(shards):
        lines = path.read_bytes().splitlines()
        for lineno, raw in enumerate(lines, 1):
            try:
                yield Record.model_validate_json(raw)
            except ValueError as exc:
                if i == len(shards) - 1 and lineno == len(lines):
                    return
                raise StoreError(f"{path}: line {lineno} is not a valid record: {exc}") from None


class RecordStore:
    """Thread-safe append-only store of :class:`Record` in ``directory`` (created if absent).

    Opening reads every shard, collects the ids, and repairs a last line cut short by a kill
    (drops it with a warning). Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, directory: str | Path, shard_size: int = 10_000, fsync_every: int = 100) -> None:
        """Raises:
        ValueError: ``shard_size`` or ``fsync_every`` below 1.
        StoreError: a malformed line that is not the last line of the last shard (real corruption,
            not a kill), naming the file and line.
        """
        if shard_size < 1 or fsync_every < 1:
            raise ValueError(f"shard_size ({shard_size}) and fsync_every ({fsync_every}) must be >= 1")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.shard_size, self.fsync_every = shard_size, fsync_every
        self._lock = threading.Lock()
        self._ids: set[str] = set()
        self._passed = self._rejected = 0
        self._since_sync = 0
        shards = self._shards()
        for i, path in enumerate(shards):
            self._scan(path, last=i == len(shards) - 1)
        self._index = int(SHARD_PATTERN.fullmatch(shards[-1].name).group(1)) if shards else 0
        self._in_shard = self._count_lines(self._path(self._index)) if shards else 0
        self._file = self._path(self._index).open("a", encoding="utf-8")

    def _path(self, index: int) -> Path:
        return self.directory / f"records-{index:05d}.jsonl"

    def _shards(self) -> list[Path]:
        return _shard_paths(self.directory)

    @staticmethod
    def _count_lines(path: Path) -> int:
        with path.open("rb") as f:
            return sum(1 for _ in f)

    def _scan(self, path: Path, last: bool) -> None:
        """Collect ids and counts from ``path``; truncate a torn final line when ``last``."""
        good_end = 0
        with path.open("rb") as f:
            lines = f.readlines()
        for lineno, raw in enumerate(lines, 1):
            final = lineno == len(lines)
            try:
                record = Record.model_validate_json(raw)
            except ValueError as exc:
                if last and final:
                    log.warning(
                        "%s: dropping torn last line %d (%d bytes) left by an interrupted write",
                        path,
                        lineno,
                        len(raw),
                    )
                    break
                raise StoreError(f"{path}: line {lineno} is not a valid record: {exc}") from None
            if raw.endswith(b"\n"):
                good_end += len(raw)
            else:  # a complete record whose newline was lost: keep it, add the newline
                with path.open("ab") as out:
                    out.write(b"\n")
                good_end += len(raw) + 1
            self._count(record)
        if last and good_end < path.stat().st_size:
            os.truncate(path, good_end)

    def _count(self, record: Record) -> None:
        self._ids.add(record.id)
        if record.passed:
            self._passed += 1
        else:
            self._rejected += 1

    def append(self, record: Record) -> bool:
        """Store ``record`` unless its id is already stored.

        Returns:
            True when written, False when the id was already present (resume).
        """
        line = record.model_dump_json() + "\n"
        with self._lock:
            if record.id in self._ids:
                return False
            if self._in_shard >= self.shard_size:
                self._rotate()
            self._file.write(line)
            self._file.flush()
            self._in_shard += 1
            self._count(record)
            self._since_sync += 1
            if self._since_sync >= self.fsync_every:
                self._sync()
            return True

    def append_many(self, records: Iterable[Record]) -> int:
        """Append a batch, then fsync. Returns the number of records newly written."""
        added = sum(self.append(r) for r in records)
        self.flush()
        return added

    def _rotate(self) -> None:
        self._sync()
        self._file.close()
        self._index += 1
        self._in_shard = 0
        self._file = self._path(self._index).open("a", encoding="utf-8")

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._since_sync = 0

    def flush(self) -> None:
        """Flush and fsync the current shard."""
        with self._lock:
            if not self._file.closed:
                self._sync()

    def close(self) -> None:
        """Flush, fsync and close; later appends raise ``ValueError`` (closed file)."""
        with self._lock:
            if not self._file.closed:
                self._sync()
                self._file.close()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._ids

    @property
    def ids(self) -> frozenset[str]:
        """A snapshot of the stored record ids."""
        with self._lock:
            return frozenset(self._ids)

    @property
    def n_passed(self) -> int:
        """Stored records whose verdicts all passed."""
        return self._passed

    @property
    def n_rejected(self) -> int:
        """Stored records with at least one failed verdict."""
        return self._rejected

    def iter_records(self, passed: bool | None = None) -> Iterator[Record]:
        """Stored records in write order; ``passed`` True/False keeps only passed/rejected ones.

        Safe while other threads append: it reads what was stored when the call started.
        """
        with self._lock:
            if not self._file.closed:
                self._file.flush()
            sizes = [(p, p.stat().st_size) for p in self._shards()]
        for path, size in sizes:
            with path.open("rb") as f:  # line by line: one record in memory at a time, not a shard
                for raw in f:
                    size -= len(raw)
                    if size < 0:  # appended after the call started
                        break
                    record = Record.model_validate_json(raw)
                    if passed is None or record.passed == passed:
                        yield record

    def _selected(self, passed_only: bool, limit: int | None) -> Iterator[Record]:
        return itertools.islice(self.iter_records(True if passed_only else None), limit)

    def _rows(self, passed_only: bool, limit: int | None, fingerprint: object = None) -> Iterator[dict[str, Any]]:
        """Dataset rows one at a time (``fingerprint``, the store's state, only keys ``datasets``' cache)."""
        for record in self._selected(passed_only, limit):
            yield record_to_row(record)

    def to_dataset(self, passed_only: bool = True, limit: int | None = None,
                   cache_dir: str | Path | None = None) -> datasets.Dataset:
        """The records (the first ``limit`` in write order, if given) as a ``datasets.Dataset``
        (layout in the module docstring), streamed: rows go one at a time through
        ``Dataset.from_generator`` into Arrow files under ``cache_dir`` (default: the ``datasets``
        cache), which the dataset memory-maps, so no list of every row is ever held.

        Raises:
            StoreError: a record that does not fit the layout (see :func:`record_to_row`).
        """
        from datasets import Dataset
        from datasets.exceptions import DatasetGenerationError

        features = _features()
        with self._lock:
            if not self._file.closed:
                self._file.flush()
            state = [(p.name, p.stat().st_size) for p in self._shards()]
        if not any(size for _, size in state) or limit == 0 or (passed_only and not self.n_passed):
            # from_generator cannot build a dataset of no rows
            return Dataset.from_dict({name: [] for name in features}, features=features)
        # a string, not a list: datasets splits list-valued gen_kwargs into shards
        kwargs = {"passed_only": passed_only, "limit": limit, "fingerprint": json.dumps([str(self.directory), state])}
        try:
            return Dataset.from_generator(self._rows, features=features, gen_kwargs=kwargs,
                                          cache_dir=None if cache_dir is None else str(cache_dir))
        except DatasetGenerationError as exc:
            if isinstance(exc.__cause__, StoreError):
                raise exc.__cause__ from None
            raise

    def export(
        self, path: str | Path, fmt: str = "dataset", passed_only: bool = True, limit: int | None = None
    ) -> Path:
        """Write the records (the first ``limit`` in write order, if given) to ``path``, streaming:
        at most one record's row is held in Python at a time (the Arrow files of ``dataset`` and
        ``parquet`` are built in a scratch directory next to ``path``, removed afterwards).

        ``fmt``: ``dataset`` (a directory for ``datasets.load_from_disk``), ``parquet`` (one file, the
        dataset layout) or ``jsonl`` (one full Record JSON per line, nested fields as objects, which
        ``Record.model_validate_json`` reads back).

        Raises:
            ValueError: an unknown ``fmt``.
        """
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"export format {fmt!r}: expected one of {', '.join(EXPORT_FORMATS)}")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "jsonl":
            with path.open("w", encoding="utf-8") as f:
                for record in self._selected(passed_only, limit):
                    f.write(record.model_dump_json() + "\n")
            return path
        with tempfile.TemporaryDirectory(prefix=f".{path.name}-", dir=path.parent) as scratch:
            ds = self.to_dataset(passed_only, limit, cache_dir=scratch)
            if fmt == "parquet":
                ds.to_parquet(str(path))
            else:  # an empty dataset must still be written as one (empty) shard for load_from_disk to open it
                if path.exists():
                    shutil.rmtree(path)
                ds.save_to_disk(str(path), num_shards=1 if ds.num_rows == 0 else None)
            del ds  # its memory-mapped files live in scratch
        return path

    def push_to_hub(
        self, repo_id: str, token_env: str = "HF_TOKEN", private: bool = True, passed_only: bool = True
    ) -> str:
        """Upload the dataset to the Hub as ``repo_id``, with the token read from ``$token_env``.

        Returns:
            The URL of the dataset repository. The token is never logged or returned.

        Raises:
            StoreError: when ``$token_env`` is unset or empty.
        """
        token = os.environ.get(token_env, "")
        if not token:
            raise StoreError(f"push_to_hub: set the environment variable {token_env} to a Hub write token")
        self.to_dataset(passed_only).push_to_hub(repo_id, private=private, token=token)
        return f"https://huggingface.co/datasets/{repo_id}"
