"""Labelled documents read from sources: text and documents, or records (generated or real corpora).

A source is one ``[[sources]]`` entry of a training config, read by the seed readers so that
training reads every format seeds read. ``format = "text"``: a text, Markdown, HTML or PDF file
(:func:`synthdspy.seeds.documents.read_document`), split into documents by blank lines, by a fixed
number of characters, or kept whole. ``format = "records"`` (or its older name ``"jsonl"``): a
JSONL/JSON/CSV/Parquet file, a ``datasets.save_to_disk`` directory (``generate``'s default export,
``runs/<name>/generate/dataset``) or an ``hf://`` id (:func:`synthdspy.seeds.loading.load_seeds`),
one document per record through a template such as ``"{question}\\n{answer}"``. ``group_by`` splits
one source into labelled groups (``passages`` by their ``source`` field becomes
``passages/wikipedia`` ...). Relative paths are resolved against the current working directory.
"""

from __future__ import annotations

import glob
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from synthdspy.configio import ConfigError
from synthdspy.seeds.loading import HUB_PREFIX, SeedLoadError, is_saved_dataset, load_seeds

BLANK_LINES = re.compile(r"\n[ \t]*\n+")


class SourceError(ConfigError):
    """A source that cannot be read: missing files, bad JSON, a template field a record lacks."""


class SourceSpec(BaseModel):
    """One ``[[sources]]`` entry.

    ``path`` is a file or a glob (sorted); for records also a saved-dataset directory or an
    ``hf://owner/name[:config][@split]`` id. ``weight`` is the source's mixture weight (normalised
    over sources); ``group_weights`` optionally weighs the ``group_by`` groups inside it (default:
    in proportion to their characters). ``max_repeats`` caps how many times the stream may go over
    the source's training tokens. ``dimensions_field`` names a JSON object of dimension labels,
    ``difficulty_field`` a numeric difficulty. ``limit`` keeps the first N documents.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[^/\s]+$")
    path: str
    format: Literal["text", "records", "jsonl"] = "text"
    split: Literal["none", "blank_lines", "chunk"] = "blank_lines"
    chunk_chars: int = Field(2000, gt=0)
    template: str = "{text}"
    group_by: str | None = None
    weight: float = Field(1.0, ge=0)
    group_weights: dict[str, float] | None = None
    max_repeats: float | None = Field(None, gt=0)
    dimensions_field: str | None = None
    difficulty_field: str | None = None
    limit: int | None = Field(None, gt=0)
    min_chars: int = Field(1, ge=1)


@dataclass
class Document:
    """One document: its text, its group (``source`` or ``source/group``) and its labels.

    ``stage`` is the curriculum stage index, set by :func:`synthdspy.training.data.assign_stages`.
    """

    text: str
    group: str
    index: int
    dimensions: dict[str, str] = field(default_factory=dict)
    difficulty: float | None = None
    stage: int = 0

    @property
    def source(self) -> str:
        """The source name (the group without its ``/value`` suffix)."""
        return self.group.split("/", 1)[0]


def resolve_paths(spec: SourceSpec) -> list[Path]:
    """The files of ``spec.path`` (a file or a glob), sorted; for records, a saved dataset directory
    counts as a file.

    Raises:
        SourceError: when nothing matches.
    """
    paths = sorted(Path(p) for p in glob.glob(spec.path)) if glob.has_magic(spec.path) else [Path(spec.path)]
    paths = [p for p in paths if p.is_file() or (spec.format != "text" and is_saved_dataset(p))]
    if not paths:
        raise SourceError(
            f"sources.{spec.name}.path: no file matches {spec.path!r} (relative to {Path.cwd()})"
        )
    return paths


def split_text(text: str, spec: SourceSpec) -> list[str]:
    """Split one file's text into documents per ``spec.split`` (stripped; shorter than min_chars dropped)."""
    if spec.split == "none":
        parts = [text]
    elif spec.split == "blank_lines":
        parts = [p.strip() for p in BLANK_LINES.split(text)]
    else:
        parts = [text[i : i + spec.chunk_chars] for i in range(0, len(text), spec.chunk_chars)]
    return [p for p in parts if len(p.strip()) >= spec.min_chars]


def _template_fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def _record_document(row: dict[str, Any], spec: SourceSpec, where: str, index: int) -> Document:
    try:
        text = spec.template.format_map(row)
    except (KeyError, IndexError, AttributeError) as exc:
        raise SourceError(f"{where}: template {spec.template!r} needs field {exc} the record lacks") from None
    group = spec.name
    if spec.group_by:
        if spec.group_by not in row:
            raise SourceError(f"{where}: group_by field {spec.group_by!r} missing")
        group = f"{spec.name}/{row[spec.group_by]}"
    dims: dict[str, str] = {}
    if spec.dimensions_field:
        raw = row.get(spec.dimensions_field, {})
        if not isinstance(raw, dict):
            raise SourceError(f"{where}: {spec.dimensions_field!r} must be an object of dimension -> value")
        dims = {str(k): str(v) for k, v in raw.items()}
    difficulty = None
    if spec.difficulty_field:
        try:
            difficulty = float(row[spec.difficulty_field])
        except (KeyError, TypeError, ValueError):
            raise SourceError(f"{where}: {spec.difficulty_field!r} must be a number") from None
    return Document(text=text, group=group, index=index, dimensions=dims, difficulty=difficulty)


def _file_text(path: Path) -> str:
    """The text of one document file (plain text when the suffix is not a document format).

    Raises:
        SeedLoadError: see :func:`synthdspy.seeds.documents.read_document`.
    """
    from synthdspy.seeds.documents import FORMATS, read_document
    from synthdspy.seeds.text_formats import decode

    return read_document(path).text if path.suffix.lower() in FORMATS else decode(path)


def _records(spec: SourceSpec) -> list[tuple[str, dict[str, Any]]]:
    """``(where, row)`` of every record of a records source, through the seed loader.

    Raises:
        SourceError: no matching file, or what :func:`~synthdspy.seeds.loading.load_seeds` raises
            (file and line or row named).
    """
    paths = [spec.path] if spec.path.startswith(HUB_PREFIX) else [str(p) for p in resolve_paths(spec)]
    rows = []
    for path in paths:
        try:
            seeds = load_seeds(path)
        except SeedLoadError as exc:
            raise SourceError(f"sources.{spec.name}: {exc}") from None
        rows += [(f"{path}: record {i}", {**seed.data, "id": seed.id}) for i, seed in enumerate(seeds, 1)]
    return rows


def load_source(spec: SourceSpec) -> list[Document]:
    """Read every document of one source, in file order.

    Returns:
        Documents with ``group`` = ``spec.name`` (or ``name/value`` with ``group_by``) and
        ``index`` = position within the source.

    Raises:
        SourceError: no matching file, an unreadable file or record (file and line or record named),
            a record without a template field, or a source that yields no document.
    """
    docs: list[Document] = []
    if spec.format == "text":
        for path in resolve_paths(spec):
            try:
                text = _file_text(path)
            except SeedLoadError as exc:
                raise SourceError(f"sources.{spec.name}: {exc}") from None
            for part in split_text(text, spec):
                docs.append(Document(text=part, group=spec.name, index=len(docs)))
                if spec.limit and len(docs) >= spec.limit:
                    return docs
    else:
        if not _template_fields(spec.template):
            raise SourceError(f"sources.{spec.name}.template: {spec.template!r} names no field")
        for where, row in _records(spec):
            doc = _record_document(row, spec, where, len(docs))
            if len(doc.text.strip()) >= spec.min_chars:
                docs.append(doc)
            if spec.limit and len(docs) >= spec.limit:
                return docs
    if not docs:
        raise SourceError(f"sources.{spec.name}: {spec.path!r} holds no document")
    return docs
