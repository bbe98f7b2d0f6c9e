"""Composing text for one request (`_Writer`): inputs sorted into roles, seeded choices, sentences
drawn from a source (or filler), and values by field kind. Composed passages, copied items and
questions, reasoning and instruction rewrites come from its mixins (`passages`, `picks`,
`reasoning`, `rewrite`); the sentence frames live in `frames`."""

from __future__ import annotations

import random
import re
import statistics
from dataclasses import dataclass, field
from typing import Any

from synthdspy.simulator.features import _frequent_words, overlap, split_sentences
from synthdspy.simulator.fields import (
    _AUDIENCE_WORDS,
    _CANDIDATE_WORDS,
    _HOW_TO,
    _KEYWORD_WORDS,
    _REQUIREMENT_WORDS,
    _SOURCE_WORDS,
    _STYLE_WORDS,
    _TOPIC_WORDS,
    _VOICE_WORDS,
    _as_list,
    _as_text,
    _cap,
    _field_kind,
    _lower_first,
    _name_words,
    _nested_lists,
    _phrase,
)
from synthdspy.simulator.frames import _DIVERSE_OPENINGS, _FILLER, _PLAIN_OPENINGS
from synthdspy.simulator.knobs import detect_knobs
from synthdspy.simulator.passages import _Passages
from synthdspy.simulator.picks import _Picks
from synthdspy.simulator.prompt import ParsedPrompt, _resolve
from synthdspy.simulator.reasoning import _Reasoning
from synthdspy.simulator.rewrite import _Rewrite

_MAIN_WORDS = {"answer", "response", "output", "completion", "text", "result"}
# How a conversation turn links to the one before: with the reasoning knob, causal connectives
# (reasoning markers a step-by-step judge looks for); without it, plain ones.
_LINKED_TURNS = ("So ", "Therefore, ", "Because of that, ", "As a result, ", "Thus ")
_PLAIN_TURNS = ("", "And ", "Also, ", "Then ")
_CONNECTIVES = {"so", "therefore", "thus", "since", "because", "and", "also", "then", "as", "overall", "in"}


def _schema_fields(schema: dict, defs: dict, depth: int = 0) -> list[tuple[str, str]]:
    """(name, description) of every property nested in `schema` (arrays, objects, $refs)."""
    schema = _resolve(schema, defs)
    if depth > 6:
        return []
    found: list[tuple[str, str]] = []
    if schema.get("type") == "array":
        found += _schema_fields(schema.get("items", {}), defs, depth + 1)
    for key, sub in schema.get("properties", {}).items():
        found.append((key, sub.get("description", "")))
        found += _schema_fields(sub, defs, depth + 1)
    return found


@dataclass
class _Writer(_Passages, _Picks, _Reasoning, _Rewrite):
    """Composes field values for one request from its inputs, knobs and a seeded RNG.

    Inputs are sorted by name: source texts (`_SOURCE_WORDS`), keyword lists, the voice to write
    as (a str persona), the style, audience candidates (a list of personas/readers), the topic,
    other list inputs (`aspects`, e.g. subtopics) and other texts. A request with a topic or
    list items but no source text is "composed": passages are sentences built from `_BASIC` and
    `_NUANCE` templates about its items; otherwise sentences are drawn from the source.
    """

    prompt: ParsedPrompt
    rng: random.Random
    temperature: float
    knobs: dict[str, bool]
    source: str = ""
    sentences: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    persona: str = ""
    style: str = ""
    audience: str = ""
    topic: str = "the subject"
    aspects: list[str] = field(default_factory=list)
    lists: dict[str, list[str]] = field(default_factory=dict)
    composed: bool = False
    demo_grounding: float = 0.0
    candidates: dict[str, str] = field(default_factory=dict)
    reasoning_field: bool = False
    position: tuple[int, int] = (0, 1)
    siblings: dict[str, Any] = field(default_factory=dict)
    picks: dict[str, str] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    introduced: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    target: tuple[str, str] | None = None
    shift: int | None = None
    requirements: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, prompt: ParsedPrompt, rng: random.Random, temperature: float) -> _Writer:
        """Sort the request's inputs into the writer's roles (see the class docstring)."""
        writer = cls(prompt, rng, temperature, detect_knobs(prompt.instructions))
        sources, others = [], []
        for name, value in prompt.values.items():
            words = _name_words(name)
            if isinstance(value, list):
                writer.lists[name] = _as_list(value)
                writer.keywords += [k for k in _nested_lists(value, _KEYWORD_WORDS) if k not in writer.keywords]
            if words & _KEYWORD_WORDS:
                writer.keywords = _as_list(value)
            elif words & _AUDIENCE_WORDS:
                if not isinstance(value, list):
                    writer.audience = _phrase(_as_text(value))
            elif words & _VOICE_WORDS and not isinstance(value, list):
                writer.persona = (writer.persona + " " + _as_text(value)).strip()
            elif words & _STYLE_WORDS and not isinstance(value, list):
                writer.style = _as_text(value).split(":", 1)[0].strip()
            elif isinstance(value, list):
                writer.aspects += [item for item in _as_list(value) if item not in writer.aspects]
            elif words & _REQUIREMENT_WORDS:
                writer.requirements += _requirement_blocks(_as_text(value))
            elif words & _SOURCE_WORDS:
                if _as_text(value).strip():  # an empty source leaves the other inputs to write from
                    sources.append(_as_text(value))
            elif words & _CANDIDATE_WORDS:
                writer.candidates[name] = _as_text(value)
                others.append(_as_text(value))
            else:
                if words & _TOPIC_WORDS:
                    writer.topic = _as_text(value).strip() or writer.topic
                others.append(_as_text(value))
        writer.source = "\n".join(sources) if sources else "\n".join(others)
        writer.sentences = split_sentences(writer.source) or [s for s in [writer.source.strip()] if s]
        writer.composed = not sources and (writer.topic != "the subject" or bool(writer.aspects))
        if writer.topic == "the subject":
            frequent = _frequent_words(writer.source, 1)
            writer.topic = (frequent or writer.aspects or writer.keywords or ["the subject"])[0]
        writer.demo_grounding = _demo_grounding(prompt)
        fields = [(o.name, o.desc) for o in prompt.outputs]
        for o in prompt.outputs:
            fields += _schema_fields(o.schema, o.schema.get("$defs", {}))
        writer.reasoning_field = any(_field_kind(n, d) == "reasoning" for n, d in fields)
        return writer

    # ---- randomness -----------------------------------------------------------------------
    def choose(self, options: list | tuple) -> Any:
        """Pick an option: the first with probability 1 - min(1, temperature), else uniform."""
        if not options:
            return ""
        if self.rng.random() < min(1.0, self.temperature):
            return options[self.rng.randrange(len(options))]
        return options[0]

    # ---- text pieces ----------------------------------------------------------------------
    @property
    def grounding_p(self) -> float:
        """Probability that a sentence slot is filled from the source (the grounding knob); for a
        composed request, that it is a composed sentence rather than generic filler (raised by
        the grounding and keyword knobs)."""
        bonus = 0.1 if self.demo_grounding >= 0.5 else 0.0
        if self.composed:
            return min(0.95, 0.7 + (0.25 if self.knobs["grounding"] or self.knobs["keywords"] else 0.0) + bonus)
        return min(0.95, 0.35 + (0.5 if self.knobs["grounding"] else 0.0) + bonus)

    def _source_sentence(self, used: set[str]) -> str | None:
        pool = self.sentences if self.knobs["diversity"] else self.sentences[:2]
        fresh = [s for s in pool if s not in used] or pool
        if not fresh:
            return None
        return fresh[self.rng.randrange(len(fresh))] if self.temperature > 0 else fresh[0]

    def _filler(self) -> str:
        pool = _FILLER if self.knobs["diversity"] else _FILLER[:3]
        return self.choose(pool).format(topic=self.topic)

    def _opening(self, sentence: str) -> str:
        opening = self.choose(_DIVERSE_OPENINGS if self.knobs["diversity"] else _PLAIN_OPENINGS)
        if not opening:
            return sentence
        return opening + _lower_first(sentence)

    def sentences_for(self, count: int) -> list[str]:
        """`count` sentences, each from the source with probability `grounding_p`, else filler
        (composed sentences about the first item for a composed request)."""
        if self.composed:
            return self._composed(self.aspects[0] if self.aspects else self.topic, 0, count, [])
        out: list[str] = []
        used: set[str] = set()
        for _ in range(count):
            sentence = self._source_sentence(used) if self.rng.random() < self.grounding_p else None
            if sentence:
                used.add(sentence)
            out.append(sentence or self._filler())
        if out:
            out[0] = self._opening(out[0])
        return out

    def _add_keywords(self, sentences: list[str]) -> list[str]:
        wanted = (
            self.keywords if self.knobs["keywords"] else self.keywords[:1] if self.rng.random() < 0.3 else []
        )
        for kw in wanted:
            if kw.lower() in " ".join(sentences).lower():
                continue
            with_kw = [s for s in self.sentences if kw.lower() in s.lower()]
            sentences.append(self.choose(with_kw) if with_kw else f"This also involves {kw}.")
        return sentences

    def _add_persona(self, sentences: list[str]) -> list[str]:
        if not (self.knobs["persona"] and self.persona and sentences):
            return sentences
        first = sentences[0]
        sentences[0] = f"Speaking as {self.persona}: {_lower_first(first)}"
        return sentences

    def _steps(self, sentences: list[str]) -> str:
        lines = [f"Step {i}: {s}" for i, s in enumerate(sentences, 1)]
        lines.append("Therefore, the answer follows from these steps.")
        return "\n".join(lines)

    def _length_for(self, name: str, default: int) -> int:
        lengths = [
            len(split_sentences(_as_text(out[name])) or [1]) for _, out in self.prompt.demos if out.get(name)
        ]
        if lengths:
            return max(1, min(8, round(statistics.median(lengths))))
        return default + (self.rng.randrange(2) if self.temperature > 0 else 0)

    # ---- values by kind ---------------------------------------------------------------------
    def text(self, name: str, desc: str) -> str:
        """A string value for field `name`: an optimizer's rewritten instruction, a copied list
        item, an option, a question, a title, a math solution, reasoning or a passage."""
        kind = _field_kind(name, desc)
        short = bool(re.search(r"\b(short|brief|one sentence|single sentence)\b", desc.lower()))
        if "instruction" in name.lower() and self._base_instruction() is not None:
            return self.rewrite_instruction(name)
        copied = self.copy_source(name, desc)
        if copied:
            return self.pick(copied[0], copied[1], desc)
        if kind == "option":
            return self.options(1)[0]
        if kind == "question":
            return self.question()
        if kind == "title":
            return self.title()
        if "####" in desc:
            result, steps = self.math()
            body = self._steps(steps) if self.knobs["reasoning"] else f"The answer is {result}."
            return f"{body}\n#### {result}"
        if kind == "reasoning":
            return self.reasoning()
        if self.composed:
            return " ".join([self.passage(name, short), *self.requirement_sentences()])
        sentences = self.sentences_for(1 if short else self._length_for(name, 2))
        sentences = self._add_persona(self._add_keywords(sentences)) + self.requirement_sentences()
        if self.knobs["reasoning"] and not self.reasoning_field and _name_words(name) & _MAIN_WORDS:
            return self._steps(sentences)
        return " ".join(sentences)

    def requirement_sentences(self) -> list[str]:
        """One sentence per requirement block (an input named like ``targets`` or
        ``requirements``), kept with probability `grounding_p`: the block's how-to line, echoed.
        The toy's way of following an instruction is to carry its words into the text."""
        return [_cap(block) for block in self.requirements if self.rng.random() < self.grounding_p]

    def dialogue_turn(self, index: int, count: int) -> str:
        """Turn `index` of a `count`-turn conversation that carries the source: its share of the
        source sentences, in order, each replaced by filler with probability 1 - `grounding_p`.
        From the second turn on, a connective links it to the previous one: a reasoning marker
        ("Therefore, ", "So ") with the reasoning knob, a plain one otherwise."""
        bounds = [round(i * len(self.sentences) / count) for i in range(count + 1)]
        share = self.sentences[bounds[index] : bounds[index + 1]] or [self._filler()]
        sentences = [s if self.rng.random() < self.grounding_p else self._filler() for s in share]
        first = sentences[0].split(maxsplit=1)[0].lower().rstrip(",")
        if index and not first.endswith(":") and first not in _CONNECTIVES:
            link = self.choose(_LINKED_TURNS if self.knobs["reasoning"] else _PLAIN_TURNS)
            word = re.escape(sentences[0].split(maxsplit=1)[0])
            named = re.search(rf"[^.!?\s]\s+{word}\b", self.source)  # capitalised mid-sentence: a name
            sentences[0] = link + (sentences[0] if named else _lower_first(sentences[0])) if link else sentences[0]
        return " ".join(sentences)


def _requirement_blocks(text: str) -> list[str]:
    """The how-to of each block (blank-line separated) of a requirement input: its "How to ...:" or
    "Instructions:" line, else the block itself when it is one line."""
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text) if b.strip()]
    out = []
    for block in blocks:
        how = _HOW_TO.search(block)
        if how:
            out.append(how.group(1).strip())
        elif "\n" not in block:
            out.append(block)
    return out


def _demo_grounding(prompt: ParsedPrompt) -> float:
    """Mean overlap of the demos' string outputs with their own inputs (0 without demos)."""
    scores = []
    for inputs, outputs in prompt.demos:
        source = "\n".join(_as_text(v) for v in inputs.values())
        texts = [v for v in outputs.values() if isinstance(v, str) and v.strip()]
        if source and texts:
            scores.append(overlap(" ".join(texts), source))
    return sum(scores) / len(scores) if scores else 0.0
