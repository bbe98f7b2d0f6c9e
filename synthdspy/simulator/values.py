"""Values for JSON schemas (`value_for`): a value valid for an output field's schema, written by
the writer or scored by the judge, with list lengths and property order chosen per request."""

from __future__ import annotations

import re
import statistics
from typing import Any

from synthdspy.simulator.features import _frequent_words
from synthdspy.simulator.fields import _COUNT_NAMES, _VOICE_WORDS, _field_kind, _name_words, _singular
from synthdspy.simulator.judge import _RANGE, _Judge, score_range
from synthdspy.simulator.picks import _COPY_DESC
from synthdspy.simulator.prompt import _resolve
from synthdspy.simulator.writer import _Writer

_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}


def _count_hint(writer: _Writer, name: str, desc: str = "", default: int = 3) -> int:
    """Items for a list field: a count input (n, num_items...), else the demos' median length,
    else a range ("3 to 5": seeded within it) or number word ("four") in the description, else
    `default`."""
    for key, value in writer.prompt.values.items():
        if key.lower() in _COUNT_NAMES and isinstance(value, int) and not isinstance(value, bool):
            return max(1, min(20, value))
    lengths = [len(out[name]) for _, out in writer.prompt.demos if isinstance(out.get(name), list)]
    if lengths:
        return max(1, min(20, round(statistics.median(lengths))))
    match = _RANGE.search(desc)
    if match:
        lo, hi = sorted(int(float(x)) for x in match.groups())
        return max(1, min(20, writer.choose(list(range(lo, hi + 1)))))
    word = next((_NUMBER_WORDS[w] for w in re.findall(r"[a-z]+", desc.lower()) if w in _NUMBER_WORDS), None)
    return word or default


def _dialogue(item: dict, writer: _Writer, defs: dict) -> tuple[str, str, list[str]] | None:
    """(speaker property, text property, speakers) when `item` is a conversation turn to write
    from a source: an object with a speaker-like property (role, speaker) and a free-text one,
    next to a list input of speakers (roles, speakers); None otherwise."""
    props = _resolve(item, defs).get("properties", {})
    speaker = next((k for k in props if _name_words(k) & _VOICE_WORDS), None)
    text = next((k for k in props if k != speaker and _field_kind(k) == "passage"), None)
    speakers = next((v for k, v in writer.lists.items() if _name_words(_singular(k)) & _VOICE_WORDS and v), None)
    if speaker and text and speakers and writer.sentences and not writer.composed:
        return speaker, text, speakers
    return None


def _order(props: dict) -> list[str]:
    """Order to write an object's properties in: free text first, then lists and labels, then
    values copied from a sibling ("copied from options"), reasoning last (it explains the rest)."""

    def rank(key: str) -> int:
        desc = props[key].get("description", "") if isinstance(props[key], dict) else ""
        if _COPY_DESC.search(desc):
            return 2
        kind = _field_kind(key, desc)
        return 3 if kind == "reasoning" else 0 if kind in ("passage", "question") else 1

    return sorted(props, key=rank)


def value_for(schema: dict, name: str, desc: str, writer: _Writer, judge: _Judge | None, defs: dict) -> Any:
    """A value valid for `schema` (JSON schema subset: enum/const/string/integer/number/boolean/
    array/object/$ref/anyOf), written by `writer`, scored by `judge` when one is given."""
    schema = _resolve(schema, defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return judge.label(name, schema["enum"]) if judge else writer.choose(schema["enum"])
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind in ("integer", "number"):
        integer = kind == "integer"
        if judge:
            return judge.number(name, desc, schema, integer)
        if _name_words(name) & {"answer", "result", "solution", "total"}:
            answer = writer.math_answer()
            return int(answer) if integer else float(answer)
        lo, hi = score_range(desc, schema, integer)
        return writer.rng.randint(int(lo), int(hi)) if integer else round(writer.rng.uniform(lo, hi), 3)
    if kind == "boolean":
        return judge.flag(name) if judge else writer.rng.random() < 0.5
    if kind == "array":
        item = schema.get("items", {})
        dialogue = None if judge else _dialogue(item, writer, defs)
        natural = min(12, max(4, len(writer.sentences) + len(writer.sentences) % 2)) if dialogue else 3
        count = _count_hint(writer, name, desc, natural)
        count = max(schema.get("minItems", 0), min(schema.get("maxItems", count), count))
        if dialogue:
            speaker, text, speakers = dialogue
            turns = [{speaker: speakers[i % len(speakers)], text: writer.dialogue_turn(i, count)} for i in range(count)]
            props = _resolve(item, defs).get("properties", {})
            return [{key: turn.get(key) or value_for(props[key], key, "", writer, judge, defs) for key in props}
                    for turn in turns]
        singular = _singular(name)
        if _resolve(item, defs).get("type", "string") == "string" and not judge:
            if _field_kind(name) == "option":
                return writer.options(count)
            if _field_kind(name) == "title" and writer.composed:
                return writer.concepts(count)
        items: list[Any] = []
        outer = writer.position
        for index in range(count):
            writer.position = (index, count)
            value = value_for(item, singular, "", writer, judge, defs)
            if isinstance(value, str) and value in items and writer.knobs["diversity"]:
                value = value_for(item, singular, "", writer, judge, defs)
            items.append(value)
        writer.position = outer
        return items
    if kind == "object":
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        if not props and isinstance(extra, dict):
            keys = _frequent_words(writer.source, 2) or ["item"]
            return {key: value_for(extra, key, "", writer, judge, defs) for key in keys}
        outer_siblings, writer.siblings = writer.siblings, {}
        for key in _order(props):
            sub = props[key]
            writer.siblings[key] = value_for(sub, key, sub.get("description", ""), writer, judge, defs)
        values, writer.siblings = writer.siblings, outer_siblings
        return {key: values[key] for key in props}
    if judge and _field_kind(name, desc) == "reasoning":
        return judge.reason()
    text = writer.text(name, desc)
    return text[: schema["maxLength"]] if "maxLength" in schema else text
