"""Exact and near-duplicate detection: a thread-safe index and a batch :func:`find_duplicates`.

Three methods, tried in this order for each text:

- ``exact``: SHA-256 of the normalised text (Unicode NFKC, case-folded, punctuation dropped,
  whitespace collapsed), so copies that differ only in case, spacing or punctuation match.
- ``minhash``: MinHash LSH over word ``shingle_size``-grams of the normalised text (Broder 1997,
  "On the resemblance and containment of documents"; as used for training-data near-duplicates by
  Lee et al. 2022, "Deduplicating Training Data Makes Language Models Better", section 4.1), with
  ``datasketch``. LSH candidates are kept when their MinHash-estimated Jaccard similarity is at
  least ``minhash_threshold``.
- ``embedding``: cosine similarity of all-MiniLM-L6-v2 sentence embeddings at least
  ``embedding_threshold`` (catches paraphrases that share few shingles). The encoder reads at most
  256 word pieces, so for long texts only their beginnings are compared.

The first occurrence of a text is kept (added to the index); later texts that match it are
duplicates and are not added. Reference texts (an evaluation set to decontaminate against) are
added up front and flagged, so a match against them is reported as a reference hit.
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # datasketch (and SciPy under it) loads on first use: 0.5 s off every command's start-up
    from datasketch import LeanMinHash

Encoder = Callable[[list[str]], np.ndarray]
_WORD = re.compile(r"\w+")
_LOAD_LOCK = threading.Lock()


def normalize(text: str) -> str:
    """``text`` NFKC-normalised and case-folded, as its words (``\\w+`` runs) joined by one space."""
    return " ".join(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))


def shingles(normalized: str, size: int) -> set[str]:
    """The set of word ``size``-grams of a normalised text; the whole text when it is shorter."""
    words = normalized.split()
    if len(words) <= size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def encode_texts(texts: list[str]) -> np.ndarray:
    """Unit-length all-MiniLM-L6-v2 embeddings of ``texts``, shape (len(texts), 384), float32.

    The encoder is loaded once per process, under a lock so that concurrent gates share one copy.
    """
    from synthdspy.embeddings import load_sentence_encoder

    with _LOAD_LOCK:
        encoder = load_sentence_encoder()
    return np.asarray(encoder.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                                     show_progress_bar=False), dtype=np.float32)


@dataclass(frozen=True)
class DuplicateHit:
    """``key`` duplicates the kept text ``of`` by ``method`` (``exact``/``minhash``/``embedding``) with
    ``similarity`` (1.0 for exact, estimated Jaccard for minhash, cosine for embedding);
    ``reference`` is True when ``of`` is a reference text (contamination)."""

    key: Hashable
    of: Hashable
    method: str
    similarity: float
    reference: bool


@dataclass
class Prepared:
    """What the index compares for one text: SHA-256 hex ``digest`` of its normalised form, its
    ``minhash`` (None when minhash is off or the text has no words) and its unit-length embedding
    ``vector`` (None when embeddings are off)."""

    digest: str
    minhash: LeanMinHash | None
    vector: np.ndarray | None


class DedupIndex:
    """A thread-safe index of kept texts; :meth:`check` tests a text against it and keeps it if new.

    Args:
        exact: use the normalised-text hash.
        minhash: use MinHash LSH with ``minhash_threshold`` (Jaccard, in (0, 1]), ``num_perm``
            permutations and word ``shingle_size``-grams.
        embedding: use embedding cosine similarity with ``embedding_threshold``; ``encoder`` maps a
            list of texts to unit-length row vectors (default :func:`encode_texts`, loaded lazily).

    Re-checking a key that is already kept (a retried or re-scored record with a stable id) first
    removes its old entry, so a text never duplicates itself. Copies (``copy.deepcopy``, pickle)
    get their own lock and an independent index.
    """

    def __init__(self, *, exact: bool = True, minhash: bool = True, minhash_threshold: float = 0.7,
                 num_perm: int = 128, shingle_size: int = 3, embedding: bool = True,
                 embedding_threshold: float = 0.95, encoder: Encoder | None = None) -> None:
        if not (exact or minhash or embedding):
            raise ValueError("dedup needs at least one of exact, minhash, embedding")
        self.exact, self.minhash, self.embedding = exact, minhash, embedding
        self.minhash_threshold, self.num_perm, self.shingle_size = minhash_threshold, num_perm, shingle_size
        self.embedding_threshold = embedding_threshold
        self.encoder: Encoder = encoder or encode_texts
        self._lock = threading.Lock()
        self._hashes: dict[str, Hashable] = {}
        self._lsh = None
        if minhash:
            from datasketch import MinHashLSH

            self._lsh = MinHashLSH(threshold=minhash_threshold, num_perm=num_perm)
        self._minhashes: dict[Hashable, LeanMinHash] = {}
        self._vectors = np.zeros((0, 0), dtype=np.float32)
        self._rows: dict[Hashable, int] = {}
        self._row_keys: list[Hashable] = []
        self._entries: dict[Hashable, Prepared] = {}
        self._reference: set[Hashable] = set()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_lock")
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def prepare(self, texts: Sequence[str]) -> list[Prepared]:
        """Hashes, MinHashes and embeddings of ``texts`` (the expensive part, done outside the lock;
        embeddings are computed in one batch)."""
        normalized = [normalize(t) for t in texts]
        digests = [hashlib.sha256(n.encode("utf-8")).hexdigest() for n in normalized]
        minhashes: list[LeanMinHash | None] = [None] * len(texts)
        if self.minhash:
            from datasketch import LeanMinHash, MinHash

            for i, n in enumerate(normalized):
                grams = shingles(n, self.shingle_size)
                if grams:
                    m = MinHash(num_perm=self.num_perm)
                    m.update_batch([g.encode("utf-8") for g in grams])
                    minhashes[i] = LeanMinHash(m)
        vectors: Sequence[np.ndarray | None] = [None] * len(texts)
        if self.embedding and texts:
            vectors = list(self.encoder(list(texts)))
        return [Prepared(d, m, v) for d, m, v in zip(digests, minhashes, vectors, strict=True)]

    def add(self, texts: Sequence[str], keys: Sequence[Hashable]) -> None:
        """Keep ``texts`` under ``keys`` without checking them (texts already known to be distinct,
        such as the records a resumed run stored before it was interrupted)."""
        self._add_many(texts, keys, reference=False)

    def add_reference(self, texts: Sequence[str], keys: Sequence[Hashable]) -> None:
        """Add reference texts under ``keys`` (every one kept, duplicates among them included)."""
        self._add_many(texts, keys, reference=True)

    def _add_many(self, texts: Sequence[str], keys: Sequence[Hashable], reference: bool) -> None:
        if len(texts) != len(keys):
            raise ValueError(f"{len(texts)} texts but {len(keys)} keys")
        for key, prepared in zip(keys, self.prepare(texts), strict=True):
            with self._lock:
                self._insert(key, prepared)
                if reference:
                    self._reference.add(key)

    def check(self, key: Hashable, text: str, *, add: bool = True,
              prepared: Prepared | None = None) -> DuplicateHit | None:
        """The hit for ``text`` (stored under ``key``) against the kept texts, or None when it is new.

        A new text is kept when ``add``; a duplicate never is. When several kept texts match, a
        reference text wins over a run text, then the earliest method (exact, minhash, embedding),
        then the highest similarity. ``prepared`` is ``text``'s :meth:`prepare` result when it was
        already computed (in a batch).
        """
        prepared = prepared or self.prepare([text])[0]
        with self._lock:
            if key in self._entries and key not in self._reference:
                self._remove(key)
            hit = self._find(key, prepared)
            if hit is None and add:
                self._insert(key, prepared)
            return hit

    def _find(self, key: Hashable, p: Prepared) -> DuplicateHit | None:
        first: DuplicateHit | None = None
        for method, matches in self._matches(p):
            if not matches:
                continue
            ref = [m for m in matches if m[0] in self._reference]
            of, sim = max(ref or matches, key=lambda m: m[1])
            hit = DuplicateHit(key, of, method, float(sim), bool(ref))
            if hit.reference:
                return hit
            first = first or hit
            if not self._reference:
                break
        return first

    def _matches(self, p: Prepared) -> Iterator[tuple[str, list[tuple[Hashable, float]]]]:
        if self.exact:
            of = self._hashes.get(p.digest)
            yield "exact", [(of, 1.0)] if of is not None else []
        if self._lsh is not None and p.minhash is not None:
            found = [(k, self._minhashes[k].jaccard(p.minhash)) for k in self._lsh.query(p.minhash)]
            yield "minhash", [m for m in found if m[1] >= self.minhash_threshold]
        if self.embedding and p.vector is not None and self._row_keys:
            sims = self._vectors[: len(self._row_keys)] @ p.vector
            rows = np.flatnonzero(sims >= self.embedding_threshold)
            yield "embedding", [(self._row_keys[r], float(sims[r])) for r in rows
                                if self._row_keys[r] is not None]

    def _insert(self, key: Hashable, p: Prepared) -> None:
        self._entries[key] = p
        if self.exact:
            self._hashes.setdefault(p.digest, key)
        if self._lsh is not None and p.minhash is not None:
            self._lsh.insert(key, p.minhash, check_duplication=False)
            self._minhashes[key] = p.minhash
        if self.embedding and p.vector is not None:
            n = len(self._row_keys)
            if n == len(self._vectors):
                grown = np.zeros((max(64, 2 * n), p.vector.shape[0]), dtype=np.float32)
                if n:
                    grown[:n] = self._vectors
                self._vectors = grown
            self._vectors[n] = p.vector
            self._rows[key] = n
            self._row_keys.append(key)

    def _remove(self, key: Hashable) -> None:
        p = self._entries.pop(key)
        if self._hashes.get(p.digest) == key:
            del self._hashes[p.digest]
        if key in self._minhashes:
            self._lsh.remove(key)
            del self._minhashes[key]
        if key in self._rows:
            row = self._rows.pop(key)
            self._vectors[row] = 0.0
            self._row_keys[row] = None


def find_duplicates(texts: Sequence[str], *, reference: Sequence[str] = (), exact: bool = True,
                    minhash: bool = True, minhash_threshold: float = 0.7, num_perm: int = 128,
                    shingle_size: int = 3, embedding: bool = True, embedding_threshold: float = 0.95,
                    encoder: Encoder | None = None) -> list[DuplicateHit]:
    """Every text of ``texts`` that duplicates an earlier text or a reference text.

    Args:
        texts: the texts, in order; the first occurrence of each group is kept.
        reference: texts to decontaminate against; a hit has ``reference=True`` and ``of`` set to
            the reference position.
        exact, minhash, minhash_threshold, num_perm, shingle_size, embedding, embedding_threshold,
            encoder: as for :class:`DedupIndex`.

    Returns:
        One :class:`DuplicateHit` per duplicate text, in order, with ``key`` its position in
        ``texts`` and ``of`` the position of the kept text it matches.
    """
    index = DedupIndex(exact=exact, minhash=minhash, minhash_threshold=minhash_threshold, num_perm=num_perm,
                       shingle_size=shingle_size, embedding=embedding, embedding_threshold=embedding_threshold,
                       encoder=encoder)
    if reference:
        index.add_reference(reference, [("reference", i) for i in range(len(reference))])
    hits = []
    for i, prepared in enumerate(index.prepare(texts)):
        hit = index.check(i, texts[i], prepared=prepared)
        if hit is not None:
            if hit.reference:
                hit = DuplicateHit(i, hit.of[1], hit.method, hit.similarity, True)
            hits.append(hit)
    return hits
