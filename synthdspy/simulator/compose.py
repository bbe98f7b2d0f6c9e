"""Answer composition: the value of every output field of a request (`compose_answer`, from the
grouping answers, the judge or the writer) and its rendering in the adapter's format (`render`)."""

from __future__ import annotations

import json
import random
from typing import Any

from synthdspy.simulator.fields import _QUESTION_KINDS, _RUBRIC_WORDS, _SOURCE_WORDS, _as_text, _name_words
from synthdspy.simulator.grouping import _Grouping
from synthdspy.simulator.judge import _Judge
from synthdspy.simulator.prompt import ParsedPrompt, _resolve
from synthdspy.simulator.values import _order, value_for
from synthdspy.simulator.writer import _Writer


def _is_judge(prompt: ParsedPrompt, writer: _Writer) -> bool:
    scalar = any(
        _resolve(o.schema, o.schema.get("$defs", {})).get("type") in ("integer", "number", "boolean")
        or "enum" in o.schema
        for o in prompt.outputs
    )
    return scalar and bool(writer.candidates)


def compose_answer(prompt: ParsedPrompt, rng: random.Random, temperature: float) -> dict[str, Any]:
    """Values for every output field of `prompt`, as a dict name -> JSON-able value.

    `temperature` (None already mapped to 1.0) scales how often seeded choices leave the first,
    most generic option. Judge-like prompts (scalar outputs and a candidate input) are scored
    with `judge_features`; everything else is written by `_Writer`.
    """
    writer = _Writer.build(prompt, rng, temperature)
    judge = None
    if prompt.mode != "text" and _is_judge(prompt, writer):

        def joined(words: set[str]) -> str:
            return "\n".join(_as_text(v) for k, v in prompt.values.items() if _name_words(k) & words)

        judge = _Judge(
            writer.candidates, joined(_SOURCE_WORDS), rng, temperature,
            request=joined(_QUESTION_KINDS), rubric=joined(_RUBRIC_WORDS),
            context="\n".join(_as_text(v) for k, v in prompt.values.items() if k not in writer.candidates),
        )
    if prompt.mode == "text":
        return {"text": writer.text("text", "")}
    answered = _Grouping.build(prompt, writer, rng, temperature).answers()
    specs = {o.name: o for o in prompt.outputs}
    for name in _order({o.name: {"description": o.desc} for o in prompt.outputs}):
        o = specs[name]
        if name in answered:
            writer.siblings[name] = answered[name]
            continue
        writer.siblings[name] = value_for(o.schema, o.name, o.desc, writer, judge, o.schema.get("$defs", {}))
    return {o.name: writer.siblings[o.name] for o in prompt.outputs}


def render(prompt: ParsedPrompt, values: dict[str, Any], malformed: bool = False) -> str:
    """Write `values` in the format the adapter expects; `malformed` truncates the last field so
    the adapter's parser fails (missing field marker or key)."""
    names = [o.name for o in prompt.outputs]
    if prompt.mode == "text":
        return "" if malformed else str(values["text"])
    if malformed:
        names = names[:-1]
    if prompt.mode == "json":
        body = json.dumps({n: values[n] for n in names}, indent=2, ensure_ascii=False)
        return body[:-1].rstrip() if malformed else body
    sections = []
    for n in names:
        v = values[n]
        text = v if isinstance(v, str) else str(v) if isinstance(v, (bool, int, float)) else json.dumps(v)
        sections.append(f"[[ ## {n} ## ]]\n{text}")
    tail = "" if malformed else "\n\n[[ ## completed ## ]]"
    return "\n\n".join(sections) + tail
