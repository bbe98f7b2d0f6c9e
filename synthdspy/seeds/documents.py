"""Documents as seeds: PDF, Markdown, HTML and plain-text files, a directory of them, or a glob,
chunked into passages that each keep where they came from.

Each chunk is a seed whose ``data`` maps ``[seeds] fields`` over one column, ``text`` (by default
``{source = "text"}``, the input corpus-aware tasks read), and whose ``metadata["document"]`` is its
provenance: ``file``, ``format``, ``pages`` ([first, last], PDF), ``heading`` (the heading path where
it starts, Markdown and HTML), ``char_start``/``char_end`` (offsets into the document's text, see
:class:`~synthdspy.seeds.text_formats.Document`), ``chunk`` (its index in the file) and, for PDF
pages flagged as OCR noise, ``ocr_noise_pages``. Tasks copy it into every record's metadata.

A file named on its own that cannot be read is an error; in a directory or a glob it is skipped
with a warning naming it and why, and only a source with no readable text at all is an error.
"""

from __future__ import annotations

import bisect
import glob
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synthdspy.records import Seed, content_hash
from synthdspy.seeds.chunking import chunk_spans, cl100k_tokens
from synthdspy.seeds.loading import SeedLoadError
from synthdspy.seeds.text_formats import Document, decode, read_html, read_markdown, read_text

log = logging.getLogger(__name__)

FORMATS = {".pdf": "pdf", ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html",
           ".txt": "text"}
DEFAULT_CHUNK_WORDS = 300
"""Chunk size for documents when neither ``chunk_words`` nor ``chunk_tokens`` is set."""


def is_document_source(source: str) -> bool:
    """True for a directory, a glob (``*``, ``?`` or ``[`` in it) or a file with a document suffix."""
    return glob.has_magic(source) or Path(source).is_dir() or Path(source).suffix.lower() in FORMATS


def document_paths(source: str) -> tuple[list[Path], bool]:
    """The document files ``source`` names, sorted, and whether it named several (a directory or glob).

    A directory is searched recursively; files without a document suffix (a LICENSE, a JSONL file)
    are left out of directories and globs.

    Raises:
        SeedLoadError: no such file, or a directory or glob without any document file.
    """
    path = Path(source)
    if path.is_file():
        return [path], False
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS)
    elif glob.has_magic(source):
        found = sorted(Path(p) for p in glob.glob(source, recursive=True)
                       if Path(p).is_file() and Path(p).suffix.lower() in FORMATS)
    else:
        raise SeedLoadError(f"{source}: seed file not found")
    if not found:
        raise SeedLoadError(f"{source}: no document files ({', '.join(FORMATS)}) in it")
    return found, True


def read_document(path: Path, password_env: str = "") -> Document:
    """Read one document file by its suffix (see :data:`FORMATS`).

    Raises:
        SeedLoadError: the file is empty, unreadable, not UTF-8 (Markdown, text), encrypted and not
            opened, or has no text; the message names the file.
    """
    fmt = FORMATS.get(path.suffix.lower())
    if fmt == "pdf":
        from synthdspy.seeds.pdf import read_pdf

        return read_pdf(path, password_env)
    if fmt == "markdown":
        return read_markdown(path, decode(path))
    if fmt == "html":
        return read_html(path)
    if fmt == "text":
        return read_text(path)
    raise SeedLoadError(f"{path}: not a document file; use one of {', '.join(FORMATS)}")


def provenance(doc: Document, start: int, end: int, index: int) -> dict[str, Any]:
    """The ``metadata["document"]`` of the chunk ``doc.text[start:end]``, chunk ``index`` of ``doc``."""
    starts = [s.start for s in doc.sections]
    first = doc.sections[bisect.bisect_right(starts, start) - 1]
    last = doc.sections[bisect.bisect_right(starts, end - 1) - 1]
    where: dict[str, Any] = {"file": str(doc.path), "format": doc.format}
    if first.page is not None and last.page is not None:
        where["pages"] = [first.page, last.page]
        noisy = [p for p in doc.noisy_pages if first.page <= p <= last.page]
        if noisy:
            where["ocr_noise_pages"] = noisy
    if first.heading:
        where["heading"] = first.heading
    return {**where, "char_start": start, "char_end": end, "chunk": index}


def _row_to_data(row: dict[str, str], fields: dict[str, str], path: Path) -> dict[str, Any]:
    """``fields`` (name -> column) applied to a chunk's row.

    Raises:
        SeedLoadError: a field maps to a column a document chunk does not have.
    """
    missing = {name: col for name, col in fields.items() if col not in row}
    if missing:
        raise SeedLoadError(f"{path}: seeds.fields {missing} name columns a document chunk lacks; it has only "
                            f"{sorted(row)}")
    return {name: row[col] for name, col in fields.items()}


def document_seeds(
    doc: Document, size: int, overlap: int, count: Callable[[str], int] | None, fields: dict[str, str]
) -> list[Seed]:
    """One seed per chunk of ``doc`` (:func:`~synthdspy.seeds.chunking.chunk_spans`), with its
    provenance in ``metadata["document"]`` and an id hashing the file name, the span and the text."""
    seeds = []
    spans = chunk_spans(doc.text, size, overlap, [s.start for s in doc.sections], doc.blocks, count)
    for index, (start, end) in enumerate(spans):
        text = doc.text[start:end]
        data = _row_to_data({"text": text}, fields, doc.path)
        seed_id = content_hash("document", doc.path.name, start, end, text)
        seeds.append(Seed(id=seed_id, data=data, metadata={"document": provenance(doc, start, end, index)}))
    return seeds


def load_documents(
    source: str,
    chunk_words: int = 0,
    chunk_tokens: int = 0,
    overlap: int = 0,
    fields: dict[str, str] | None = None,
    password_env: str = "",
) -> list[Seed]:
    """Chunk seeds from the documents ``source`` names, in file order then text order.

    Args:
        source: a document file, a directory (searched recursively) or a glob.
        chunk_words: chunk size in words; chunk_tokens: chunk size in ``cl100k_base`` tokens
            (:func:`~synthdspy.seeds.chunking.cl100k_tokens`); when both are 0,
            :data:`DEFAULT_CHUNK_WORDS` words. ``overlap`` is in the same unit.
        fields: canonical name -> column over a chunk's one column ``text``; default ``{"source": "text"}``.
        password_env: the environment variable holding the password of encrypted PDFs.

    Raises:
        SeedLoadError: an overlap not below the chunk size, a missing source, a directory or glob
            without documents, a single file that cannot be read (see :func:`read_document`), a
            field mapped to another column than ``text``, or no text in any of the documents.
    """
    paths, several = document_paths(source)
    count = cl100k_tokens if chunk_tokens else None
    size = chunk_tokens or chunk_words or DEFAULT_CHUNK_WORDS
    if overlap >= size:
        raise SeedLoadError(f"{source}: seeds.chunk_overlap ({overlap}) must be smaller than the chunk size ({size})")
    seeds: list[Seed] = []
    for path in paths:
        try:
            doc = read_document(path, password_env)
        except SeedLoadError as exc:
            if not several:
                raise
            log.warning("%s; skipped the file", exc)
            continue
        seeds.extend(document_seeds(doc, size, overlap, count, fields or {"source": "text"}))
    if not seeds:
        raise SeedLoadError(f"{source}: none of its {len(paths)} document(s) has any text to use")
    return seeds
