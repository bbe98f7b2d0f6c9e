"""Field roles and input values: the role of a field from its name and description
(`_field_kind`), the name-word families that sort inputs, and input values as text, lists and
phrases."""

from __future__ import annotations

import json
import re
from typing import Any

from synthdspy.simulator.features import _STOPWORDS, content_words

_SOURCE_WORDS = {
    "source",
    "passage",
    "context",
    "document",
    "reference",
    "article",
    "chunk",
    "doc",
    "evidence",
    "content",
}
_CANDIDATE_WORDS = {
    "output",
    "answer",
    "response",
    "candidate",
    "completion",
    "generation",
    "prediction",
    "record",
    "chosen",
    "rejected",
    "text",
    "summary",
    "claim",
    "sample",
}
_KEYWORD_WORDS = {"keyword", "keywords", "terms", "entities", "concepts"}
_VOICE_WORDS = {"persona", "voice", "role", "author", "speaker"}
# Inputs the output must satisfy ("dimension_targets", "target_value", "requirements"): each block
# is realized by the writer (`_Writer.requirement_sentences`), not used as source text.
_REQUIREMENT_WORDS = {"target", "targets", "requirement", "requirements", "constraints"}
# The line of a requirement block that says how to satisfy it ("How to write it: ...").
_HOW_TO = re.compile(r"^\s*[\w ]*\b(?:how|instructions?)\b[\w ]*:\s*(.+)$", re.IGNORECASE | re.MULTILINE)
_STYLE_WORDS = {"style", "tone", "register"}
_AUDIENCE_WORDS = {"audience", "reader", "readers", "personas", "audiences"}
_SUIT_WORDS = re.compile(r"\b(suit|suits|suited|fit|fits|fitting|best|most appropriate|match)", re.IGNORECASE)
_TOPIC_WORDS = {"topic", "subject", "theme", "domain", "category"}
_COUNT_NAMES = {"n", "num", "count", "k", "number", "num_items", "n_items", "num_questions", "n_questions"}
_REASON_KINDS = {
    "reasoning",
    "rationale",
    "explanation",
    "thought",
    "thinking",
    "analysis",
    "critique",
    "feedback",
    "justification",
    "reason",
    "reasons",
    "steps",
    "solution",
    "solutions",
    "derivation",
    "proof",
}
_OPTION_KINDS = {"option", "options", "choice", "choices", "alternative", "alternatives", "distractor"}
_QUESTION_KINDS = {
    "question",
    "questions",
    "query",
    "queries",
    "instruction",
    "instructions",
    "prompt",
    "problem",
}
_TITLE_KINDS = {
    "title",
    "topic",
    "topics",
    "name",
    "heading",
    "subject",
    "label",
    "category",
    "tag",
    "tags",
    "keyword",
    "keywords",
    "entity",
    "entities",
    "term",
    "terms",
    "concept",
    "concepts",
    "persona",
    "style",
    "reader",
    "audience",
    "voice",
    "tone",
    "role",
}
_RUBRIC_WORDS = {"rubric", "criteria", "criterion", "guidelines", "requirements"}
_STEPS_DESC = re.compile(r"step[- ]by[- ]step|\bsteps\b|\breasoning\b", re.IGNORECASE)


def _name_words(name: str) -> set[str]:
    return set(name.lower().split("_"))


def _field_kind(name: str, desc: str = "") -> str:
    """Role of an output field: "reasoning", "option", "question", "title" (short labels, names,
    concepts, personas) or "passage" (free text). Names decide first; a description asking for
    steps makes an otherwise free-text field a reasoning field. Short roles never get steps."""
    words = _name_words(name)
    if words & _REASON_KINDS:
        return "reasoning"
    if words & _OPTION_KINDS:
        return "option"
    if words & _QUESTION_KINDS:
        return "question"
    if words & _TITLE_KINDS:
        return "title"
    if _STEPS_DESC.search(desc):
        return "reasoning"
    return "passage"


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _as_list(value: Any) -> list[str]:
    """Items of a list input as strings, an object item as its name (`_item_name`); a string
    splits at , ; and line breaks."""
    if isinstance(value, list):
        items = [_item_name(v) if isinstance(v, dict) else _as_text(v) for v in value]
        return [item.strip() for item in items if item.strip()]
    text = _as_text(value)
    return [p.strip() for p in re.split(r"[,;\n]", text) if p.strip()]


_NAME_KEYS = {"name", "title", "label", "criterion", "metric", "attribute"}


def _named(item: Any) -> str:
    """The name of a dict item (its first name-like string value), "" if none."""
    if not isinstance(item, dict):
        return ""
    return next((v for k, v in item.items() if _name_words(k) & _NAME_KEYS and isinstance(v, str) and v), "")


def _item_name(item: dict) -> str:
    """What an object item of a list input is called: its name (`_named`), else its first string
    value (a topic), else all its values."""
    named = _named(item) or next((v for v in item.values() if isinstance(v, str)), None)
    return named if named is not None else " ".join(map(_as_text, item.values()))


def _nested_lists(value: Any, words: set[str]) -> list[str]:
    """Items of the list properties named by `words` of a list input's object items, pooled
    (the keywords of every candidate topic)."""
    if not isinstance(value, list):
        return []
    return [_as_text(x) for v in value if isinstance(v, dict)
            for k, items in v.items() if isinstance(items, list) and _name_words(k) & words for x in items]


def _mid(item: str) -> str:
    """`item` as written mid-sentence: a leading capital is lowered only for plain common-noun
    phrases ("Building foundations" -> "building foundations"; "Newton's laws", "Roman Empire" and
    "PhD" stay)."""
    words = item.split()
    if not words or "'" in words[0] or not words[0].isalpha() or words[0][1:] != words[0][1:].lower():
        return item
    if any(w[:1].isupper() for w in words[1:]):
        return item
    return item[:1].lower() + item[1:]


def _phrase(item: str) -> str:
    """A persona sentence ("A nurse in Manila.") as a noun phrase ("a nurse in Manila")."""
    text = item.strip().rstrip(".!")
    first = text.split(" ", 1)[0]
    return text[:1].lower() + text[1:] if first in ("A", "An", "The") else text


def _lower_first(sentence: str) -> str:
    """`sentence` with its first letter lowered, unless it starts a name ("Newton's", "PhD",
    "I", or a capitalised word other than a stopword followed by another: "Roman Empire")."""
    words = sentence.split()
    if not words:
        return sentence
    first = words[0]
    if first.lower() in _STOPWORDS and first != "I":
        return sentence[:1].lower() + sentence[1:]
    keep = (
        not first.isalpha()
        or first == "I"
        or first[1:] != first[1:].lower()
        or (len(words) > 1 and words[1][:1].isupper())
    )
    return sentence if keep else sentence[:1].lower() + sentence[1:]


def _stems(text: str) -> set[str]:
    """Content words of `text` with a plural "s" dropped (bridges -> bridge), for word matching."""
    return {w[:-1] if w.endswith("s") and len(w) > 3 else w for w in content_words(text)}


def _cap(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def _singular(name: str) -> str:
    return name[:-1] if name.endswith("s") else name
