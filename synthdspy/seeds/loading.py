"""Loading seed rows from local files or the Hugging Face Hub, and splitting them into train/dev.

Local files: ``.jsonl`` (one JSON object per line), ``.json`` (a list of objects), ``.csv``
(header row) and ``.parquet``, read as UTF-8 (a leading byte-order mark is allowed). Hub data
sets: ``hf://owner/name`` with an optional ``:config`` and ``@split`` (default ``train``), loaded
with ``datasets.load_dataset``.

Bad input fails at load time, before any LM call, with a one-line :class:`SeedLoadError` naming
the file and, where there is one, the line (JSONL, CSV), record (JSON) or row (Parquet, hub):
an empty file, bytes that are not UTF-8, a corrupt Parquet file, duplicate ``id`` values, a
mapped column missing from a record or holding null.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from synthdspy.records import Seed

HUB_PREFIX = "hf://"

Located = tuple[str, dict[str, Any]]
"""A row and where it is in its source: ``"line 3"``, ``"record 3"`` or ``"row 3"`` (from 1)."""


class SeedLoadError(ValueError):
    """A seed source cannot be read; the message names the file, the line or record, and the field."""


class HubId(NamedTuple):
    """A parsed ``hf://owner/name[:config][@split]`` source."""

    repo: str
    config: str | None
    split: str


def parse_hub_id(source: str) -> HubId:
    """Parse ``hf://owner/name[:config][@split]``; the split defaults to ``train``.

    Raises:
        SeedLoadError: when the id lacks the prefix, the ``owner/name`` form, or has an empty part.
    """
    if not source.startswith(HUB_PREFIX):
        raise SeedLoadError(f"{source!r}: hub ids start with {HUB_PREFIX}")
    rest = source[len(HUB_PREFIX) :]
    rest, at, split = rest.partition("@")
    repo, colon, config = rest.partition(":")
    parts = repo.split("/")
    if len(parts) != 2 or not all(parts) or (at and not split) or (colon and not config):
        raise SeedLoadError(f"{source!r}: expected hf://owner/name[:config][@split]")
    return HubId(repo, config or None, split or "train")


def _one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line (the CLI prints errors as one line), cut to ``limit`` characters."""
    return " ".join(text.split())[:limit]


def _not_utf8(path: Path) -> SeedLoadError:
    """The error for a file that does not decode as UTF-8, naming the line and column of the first bad byte."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        return SeedLoadError(
            f"{path}: line {line}: byte 0x{data[exc.start]:02x} at column {column} is not UTF-8 "
            "(a Latin-1 or Windows-1252 file?); re-save it as UTF-8, e.g. iconv -f latin1 -t utf-8"
        )
    return SeedLoadError(f"{path}: not UTF-8 text")  # pragma: no cover - the reader failed to decode it


def _utf8(path: Path, rows: Iterator[Located]) -> Iterator[Located]:
    """``rows``, with a decoding failure of ``path`` turned into a :class:`SeedLoadError`."""
    try:
        yield from rows
    except UnicodeDecodeError:
        raise _not_utf8(path) from None


def _read_jsonl(path: Path) -> Iterator[Located]:
    with path.open(encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SeedLoadError(f"{path}: line {lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise SeedLoadError(
                    f"{path}: line {lineno}: expected a JSON object, got {type(row).__name__}"
                )
            yield f"line {lineno}", row


def _read_json(path: Path) -> Iterator[Located]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise SeedLoadError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from None
    if not isinstance(rows, list):
        raise SeedLoadError(f"{path}: expected a JSON list of objects, got {type(rows).__name__}")
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise SeedLoadError(f"{path}: record {i}: expected a JSON object, got {type(row).__name__}")
        yield f"record {i}", row


def _read_csv(path: Path) -> Iterator[Located]:
    """Rows of a CSV file with a header; the location is the line where a row ends.

    Raises:
        SeedLoadError: a row with more fields than the header (a short row's missing values are None).
    """
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        for row in reader:
            if None in row:
                raise SeedLoadError(
                    f"{path}: line {reader.line_num}: {len(reader.fieldnames or []) + len(row[None])} fields, "
                    f"but the header has {len(reader.fieldnames or [])}"
                )
            yield f"line {reader.line_num}", row


def _read_parquet(path: Path) -> Iterator[Located]:
    """Rows of a Parquet file.

    Raises:
        SeedLoadError: the file is not Parquet, or is truncated or corrupt.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise SeedLoadError(
            f"{path}: not a readable Parquet file, truncated or corrupt ({type(exc).__name__}: "
            f"{_one_line(str(exc), 200)})"
        ) from None
    for i, row in enumerate(rows, 1):
        yield f"row {i}", row


def _read_hub(hub: HubId) -> Iterator[Located]:
    """Rows of a Hugging Face Hub dataset (or the local HF cache when offline).

    Raises:
        SeedLoadError: the hub cannot be reached or has no such dataset, config or split.
    """
    import datasets

    try:
        data = datasets.load_dataset(hub.repo, hub.config, split=hub.split)
    except Exception as exc:  # noqa: BLE001 - datasets raises many types (connection, not found, bad config)
        raise SeedLoadError(
            f"seeds.source hf://{hub.repo}: cannot load it ({type(exc).__name__}: {_one_line(str(exc))}); "
            "offline, point --seeds at a local JSONL/CSV/Parquet copy"
        ) from None
    for i, row in enumerate(data, 1):
        yield f"row {i}", row


def is_saved_dataset(path: Path) -> bool:
    """True for a ``datasets.save_to_disk`` directory (``generate``'s ``dataset`` export)."""
    return (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()


def _read_saved_dataset(path: Path) -> Iterator[Located]:
    """Rows of a ``datasets.save_to_disk`` directory (a ``DatasetDict`` must hold a single split).

    Raises:
        SeedLoadError: another directory (it names the path and what is expected), several splits.
    """
    if not is_saved_dataset(path):
        raise SeedLoadError(f"{path}: is a directory, not a saved dataset (datasets.save_to_disk); seeds are read "
                            f"from a {'/'.join(READERS)} file, an hf:// id, a saved dataset or documents")
    from datasets import Dataset, load_from_disk

    data = load_from_disk(str(path))
    if not isinstance(data, Dataset):
        if len(data) != 1:
            raise SeedLoadError(f"{path}: holds splits {list(data)}; pass one split's directory")
        data = next(iter(data.values()))
    for i, row in enumerate(data, 1):
        yield f"row {i}", row


READERS = {".jsonl": _read_jsonl, ".json": _read_json, ".csv": _read_csv, ".parquet": _read_parquet}


class _Null(Exception):
    """A dotted column path reached a null value (``at`` is the path up to it)."""

    def __init__(self, at: str) -> None:
        super().__init__(at)
        self.at = at


def _lookup(row: Any, column: str) -> Any:
    """The value at dotted ``column`` (``instances.0.output``): dict keys and list indices.

    Raises:
        KeyError: a part of the path is missing.
        _Null: the value, or a container on the way to it, is null.
    """
    value = row
    parts = column.split(".")
    for i, part in enumerate(parts):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(part)
        if value is None:
            raise _Null(".".join(parts[: i + 1]))
    return value


def _to_seed(row: dict[str, Any], fields: dict[str, str] | None, source: str, number: int, loc: str) -> Seed:
    """The seed for record ``number`` of ``source``, found at ``loc``.

    Raises:
        SeedLoadError: a mapped column is missing from the row, or holds null.
    """
    row_id = row.get("id")
    seed_id = str(row_id) if row_id not in (None, "") else None
    if fields is None:
        data = {k: v for k, v in row.items() if k != "id"}
    else:
        data = {}
        for name, column in fields.items():
            try:
                data[name] = _lookup(row, column)
            except KeyError:
                where = loc if loc.startswith("record") else f"record {number} ({loc})"
                raise SeedLoadError(
                    f"{source}: {where}: field {name!r} maps to column {column!r}, which is missing; "
                    f"the record has columns {sorted(row)}"
                ) from None
            except _Null as null:
                who = f"seed {seed_id}" if seed_id else f"record {number}"
                at = "" if null.at == column else f" at {null.at!r}"
                raise SeedLoadError(
                    f"{who}: field {name!r} (column {column!r}) is null{at} ({loc} of {source}); "
                    "give it a value, drop the record, or leave the field out of [seeds] fields"
                ) from None
    return Seed.from_data(data, id=seed_id)


def _check_unique_ids(located: list[tuple[str, Seed, bool]], source: str) -> None:
    """Raise on two rows with the same ``id`` column value (content-hash ids are not checked).

    Raises:
        SeedLoadError: naming the id and where both rows are.
    """
    first: dict[str, str] = {}
    for loc, seed, explicit in located:
        if not explicit:
            continue
        if seed.id in first:
            raise SeedLoadError(
                f"{source}: duplicate seed id {seed.id!r} ({first[seed.id]} and {loc}); seed ids must be "
                "unique (fix the id column, or drop it to use content-hash ids)"
            )
        first[seed.id] = loc


def load_seeds(
    source: str | Path,
    fields: dict[str, str] | None = None,
    limit: int | None = None,
    shuffle_seed: int | None = None,
) -> list[Seed]:
    """Read seeds from a local file or a hub data set.

    Args:
        source: a ``.jsonl``/``.json``/``.csv``/``.parquet`` path, a ``datasets.save_to_disk`` directory,
            or ``hf://owner/name[:config][@split]``.
        fields: canonical name -> column (dotted paths reach nested values: ``instances.0.output``);
            None keeps every column except ``id`` (null values included).
        limit: keep at most this many seeds (after shuffling).
        shuffle_seed: when given, shuffle deterministically with this seed before ``limit``.

    Returns:
        Seeds whose ``id`` is the row's ``id`` column when present, else a hash of ``data``.
        Record numbers in errors count from 1 in file order.

    Raises:
        SeedLoadError: missing, empty or unsupported file; bytes that are not UTF-8 (line and
            column); an unreadable line or record; a corrupt Parquet file; a mapped field missing
            from a record (file, record number, field, available columns) or null (seed, field,
            line of file); two rows with the same ``id`` (the id and both lines or rows).
    """
    text = str(source)
    if text.startswith(HUB_PREFIX):
        rows: Iterable[Located] = _read_hub(parse_hub_id(text))
    elif Path(source).is_dir():
        rows = _read_saved_dataset(Path(source))
    else:
        path = Path(source)
        if not path.is_file():
            raise SeedLoadError(f"{path}: seed file not found")
        reader = READERS.get(path.suffix.lower())
        if reader is None:
            raise SeedLoadError(f"{path}: unsupported seed file type; use one of {', '.join(READERS)}")
        if path.stat().st_size == 0:
            raise SeedLoadError(f"{path}: the seed file is empty (0 bytes)")
        rows = _utf8(path, reader(path))
    located = [
        (loc, _to_seed(row, fields, text, n, loc), row.get("id") not in (None, ""))
        for n, (loc, row) in enumerate(rows, 1)
    ]
    if not located:
        raise SeedLoadError(f"{text}: the seed source has no rows")
    _check_unique_ids(located, text)
    seeds = [seed for _, seed, _ in located]
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(seeds)
    return seeds[:limit] if limit is not None else seeds
