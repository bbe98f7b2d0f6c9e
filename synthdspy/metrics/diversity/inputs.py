"""The inputs of ``synthdspy diversity``: texts read by the seed loader, and the names they go by.

Every source seeds accept is read the same way here: JSONL, JSON, CSV and Parquet files, ``hf://``
data sets and ``datasets.save_to_disk`` directories (``generate``'s export) through
:func:`synthdspy.seeds.loading.load_seeds`; PDF, Markdown, HTML and text documents, a folder of
them or a glob through :func:`synthdspy.seeds.documents.load_documents`, as chunks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from synthdspy.seeds.loading import SeedLoadError

RUN_NAME_MAX = 60
"""Longest default run name joined from several inputs (else the first input's name and a count)."""


def _reads_documents(source: str) -> bool:
    """True for a document file or glob, and for a folder holding documents that is no saved dataset."""
    from synthdspy.seeds.documents import FORMATS, is_document_source
    from synthdspy.seeds.loading import is_saved_dataset

    path = Path(source)
    if path.is_dir():
        return not is_saved_dataset(path) and any(p.suffix.lower() in FORMATS for p in path.rglob("*"))
    return is_document_source(source)


def load_texts(source: str | Path, text_field: str) -> list[str]:
    """The ``text_field`` of every record of ``source``, or the text of every chunk of its documents.

    ``text_field`` may be a dotted path (``instances.0.output``), as in ``[seeds] fields``; documents
    have one field, their chunk's text, whatever ``text_field`` says.

    Raises:
        SeedLoadError: a missing or unreadable source, a directory that is neither a saved dataset
            nor a folder of documents, a record without the field or whose value is null or not
            text, no records (messages name the file and the record, line or row).
    """
    text = str(source)
    if _reads_documents(text):
        from synthdspy.seeds.documents import load_documents

        return [seed.data["text"] for seed in load_documents(text, fields={"text": "text"})]
    from synthdspy.seeds.loading import load_seeds

    texts = []
    for number, seed in enumerate(load_seeds(source, fields={text_field: text_field}), 1):
        value = seed.data[text_field]
        if not isinstance(value, str):
            raise SeedLoadError(f"{text}: record {number}: field '{text_field}' is {type(value).__name__}, "
                                "expected text")
        texts.append(value)
    return texts


def input_names(paths: Sequence[str | Path]) -> list[str]:
    """Short display names: file stems without a trailing ``_predictions``; parent added if ambiguous."""
    stems = [Path(p).stem.removesuffix("_predictions") for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    return [f"{Path(p).parent.name}/{s}" for p, s in zip(paths, stems, strict=True)]


def run_name(paths: Sequence[str | Path]) -> str:
    """The default output name of a diversity run over ``paths`` (``runs/diversity/<name>``).

    The inputs' display names (:func:`input_names`, characters other than letters, digits, ``.``,
    ``_`` and ``-`` replaced by ``-``) joined by ``_vs_``; when that exceeds :data:`RUN_NAME_MAX`
    characters, the first name and ``_and_<n>_more``.
    """
    names = [re.sub(r"[^\w.-]+", "-", n).strip("-") or "input" for n in input_names(paths)]
    joined = "_vs_".join(names)
    if len(joined) <= RUN_NAME_MAX or len(names) == 1:
        return joined
    return f"{names[0]}_and_{len(names) - 1}_more"
