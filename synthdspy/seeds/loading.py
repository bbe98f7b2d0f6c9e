"""Loading seed rows from local files or the Hugging Face Hub, and splitting them into train/dev.

Local files: ``.jsonl`` (one JSON object per line), ``.json`` (a list of objects), ``.csv``
(header row) and ``.parquet``. Hub data sets: ``hf://owner/name`` with an optional ``:config``
and ``@split`` (default ``train``), loaded with ``datasets.load_dataset``.
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


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
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
            yield row


def _read_json(path: Path) -> Iterator[dict[str, Any]]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SeedLoadError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from None
    if not isinstance(rows, list):
        raise SeedLoadError(f"{path}: expected a JSON list of objects, got {type(rows).__name__}")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise SeedLoadError(f"{path}: record {i}: expected a JSON object, got {type(row).__name__}")
        yield row


def _read_csv(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8", newline="") as f:
        yield from csv.DictReader(f)


def _read_parquet(path: Path) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    yield from pq.read_table(path).to_pylist()


def _read_hub(hub: HubId) -> Iterator[dict[str, Any]]:
    """Rows of a Hugging Face Hub dataset (or the local HF cache when offline).

    Raises:
        SeedLoadError: the hub cannot be reached or has no such dataset, config or split.
    """
    import datasets

    try:
        data = datasets.load_dataset(hub.repo, hub.config, split=hub.split)
    except Exception as exc:  # noqa: BLE001 - datasets raises many types (connection, not found, bad config)
        raise SeedLoadError(
            f"seeds.source hf://{hub.repo}: cannot load it ({type(exc).__name__}: {str(exc)[:300]}); "
            "offline, point --seeds at a local JSONL/CSV/Parquet copy"
        ) from None
    yield from data


READERS = {".jsonl": _read_jsonl, ".json": _read_json, ".csv": _read_csv, ".parquet": _read_parquet}


def _lookup(row: Any, column: str) -> Any:
    """The value at dotted ``column`` (``instances.0.output``): dict keys and list indices."""
    value = row
    for part in column.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(part)
    return value


def _to_seed(row: dict[str, Any], fields: dict[str, str] | None, where: str, number: int) -> Seed:
    if fields is None:
        data = {k: v for k, v in row.items() if k != "id"}
    else:
        data = {}
        for name, column in fields.items():
            try:
                data[name] = _lookup(row, column)
            except KeyError:
                raise SeedLoadError(
                    f"{where}: record {number}: field {name!r} maps to column {column!r}, which is missing; "
                    f"the record has columns {sorted(row)}"
                ) from None
    row_id = row.get("id")
    return Seed.from_data(data, id=str(row_id) if row_id not in (None, "") else None)


def load_seeds(
    source: str | Path,
    fields: dict[str, str] | None = None,
    limit: int | None = None,
    shuffle_seed: int | None = None,
) -> list[Seed]:
    """Read seeds from a local file or a hub data set.

    Args:
        source: a ``.jsonl``/``.json``/``.csv``/``.parquet`` path, or ``hf://owner/name[:config][@split]``.
        fields: canonical name -> column (dotted paths reach nested values: ``instances.0.output``);
            None keeps every column except ``id``.
        limit: keep at most this many seeds (after shuffling).
        shuffle_seed: when given, shuffle deterministically with this seed before ``limit``.

    Returns:
        Seeds whose ``id`` is the row's ``id`` column when present, else a hash of ``data``.
        Record numbers in errors count from 1 in file order.

    Raises:
        SeedLoadError: missing file, unknown extension, an unreadable line (file and line number),
            or a mapped field missing from a record (file, record number, field, available columns).
    """
    text = str(source)
    if text.startswith(HUB_PREFIX):
        rows: Iterable[dict[str, Any]] = _read_hub(parse_hub_id(text))
    else:
        path = Path(source)
        if not path.is_file():
            raise SeedLoadError(f"{path}: seed file not found")
        reader = READERS.get(path.suffix.lower())
        if reader is None:
            raise SeedLoadError(f"{path}: unsupported seed file type; use one of {', '.join(READERS)}")
        rows = reader(path)
    seeds = [_to_seed(row, fields, text, n) for n, row in enumerate(rows, 1)]
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(seeds)
    return seeds[:limit] if limit is not None else seeds
