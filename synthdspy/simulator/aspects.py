"""Aspects of texts a grouping criterion can name: categorical labels (topic, format, purpose,
tone, audience) and 0-1 scales (length, repetitiveness, specificity, structure, formality)."""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any

from synthdspy.simulator.features import _frequent_words, repetition, split_sentences
from synthdspy.simulator.profiles import _LINE_LABEL

_CODE_LINE = re.compile(
    r"^\s*(?:def |class |import |from \w+ import|for .+:\s*$|if .+:\s*$|return\b|#include|function\b)"
    r"|[;{}]\s*$",
    re.MULTILINE,
)
_NUMBERED_LINE = re.compile(r"^\s*\d+[.)]\s", re.MULTILINE)
_BULLET_LINE = re.compile(r"^\s*[-*\u2022]\s", re.MULTILINE)
_INFORMAL = re.compile(
    r"n't\b|'(?:m|re|ll|ve|d)\b|!|\b(?:hi|hey|guys|lol|gonna|wanna|awesome|cool)\b", re.IGNORECASE
)
_GREETING = re.compile(r"^\s*(?:hi|hello|hey|dear|greetings)\b", re.IGNORECASE)


def _majority(labels: list[str]) -> str:
    """Most common label (ties: first seen)."""
    return Counter(labels).most_common(1)[0][0] if labels else ""


def _format_label(text: str) -> str:
    """Form of one text: empty, code, numbered/bulleted list, labelled lines, short phrase, prose."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return "empty"
    if len(_CODE_LINE.findall(text)) >= 2:
        return "code"
    if len(_NUMBERED_LINE.findall(text)) >= 2:
        return "numbered list"
    if len(_BULLET_LINE.findall(text)) >= 2:
        return "bulleted list"
    labels = [m.strip() for m in _LINE_LABEL.findall(text)]
    if len(labels) >= 2:
        common = [label for label, _ in Counter(labels).most_common(2)]
        return f"labelled lines ({', '.join(label + ':' for label in common)})"
    if len(lines) == 1 and len(text.split()) <= 12:
        return "short phrase"
    return "multi-line prose" if len(lines) >= 3 else "prose"


def _purpose_label(text: str) -> str:
    """What one text does: nothing, a message, questions, a list, code or statements."""
    form = _format_label(text)
    first = (split_sentences(text) or [text.strip()])[0]
    if form == "empty":
        return "no content"
    if _GREETING.match(text):
        return "message to someone"
    if first.rstrip().endswith("?") or text.count("?") >= 2:
        return "questions"
    if form in ("code", "numbered list", "bulleted list"):
        return form if form == "code" else "list of items"
    return "statement or answer"


def _informality(text: str) -> float:
    """Informal markers (contractions, exclamation marks, chatty words) per word, scaled so that
    one marker in 20 words counts as fully informal; in [0, 1]."""
    words = len(text.split())
    return min(1.0, len(_INFORMAL.findall(text)) / (0.05 * words)) if words else 0.0


def _tone_label(text: str) -> str:
    """"formal" (no informal marker), "neutral", "informal" (`_informality` >= 0.5) or "no content"."""
    level = _informality(text)
    return (
        "no content" if not text.strip() else "informal" if level >= 0.5 else "neutral" if level else "formal"
    )


def _specificity(text: str) -> float:
    """Share of words that are numbers, 9+ letters long, or capitalised names (a capital not at a
    sentence, line or label start), divided by 0.3 and capped at 1 (this simulator's own scale)."""
    words = list(re.finditer(r"[A-Za-z0-9']+", text))
    if not words:
        return 0.0
    specific, end = 0, 0
    for match in words:
        word, gap = match.group(), text[end : match.start()]
        end = match.end()
        name = word[:1].isupper() and match.start() > 0 and not re.search(r"[.!?:\n]", gap)
        specific += word.isdigit() or len(word) >= 9 or name
    return min(1.0, specific / len(words) / 0.3)


def _structure(text: str) -> float:
    """Share of non-empty lines that are list items or labelled lines; 0 for one unbroken block."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return 0.0
    marked = (
        len(_NUMBERED_LINE.findall(text)) + len(_BULLET_LINE.findall(text)) + len(_LINE_LABEL.findall(text))
    )
    return min(1.0, marked / len(lines))


def _length_level(text: str) -> float:
    """log10(1 + words) / 3, capped at 1: 10 words ~ 0.35, 100 ~ 0.67, 1000 or more = 1."""
    return min(1.0, math.log10(1 + len(text.split())) / 3)


def _topic_value(texts: list[str]) -> str:
    """The two most frequent content words of the texts, "a / b"."""
    words = _frequent_words(" ".join(texts), 2)
    return " / ".join(words) if words else "none (no content words)"


@dataclass(frozen=True)
class _Aspect:
    """A property a grouping criterion can name. Categorical aspects have `value` (texts -> a
    label); scales have `measure` (one text -> [0, 1]) and `scale` (what low and high mean)."""

    key: str
    names: tuple[str, ...]
    pattern: str
    definition: str
    value: Any = None
    measure: Any = None
    scale: str = ""

    def matches(self, text: str) -> bool:
        """Whether a criterion name (or text) refers to this aspect."""
        return re.search(self.pattern, text.lower().replace("_", " ")) is not None

    def describe(self) -> str:
        """The definition, followed by the scale for a scale aspect."""
        return f"{self.definition} {self.scale}".strip()


_CATEGORIES = (
    _Aspect(
        "topic",
        ("topic", "subject_area", "domain"),
        r"topic|subject|domain|theme|content|field",
        "The subject the text is about.",
        value=_topic_value,
    ),
    _Aspect(
        "format",
        ("format", "text_format", "genre"),
        r"format|genre|\bform\b|layout|text type",
        "The form of the text: prose, a list, labelled lines, code, a short phrase.",
        value=lambda ts: _majority([_format_label(t) for t in ts]),
    ),
    _Aspect(
        "purpose",
        ("purpose", "communicative_intent", "task_type"),
        r"purpose|intent|task|function|goal",
        "What the text does: answers, asks, lists, addresses someone or gives code.",
        value=lambda ts: _majority([_purpose_label(t) for t in ts]),
    ),
    _Aspect(
        "tone",
        ("tone", "register", "style"),
        r"tone|style|register|voice|mood|sentiment",
        "The tone of the writing: formal, neutral or informal.",
        value=lambda ts: _majority([_tone_label(t) for t in ts]),
    ),
    _Aspect(
        "audience",
        ("audience", "target_reader"),
        r"audience|reader",
        "Who the text is written for: general readers or specialists.",
        value=lambda ts: (
            "specialists" if statistics.mean(map(_specificity, ts)) >= 0.5 else "general readers"
        ),
    ),
)
_SCALES = (
    _Aspect(
        "length",
        ("length", "verbosity"),
        r"length|long|verbos|word count|brevity",
        "How long the text is.",
        measure=_length_level,
        scale="1 = a few words, 3 = about a paragraph, 5 = several hundred words.",
    ),
    _Aspect(
        "repetitiveness",
        ("repetitiveness", "redundancy"),
        r"repet|redundan|degenera|loop",
        "How much the text repeats itself.",
        measure=repetition,
        scale="1 = no repeated phrase, 3 = some repeated phrases, 5 = mostly the same lines again and again.",
    ),
    _Aspect(
        "specificity",
        ("specificity", "level_of_detail"),
        r"specific|detail|concrete|technical|precis|informat",
        "How concrete the wording is: names, numbers and technical terms.",
        measure=_specificity,
        scale="1 = generic wording, 3 = some concrete details, 5 = names, numbers and terms throughout.",
    ),
    _Aspect(
        "structure",
        ("structure", "organization"),
        r"structur|organi[sz]|itemi[sz]|\blist",
        "How much the text is broken into items or labelled parts.",
        measure=_structure,
        scale="1 = one unbroken block, 3 = partly itemised, 5 = every line an item or a labelled part.",
    ),
    _Aspect(
        "formality",
        ("formality", "formal_register"),
        r"formal|polite|professional",
        "How formal the register is.",
        measure=lambda t: 1.0 - _informality(t) if t.strip() else 0.0,
        scale="1 = chatty and informal, 3 = neutral, 5 = formal throughout.",
    ),
)


def _aspect_for(name: str, scale: bool) -> _Aspect | None:
    """The known aspect (categorical or scale, per `scale`) a criterion name refers to, if any."""
    return next((a for a in (_SCALES if scale else _CATEGORIES) if a.matches(name)), None)
