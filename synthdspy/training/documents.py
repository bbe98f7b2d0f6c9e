"""Labelled documents read from sources: text files and JSONL (generated records or real corpora).

A source is one ``[[sources]]`` entry of a training config. A text file is split into documents
by blank lines, by a fixed number of characters, or kept whole; a JSONL file gives one document
per line through a template such as ``"{question}\\n{answer}"``. ``group_by`` splits one source
into labelled groups (``passages`` by their ``source`` field becomes ``passages/wikipedia`` ...).
Relative paths are resolved against the current working directory (run from the repo root).
"""

from __future__ import annotations

import glob
import json
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from synthdspy.configio import ConfigError

BLANK_LINES = re.compile(r"\n[ \t]*\n+")


class SourceError(ConfigError):
    """A source that cannot be read: missing files, bad JSON, a template field a record lacks."""


class SourceSpec(BaseModel):
    """One ``[[sources]]`` entry.

    ``path`` is a file or a glob (sorted). ``weight`` is the source's mixture weight (normalised
    over sources); ``group_weights`` optionally weighs the ``group_by`` groups inside it (default:
    in proportion to their characters). ``max_repeats`` caps how many times the stream may go over
    the source's training tokens. ``dimensions_field`` names a JSON object of dimension labels,
    ``difficulty_field`` a numeric difficulty. ``limit`` keeps the first N documents.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[^/\s]+$")
    path: str
    format: Literal["text", "jsonl"] = "text"
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
    """The files of ``spec.path`` (a file or a glob), sorted.

    Raises:
        SourceError: when nothing matches.
    """
    paths = sorted(Path(p) for p in glob.glob(spec.path)) if glob.has_magic(spec.path) else [Path(spec.path)]
    paths = [p for p in paths if p.is_file()]
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


def load_source(spec: SourceSpec) -> list[Document]:
    """Read every document of one source, in file order.

    Returns:
        Documents with ``group`` = ``spec.name`` (or ``name/value`` with ``group_by``) and
        ``index`` = position within the source.

    Raises:
        SourceError: no matching file, invalid JSON (file and line named), a record without a
            template field, or a source that yields no document.
    """
    docs: list[Document] = []
    if spec.format == "jsonl" and not _template_fields(spec.template):
        raise SourceError(f"sources.{spec.name}.template: {spec.template!r} names no field")
    for path in resolve_paths(spec):
        if spec.format == "text":
            for text in split_text(path.read_text(encoding="utf-8"), spec):
                docs.append(Document(text=text, group=spec.name, index=len(docs)))
                if spec.limit and len(docs) >= spec.limit:
                    return docs
            continue
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SourceError(f"{where}: invalid JSON: {exc.msg}") from None
                if not isinstance(row, dict):
                    raise SourceError(f"{where}: expected a JSON object, got {type(row).__name__}")
                doc = _record_document(row, spec, where, len(docs))
                if len(doc.text.strip()) >= spec.min_chars:
                    docs.append(doc)
                if spec.limit and len(docs) >= spec.limit:
                    return docs
    if not docs:
        raise SourceError(f"sources.{spec.name}: {spec.path!r} holds no document")
    return docs
