"""The stateful ``dedup`` gate: exact and near-duplicates across a run, and decontamination.

Methods and thresholds are those of :mod:`synthdspy.dedup`.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from synthdspy.dedup import DedupIndex
from synthdspy.gates.base import Gate
from synthdspy.records import Record, Verdict
from synthdspy.registry import Params, register_gate

TextField = Literal["output", "text", "instruction", "input", "chosen"]


def load_reference(path: str | Path, field: str = "text") -> tuple[list[str], list[str]]:
    """(texts, keys) of a reference corpus.

    ``.txt``: one text per non-empty line, keyed ``<path>:<line>``. Anything else goes through
    :func:`synthdspy.seeds.loading.load_seeds` (``.jsonl``/``.json``/``.csv``/``.parquet`` or
    ``hf://``), reading the dotted column ``field``, keyed ``<path>#<row id>``.

    Raises:
        synthdspy.seeds.loading.SeedLoadError: the file is missing or unreadable, or a row lacks
            ``field`` (the message names the file, the row and the field).
    """
    from synthdspy.seeds.loading import SeedLoadError, load_seeds

    text = str(path)
    if text.endswith(".txt"):
        p = Path(path)
        if not p.is_file():
            raise SeedLoadError(f"{p}: reference file not found")
        lines = [(i, line.strip()) for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)]
        kept = [(i, line) for i, line in lines if line]
        return [line for _, line in kept], [f"{text}:{i}" for i, _ in kept]
    seeds = load_seeds(text, fields={"text": field})
    return [str(s.data["text"]) for s in seeds], [f"{text}#{s.id}" for s in seeds]


class DedupParams(Params):
    """Parameters of the ``dedup`` gate."""

    field: TextField = Field("output", description="record text to compare; 'text' = instruction + output")
    exact: bool = Field(True, description="normalised-text hash")
    minhash: bool = Field(True, description="MinHash LSH near-duplicates")
    minhash_threshold: float = Field(0.7, gt=0, le=1, description="Jaccard similarity of word shingles")
    num_perm: int = Field(128, ge=16, le=1024, description="MinHash permutations")
    shingle_size: int = Field(3, ge=1, le=20, description="words per shingle")
    embedding: bool = Field(True, description="all-MiniLM-L6-v2 cosine near-duplicates")
    embedding_threshold: float = Field(0.95, gt=0, le=1, description="cosine similarity")
    reference: str | None = Field(None, description="corpus to decontaminate against: .txt/.jsonl/... or hf://")
    reference_field: str = Field("text", min_length=1, description="column of the reference rows (dotted path)")
    index_rejected: bool = Field(False, description="also remember records that earlier gates rejected")

    @field_validator("reference")
    @classmethod
    def _reference_exists(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("hf://") and not Path(value).is_file():
            raise ValueError(f"reference file {value!r} not found")
        return value


@register_gate("dedup", DedupParams)
class DedupGate(Gate):
    """Reject exact and near-duplicates of records already kept in this run, and reference hits.

    Stateful and thread-safe: the first record with a given text passes and is remembered; later
    matches fail with reason ``duplicate of <id> (<method> <similarity>)`` and diagnosis
    ``DUPLICATE``; a match with the reference corpus fails with reason ``contaminated: ...`` and
    diagnosis ``CONTAMINATED``. Only records that passed every earlier gate are remembered (unless
    ``index_rejected``), so put this gate last. Score: the similarity of the match, None when new.
    A resumed run first remembers what the interrupted one kept (:meth:`restore`), so it rejects
    duplicates of records stored before the interruption.
    """

    name = "dedup"
    blocking = True

    def __init__(self, field: str = "output", exact: bool = True, minhash: bool = True,
                 minhash_threshold: float = 0.7, num_perm: int = 128, shingle_size: int = 3,
                 embedding: bool = True, embedding_threshold: float = 0.95, reference: str | None = None,
                 reference_field: str = "text", index_rejected: bool = False) -> None:
        super().__init__()
        self.field, self.reference, self.reference_field = field, reference, reference_field
        self.index_rejected = index_rejected
        self.index = DedupIndex(exact=exact, minhash=minhash, minhash_threshold=minhash_threshold,
                                num_perm=num_perm, shingle_size=shingle_size, embedding=embedding,
                                embedding_threshold=embedding_threshold)
        self._reference_loaded = reference is None
        self._load_lock = threading.Lock()

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_load_lock")
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._load_lock = threading.Lock()

    def _ensure_reference(self) -> None:
        with self._load_lock:
            if not self._reference_loaded:
                texts, keys = load_reference(self.reference, self.reference_field)
                self.index.add_reference(texts, keys)
                self._reference_loaded = True

    def _text(self, record: Record) -> str:
        return record.text if self.field == "text" else (getattr(record, self.field) or "")

    def restore(self, records: Iterable[Record], batch_size: int = 512) -> None:
        """Remember the stored ``records`` this gate kept: those whose ``dedup`` verdict passed and,
        unless ``index_rejected``, that passed every other gate too. Embeddings are computed in
        batches of ``batch_size``."""
        kept = (r for r in records
                if any(v.gate == self.name and v.passed for v in r.verdicts)
                and (self.index_rejected or r.passed))
        while batch := list(itertools.islice(kept, batch_size)):
            self.index.add([self._text(r) for r in batch], [r.id for r in batch])

    def forward(self, record: Record) -> Verdict:
        self._ensure_reference()
        text = self._text(record)
        remember = self.index_rejected or all(v.passed for v in record.verdicts)
        hit = self.index.check(record.id, text, add=remember)
        if hit is None:
            return Verdict(gate=self.name, passed=True, reason="new")
        how = f"{hit.method} {hit.similarity:.3f}"
        if hit.reference:
            return Verdict(gate=self.name, passed=False, score=hit.similarity,
                           reason=f"contaminated: matches reference {hit.of} ({how})", diagnosis="CONTAMINATED")
        return Verdict(gate=self.name, passed=False, score=hit.similarity,
                       reason=f"duplicate of {hit.of} ({how})", diagnosis="DUPLICATE")
