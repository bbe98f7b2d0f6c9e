"""Measurable text properties shared by the writer, the judge and the grouping answers: content
words, overlap, coverage, repetition, JSON debris, richness, length, and `judge_features`."""

from __future__ import annotations

import re

from synthdspy.simulator.knobs import detect_knobs

_STOPWORD_TEXT = (
    "a an the and or but if of to in on at by for with from as is are was were be been being it its "
    "this that these those there their they them he she his her we you your our i me my not no so "
    "than then too very can could would should will may might do does did has have had into about "
    "over also which who what when where why how all any each some such more most other only own "
    "same just tell write give describe please make"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_REASONING_MARKERS = re.compile(
    r"\b(because|therefore|thus|hence|since|so that|as a result|step \d+)\b|^\s*\d+[.)]\s",
    re.IGNORECASE | re.MULTILINE,
)
_DEBRIS = re.compile(r"\[\s*\"|\"\s*,\s*\"|\{\s*\"|\"\s*\]|\[\s*\]|\{\s*\}")
_LINE_PREFIX = re.compile(r"^\s*(?:step \d+:|\d+[.)]|[a-h][.)]|[-*])\s*", re.IGNORECASE)
SENSIBLE_WORDS = (20, 900)


def content_words(text: str) -> list[str]:
    """Lower-cased alphanumeric tokens of `text` that are not stopwords (the unit of overlap)."""
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOPWORDS]


def count_tokens(text: str) -> int:
    """Simulated token count: words plus punctuation marks (no tokenizer is involved)."""
    return len(re.findall(r"\w+|[^\w\s]", text))


def split_sentences(text: str) -> list[str]:
    """Sentences of `text` (split at . ! ? and line breaks) having at least three words."""
    pieces = re.split(r"(?<=[.!?])\s+|\n+", text)
    return [p.strip() for p in pieces if len(p.split()) >= 3]


def overlap(candidate: str, source: str) -> float:
    """Share of the candidate's content words that occur in the source, in [0, 1]; 0 if empty."""
    words = content_words(candidate)
    if not words:
        return 0.0
    vocab = set(content_words(source))
    return sum(w in vocab for w in words) / len(words)


def coverage(candidate: str, request: str) -> float:
    """Share of the distinct content words of `request` found in `candidate`, in [0, 1]; 1 if the
    request has none (nothing to cover)."""
    wanted = set(content_words(request))
    if not wanted:
        return 1.0
    return len(wanted & set(content_words(candidate))) / len(wanted)


def repetition(text: str, n: int = 4) -> float:
    """How repetitive `text` is, in [0, 1]: the larger of the duplicate-sentence share
    (1 - distinct / all sentences, after dropping "Step N:"/numbering prefixes, case-folded) and
    the repeated word n-gram share (1 - distinct / all word n-grams, n = 4 by default)."""
    sentences = [_LINE_PREFIX.sub("", s).lower() for s in split_sentences(text)]
    dup = 1.0 - len(set(sentences)) / len(sentences) if sentences else 0.0
    words = re.findall(r"[a-z0-9']+", text.lower())
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    rep = 1.0 - len(set(grams)) / len(grams) if grams else 0.0
    return max(dup, rep)


def debris(text: str) -> float:
    """Share of the non-empty lines of `text` holding JSON list/object debris (`["`, `", "`,
    `{"`, `"]`, `[]`, `{}`) that a writer pasted instead of prose, in [0, 1]."""
    lines = [line for line in text.splitlines() if line.strip()]
    return sum(bool(_DEBRIS.search(line)) for line in lines) / len(lines) if lines else 0.0


def richness(text: str, full: float = 0.8) -> float:
    """Vocabulary richness in [0, 1]: the type-token ratio of the content words (distinct / all),
    divided by `full` (a ratio of 0.8 or more counts as fully rich) and capped at 1; 0 if empty."""
    words = content_words(text)
    return min(1.0, len(set(words)) / len(words) / full) if words else 0.0


def length_score(words: int, low: int = SENSIBLE_WORDS[0], high: int = SENSIBLE_WORDS[1]) -> float:
    """1.0 for a word count inside [low, high]; words / low below it; high / words above it."""
    if words < low:
        return words / low
    return 1.0 if words <= high else high / words


def asks_for_reasoning(request: str) -> bool:
    """True when an instruction or rubric asks for reasoning (the `KNOBS["reasoning"]` family)."""
    return detect_knobs(request)["reasoning"]


def judge_features(candidate: str, source: str | None, request: str = "", rubric: str = "") -> dict[str, float]:
    """Measured properties of a candidate record, and the quality score built from them.

    Inputs: the candidate text; the source it should be grounded in (None or "" for none); the
    request it answers (instruction/question inputs, for coverage); the rubric (with the request,
    decides whether reasoning is asked for).

    Features, each in [0, 1] (`words` is a count):
      overlap    `overlap(candidate, source)`, support of its words in the source (0 without one);
      coverage   `coverage(candidate, request)`, share of the request's content words it takes up;
      reasoning  1.0 if reasoning markers occur (because/therefore/thus/step N/numbered lines);
      asked      1.0 if the request or rubric asks for reasoning (`asks_for_reasoning`);
      length     `length_score(words)`, 1 inside `SENSIBLE_WORDS` = (20, 900) words;
      richness   `richness(candidate)`, content-word type-token ratio / 0.8, capped at 1;
      repetition `repetition(candidate)`, duplicate sentences or repeated word 4-grams;
      debris     `debris(candidate)`, share of lines holding pasted JSON list/object syntax.

    Quality, in [0, 1]:
      content = mean(length, coverage, richness[, reasoning if asked])             (no source)
      content = 0.6 overlap + 0.15 length + 0.25 (reasoning if asked else coverage) (with source)
      quality = content * (1 - repetition) * (1 - debris)
    The weights are this simulator's own convention (no paper): support in the source dominates,
    as in faithfulness judges; repetition, pasted structure and a thin vocabulary are what rubric
    judges punish in synthetic text, so they scale or lower the score; reasoning counts only
    where the request or rubric asks for it.
    """
    words = len(candidate.split())
    asked = asks_for_reasoning(request + "\n" + rubric)
    feats = {
        "overlap": overlap(candidate, source) if source else 0.0,
        "coverage": coverage(candidate, request),
        "reasoning": 1.0 if _REASONING_MARKERS.search(candidate) else 0.0,
        "asked": 1.0 if asked else 0.0,
        "length": length_score(words),
        "richness": richness(candidate),
        "repetition": repetition(candidate),
        "debris": debris(candidate),
        "words": float(words),
    }
    if source:
        third = feats["reasoning"] if asked else feats["coverage"]
        content = 0.6 * feats["overlap"] + 0.15 * feats["length"] + 0.25 * third
    else:
        parts = [feats["length"], feats["coverage"], feats["richness"]] + ([feats["reasoning"]] if asked else [])
        content = sum(parts) / len(parts)
    feats["quality"] = content * (1.0 - feats["repetition"]) * (1.0 - feats["debris"])
    return feats


def _frequent_words(text: str, k: int) -> list[str]:
    """Up to `k` most frequent content words longer than 3 letters (ties: first occurrence)."""
    counts: dict[str, int] = {}
    for w in content_words(text):
        if len(w) > 3 and not w.isdigit():
            counts[w] = counts.get(w, 0) + 1
    order = {w: i for i, w in enumerate(counts)}
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], order[kv[0]]))[:k]]
