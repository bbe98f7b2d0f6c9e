"""Lexical diversity baselines over a list of texts (Chen et al. 2024, Table 1 and appendix C).

Every function takes ``texts: list[str]`` (one document per entry) and returns one float for the
whole set. Definitions follow Shaib et al. 2024 ("Standardizing the measurement of text
diversity") as implemented by the PyPI package ``diversity``; ``tests/test_diversity_lexical.py``
computes both on the same texts. Where we differ on purpose, the function's docstring says how
and why.

Raises:
    ValueError: every metric raises it for an empty list of texts.
"""

from __future__ import annotations

import gzip
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import combinations

DEFAULT_MAX_PAIRWISE_TEXTS = 300
_BLEU_TOKEN = re.compile(r"\w+|[^\w\s]")


def _require_texts(texts: Sequence[str]) -> None:
    if len(texts) == 0:
        raise ValueError("diversity metrics need at least one text; got an empty list")


def _ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def context_length(texts: Sequence[str], tokenize: Callable[[str], Sequence[object]] | None = None) -> float:
    """Mean number of tokens per text (Chen et al. 2024, Table 1, "Context Length").

    Args:
        texts: the documents.
        tokenize: maps a text to its tokens; default whitespace words (``str.split``). Pass a
            tokenizer's ``encode`` to count model tokens instead.

    Returns:
        Mean tokens per document (tokens, not characters).
    """
    _require_texts(texts)
    split = tokenize or str.split
    return sum(len(split(t)) for t in texts) / len(texts)


def self_repetition_score(texts: Sequence[str], n: int = 4) -> float:
    """Self-repetition score (Salkar et al. 2022; Shaib et al. 2024, sec. 3).

    For each document, sum over its distinct whitespace n-grams the number of *other* documents
    that contain the same n-gram, add one, take the natural log; average over documents.
    Higher means more repetition across documents (less diversity).

    Same definition as ``diversity.self_repetition_score`` (which ignores its ``n`` argument and
    always uses 4-grams); this one honours ``n`` and counts with one pass instead of the
    package's quadratic list concatenation.
    """
    _require_texts(texts)
    doc_ngrams = [set(_ngrams(t.split(), n)) for t in texts]
    doc_freq: Counter[tuple[str, ...]] = Counter()
    for grams in doc_ngrams:
        doc_freq.update(grams)
    total = 0.0
    for grams in doc_ngrams:
        shared = sum(doc_freq[g] for g in grams) - len(grams)
        total += math.log(shared + 1)
    return total / len(texts)


def ngram_diversity_score(texts: Sequence[str], max_n: int = 4) -> float:
    """N-gram diversity: sum over n = 1..max_n of (distinct n-grams / all n-grams) in the set.

    Source: Padmakumar & He 2023; Shaib et al. 2024 (sec. 3). Range (0, max_n]; higher is more
    diverse.

    Differs from ``diversity.ngram_diversity_score`` on purpose: that function joins all texts
    with spaces before taking n-grams, so n-grams span document boundaries and the score changes
    with the order of the documents; here n-grams stay inside one document (split on any
    whitespace). On a single single-spaced document both give the same value.

    Raises:
        ValueError: no document has at least one token.
    """
    _require_texts(texts)
    tokenized = [t.split() for t in texts]
    score = 0.0
    for n in range(1, max_n + 1):
        grams = [g for toks in tokenized for g in _ngrams(toks, n)]
        if n == 1 and not grams:
            raise ValueError("ngram_diversity_score: the texts contain no tokens")
        if grams:
            score += len(set(grams)) / len(grams)
    return score


def compression_ratio(texts: Sequence[str], level: int = 9) -> float:
    """Gzip compression ratio: UTF-8 bytes of the space-joined texts / gzip-compressed bytes.

    Source: Shaib et al. 2024 (sec. 3); Chen et al. 2024, Table 1. Higher means more redundancy
    (less diversity).

    Differs slightly from ``diversity.compression_ratio``: that function writes a gzip stream
    into a second gzip file on disk and measures that file, adding about 30 bytes of headers;
    here the text is compressed once in memory (mtime 0, so the value is reproducible). The two
    agree within about 1% on a few kilobytes of text.
    """
    _require_texts(texts)
    raw = " ".join(texts).encode("utf-8")
    if not raw:
        raise ValueError("compression_ratio: the texts are all empty")
    return len(raw) / len(gzip.compress(raw, compresslevel=level, mtime=0))


def _sample_texts(texts: Sequence[str], max_texts: int | None, seed: int) -> list[str]:
    if max_texts is None or len(texts) <= max_texts:
        return list(texts)
    return random.Random(seed).sample(list(texts), max_texts)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token sequences.

    Bit-parallel algorithm of Hyyrö (2004), "Bit-parallel LCS-length computation revisited":
    O(len(b)) big-integer operations on len(a)-bit words.
    """
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, tok in enumerate(a):
        masks[tok] = masks.get(tok, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for tok in b:
        u = v & masks.get(tok, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def homogenization_rougel(
    texts: Sequence[str], max_texts: int | None = DEFAULT_MAX_PAIRWISE_TEXTS, seed: int = 0
) -> float:
    """Homogenization score by ROUGE-L: mean ROUGE-L F1 over all pairs of distinct documents.

    Source: Shaib et al. 2024 (sec. 3), after Padmakumar & He 2023. Tokens are those of
    ``rouge_score`` (lower-cased alphanumeric words, no stemming), as in
    ``diversity.homogenization_score(measure="rougel")``. Range [0, 1]; higher is more
    homogeneous (less diverse).

    Differences from the package, on purpose: ROUGE-L F1 is symmetric, so each unordered pair is
    scored once, with a bit-parallel LCS (same value, far faster); the cost is quadratic, so
    at most ``max_texts`` documents, drawn with ``seed``, are compared (None: all); and a set
    whose pairs share nothing scores 0, where the package returns 1.

    Raises:
        ValueError: fewer than two texts.
    """
    from rouge_score.tokenizers import DefaultTokenizer

    sample = _sample_texts(texts, max_texts, seed)
    if len(sample) < 2:
        raise ValueError("homogenization needs at least two texts")
    tokenizer = DefaultTokenizer(use_stemmer=False)
    tokens = [tokenizer.tokenize(t) for t in sample]
    total = 0.0
    for a, b in combinations(tokens, 2):
        if a and b:
            total += 2.0 * lcs_length(a, b) / (len(a) + len(b))
    return total / (len(sample) * (len(sample) - 1) / 2)


def bleu_tokenize(text: str) -> list[str]:
    """Words and single punctuation marks, the granularity of BLEU's 13a tokenizer (no lower-casing)."""
    return _BLEU_TOKEN.findall(text)


def homogenization_bleu(
    texts: Sequence[str],
    max_texts: int | None = DEFAULT_MAX_PAIRWISE_TEXTS,
    seed: int = 0,
    max_order: int = 4,
) -> float:
    """Homogenization score by BLEU: mean over documents d of corpus BLEU(others -> d).

    Source: Shaib et al. 2024 (sec. 3). For each document d, the other documents are the
    hypotheses and d their single reference; corpus BLEU (Papineni et al. 2002) with orders
    1..max_order, no smoothing, brevity penalty exp(1 - r/c) when c < r. Range [0, 1]; higher is
    more homogeneous.

    Differs from ``diversity.homogenization_score(measure="bleu")``, which loads the ``bleu``
    metric from the Hugging Face Hub (impossible offline): the same corpus BLEU is computed here
    from clipped n-gram counts shared by each pair (counted once per unordered pair, since
    min(count_a, count_b) is symmetric), on :func:`bleu_tokenize` tokens; the test checks it
    against ``nltk``'s ``corpus_bleu``. At most ``max_texts`` documents, drawn with ``seed``.

    Raises:
        ValueError: fewer than two texts.
    """
    sample = _sample_texts(texts, max_texts, seed)
    m = len(sample)
    if m < 2:
        raise ValueError("homogenization needs at least two texts")
    tokens = [bleu_tokenize(t) for t in sample]
    counts = [[Counter(_ngrams(toks, n)) for n in range(1, max_order + 1)] for toks in tokens]
    # matches[d][n]: clipped n-gram matches of all other documents against reference d.
    matches = [[0] * max_order for _ in range(m)]
    for i, j in combinations(range(m), 2):
        for n in range(max_order):
            small, large = sorted((counts[i][n], counts[j][n]), key=len)
            shared = sum(min(c, large[g]) for g, c in small.items() if g in large)
            matches[i][n] += shared
            matches[j][n] += shared
    possible = [[max(len(t) - n, 0) for n in range(max_order)] for t in tokens]
    lengths = [len(t) for t in tokens]
    total_possible = [sum(p[n] for p in possible) for n in range(max_order)]
    total_length = sum(lengths)
    score = 0.0
    for d in range(m):
        precisions = []
        for n in range(max_order):
            denom = total_possible[n] - possible[d][n]
            precisions.append(matches[d][n] / denom if denom > 0 else 0.0)
        if min(precisions) <= 0:
            continue
        hyp_len = total_length - lengths[d]
        ref_len = lengths[d] * (m - 1)
        bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
        score += bp * math.exp(sum(math.log(p) for p in precisions) / max_order)
    return score / m
