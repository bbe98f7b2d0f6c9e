"""Composing text for one request (`_Writer`): sentence frames, openings and questions; text drawn
from a source or composed about a topic's items; copied items, options, titles, reasoning, math,
and optimizer instruction rewrites."""

from __future__ import annotations

import random
import re
import statistics
from dataclasses import dataclass, field
from typing import Any

from synthdspy.simulator.features import _frequent_words, overlap, repetition, split_sentences
from synthdspy.simulator.fields import (
    _AUDIENCE_WORDS,
    _CANDIDATE_WORDS,
    _HOW_TO,
    _KEYWORD_WORDS,
    _REQUIREMENT_WORDS,
    _SOURCE_WORDS,
    _STYLE_WORDS,
    _SUIT_WORDS,
    _TOPIC_WORDS,
    _VOICE_WORDS,
    _as_list,
    _as_text,
    _cap,
    _field_kind,
    _lower_first,
    _mid,
    _name_words,
    _nested_lists,
    _phrase,
    _singular,
    _stems,
)
from synthdspy.simulator.knobs import _KNOB_HINTS, KNOB_PHRASES, KNOBS, detect_knobs
from synthdspy.simulator.prompt import ParsedPrompt, _resolve

_FILLER = (
    "This is an important point about {topic}.",
    "There are several aspects of {topic} to consider.",
    "Overall, {topic} is a relevant and interesting subject.",
    "Many people have opinions about {topic}.",
    "It is worth thinking about {topic} in more detail.",
    "{topic} matters in many situations.",
    "A good understanding of {topic} helps in practice.",
    "Some details about {topic} are often overlooked.",
    "People approach {topic} in different ways.",
    "The basics of {topic} are easy to state but harder to apply.",
    "Questions about {topic} come up again and again.",
    "Examples make {topic} easier to follow.",
)
_PLAIN_OPENINGS = ("", "In summary, ")
_DIVERSE_OPENINGS = (
    "",
    "Notably, ",
    "From another angle, ",
    "Put simply, ",
    "Interestingly, ",
    "In practical terms, ",
    "A closer look shows that ",
    "Consider this: ",
    "One detail stands out: ",
    "Seen broadly, ",
    "Against expectations, ",
    "On reflection, ",
    "At its core, ",
    "For a newcomer, ",
    "In contrast, ",
    "To be precise, ",
    "Importantly, ",
    "As a concrete case, ",
    "Historically, ",
    "Taken together, ",
)
_PLAIN_QUESTIONS = ("What does the text say about {x}?", "What is {x}?")
_DIVERSE_QUESTIONS = (
    "What does the text say about {x}?",
    "Why does {x} matter here?",
    "How is {x} described?",
    "In what way does {x} relate to the rest of the text?",
    "Which role does {x} play?",
    "What would change without {x}?",
    "How would you explain {x} to a newcomer?",
    "What evidence is given about {x}?",
    "When does {x} become important?",
    "What is surprising about {x}?",
)


# Composed sentences about a topic, for requests with no source text (a topic, its subtopics and
# keywords). {a}/{A}: the passage's focus item (mid-sentence / sentence start); {a2}: another
# item; {k}/{K}, {k2}: keywords (other items when keywords are not asked for); {t}: the topic.
# With the diversity knob off only the first two of each pool are used, so texts repeat.
_BASIC = (
    "{A} is a central part of {t}.",
    "Most questions about {a} come back to {k}.",
    "{A} is easiest to grasp through {k}.",
    "In {t}, {a} is usually the first thing to understand, because it sets the terms for {k}.",
    "A simple example shows how {k} works within {a}.",
    "{K} describes one concrete way in which {a} is carried out.",
    "Students of {t} meet {a} early and return to it often.",
    "The idea of {k} gives {a} a precise meaning.",
    "Anyone who works with {a} soon learns to watch {k} closely.",
    "One way to picture {a} is to follow {k} from start to finish.",
    "Take {k} away and {a} becomes hard to explain at all.",
    "Early accounts of {a} already mentioned {k}, though only in passing.",
)
_NUANCE = (
    "However, {k} behaves differently once {a} grows in scale, so the simple picture needs refinement.",
    "The trade-off between {k} and {k2} shapes many decisions about {a}.",
    "An exception arises where {a} meets {a2}: {k} no longer tells the whole story.",
    "Specialists still debate how much weight {k} deserves next to {a2}.",
    "Because {a} depends on {k}, a change in one soon shows up in the other.",
    "Seen together, {a} and {a2} show why {t} cannot be reduced to a single rule.",
    "A common mistake is to treat {k} as fixed, when in practice it varies with {a}.",
    "Therefore, judging {a} well means checking how {k} and {k2} interact.",
    "Under unusual conditions, {a} can even reverse what {k} normally suggests.",
    "The limits of {k} become clear only when {a2} enters the picture.",
)
_KEYWORD_FRAMES = tuple(t for t in _BASIC if "{k}" in t or "{K}" in t)
_AUDIENCE = (
    "This {style}lesson on {t} is written for {r}.",
    "Imagine you are {r}: {t} touches your world more than it first seems.",
    "For {r}, the best way into {t} is through {a}.",
    "If you are {r}, start with one question: what holds {a} together?",
)
_QUIZ_QUESTIONS = (
    "Which idea does the lesson link most closely to {a}?",
    "In {t}, which term belongs with {a}?",
    "According to the lesson, what helps explain {a}?",
    "Which concept would you check first when studying {a}?",
)
_MAIN_WORDS = {"answer", "response", "output", "completion", "text", "result"}
# How a conversation turn links to the one before: with the reasoning knob, causal connectives
# (reasoning markers a step-by-step judge looks for); without it, plain ones.
_LINKED_TURNS = ("So ", "Therefore, ", "Because of that, ", "As a result, ", "Thus ")
_PLAIN_TURNS = ("", "And ", "Also, ", "Then ")
_CONNECTIVES = {"so", "therefore", "thus", "since", "because", "and", "also", "then", "as", "overall", "in"}
_COPY_DESC = re.compile(r"\b(?:copied|copy|chosen|taken|picked|one of)\b[^.;]*?\bfrom\s+(?:the\s+)?`?(\w+)")


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
class _Writer:
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

    # ---- composed text (no source) ------------------------------------------------------------
    def _template(self, pool: tuple[str, ...], slot: int) -> str:
        """A template: with diversity, a seeded one not used yet in this request; else one of
        the pool's first two, by slot (so plain texts repeat the same frames)."""
        if not self.knobs["diversity"]:
            return pool[slot % 2]
        fresh = [t for t in pool if t not in self.used] or list(pool)
        template = fresh[self.rng.randrange(len(fresh))]
        self.used.add(template)
        return template

    def _fill(self, template: str, focus: str, kws: list[str], slot: int) -> tuple[str, str | None]:
        """(sentence, keyword it names or None) for `template` about `focus`, cycling through `kws`."""
        others = [a for a in self.aspects if a != focus] or [self.topic]
        k = kws[slot % len(kws)] if kws else others[slot % len(others)]
        k2 = kws[(slot + 1) % len(kws)] if len(kws) > 1 else others[(slot + 1) % len(others)]
        topic = "the wider subject" if focus == self.topic else _mid(self.topic)
        values = {"a": _mid(focus), "A": _cap(focus), "a2": _mid(others[slot % len(others)]), "k": _mid(k),
                  "K": _cap(k), "k2": _mid(k2), "t": topic}
        named = k if k in kws and ("{k}" in template or "{K}" in template) else None
        return _cap(template.format(**values)), named

    def _composed(self, focus: str, index: int, count: int, kws: list[str]) -> list[str]:
        """`count` sentences about `focus`: basic frames first, then `index` nuance frames (later
        passages are more nuanced); each slot is generic filler with probability 1 - grounding_p."""
        out: list[str] = []
        nuance = min(index, count - 1)
        for slot in range(count):
            if self.rng.random() >= self.grounding_p:
                out.append(self._filler())
                continue
            pool = _NUANCE if slot >= count - nuance else _BASIC
            sentence, k = self._fill(self._template(pool, slot), focus, kws, slot)
            if k:
                self.links.append((focus, k))
            out.append(sentence)
        missing = [k for k in kws if k.lower() not in " ".join(out).lower()]
        for k in missing:
            sentence, _ = self._fill(self._template(_KEYWORD_FRAMES, len(out)), focus, [k], 0)
            self.links.append((focus, k))
            out.append(sentence)
        if out:
            out[0] = self._opening(out[0])
        return out

    def passage(self, name: str, short: bool) -> str:
        """Passage `i` of `n` (from `position`) about item `i`, longer and more nuanced for later
        items; keywords are shared out across passages when the keyword knob is on; with the
        persona knob the first passage addresses the chosen reader (and voice, if any)."""
        index, total = self.position
        items = self.aspects or self.keywords or [self.topic]
        shift = self.rng.randrange(len(items)) if self.knobs["diversity"] and index == 0 else 0
        self.shift = shift if self.shift is None else self.shift
        focus = items[(index + self.shift) % len(items)]
        if self.knobs["keywords"]:
            kws = self.keywords[index::total] or self.keywords[index % max(1, len(self.keywords)) :][:1]
        else:
            kws = self.keywords[:1] if index == 0 and self.rng.random() < 0.3 else []
        reader = self.reader() if index == 0 and self.knobs["persona"] else ""
        count = 1 if short else max(1, self._length_for(name, 2) + index - bool(reader))
        sentences = self._composed(focus, index, count, kws)
        if reader:
            frames = _AUDIENCE if self.knobs["diversity"] else _AUDIENCE[:1]
            frame = frames[self.rng.randrange(len(frames))]
            style = f"{self.style} " if self.style else ""
            sentences.insert(0, _cap(frame.format(style=style, t=_mid(self.topic), r=reader, a=_mid(focus))))
        self.introduced = [focus] + [k for k in kws if k != focus]
        return " ".join(self._add_persona(sentences))

    def reader(self) -> str:
        """The audience: a str audience input, else the item picked from a list of readers."""
        if self.audience:
            return self.audience
        name = next((n for n in self.lists if _name_words(n) & _AUDIENCE_WORDS), None)
        return _phrase(self.pick(name, self.lists[name], "")) if name else ""

    # ---- copied values -------------------------------------------------------------------------
    def copy_source(self, name: str, desc: str) -> tuple[str, list[str]] | None:
        """(list name, items) an output must copy one item of: a sibling or input list named in the
        description ("copied exactly from options"), or the list input whose name is this field's
        plural (persona <- personas). None when neither applies."""
        match = _COPY_DESC.search(desc)
        if match:
            key = match.group(1)
            for pool in (self.siblings, self.prompt.values):
                for candidate in (key, key + "s"):
                    if isinstance(pool.get(candidate), list) and pool[candidate]:
                        return candidate, _as_list(pool[candidate])
        for key, items in self.lists.items():
            if items and _singular(key) == name and key != name:
                return key, items
        return None

    def pick(self, key: str, items: list[str], desc: str) -> str:
        """One item of list `key`, the same for the whole request. The quiz target when it is one
        of the items; when the instructions or descriptions ask for a suiting/fitting choice, the
        item sharing most content words (`_stems`) with the topic, items, keywords and style (ties
        broken by the seeded RNG); else a seeded choice."""
        if key in self.picks and self.picks[key] in items:
            return self.picks[key]
        if self.target and self.target[1] in items:
            choice = self.target[1]
        else:
            spec = next((f.desc for f in self.prompt.inputs if f.name == key), "")
            if _SUIT_WORDS.search(" ".join((self.prompt.instructions, desc, spec))):
                context = _stems(" ".join([self.topic, self.style, *self.aspects, *self.keywords]))
                scores = [len(context & _stems(item)) for item in items]
                best = [item for item, s in zip(items, scores, strict=True) if s == max(scores)]
                choice = best[self.rng.randrange(len(best))]
            else:
                choice = items[self.rng.randrange(len(items))]
        self.picks[key] = choice
        return choice

    def options(self, count: int) -> list[str]:
        """`count` distinct short options: the quiz target first, then keywords, items and frequent
        source words (never the question's own focus), shuffled by the seeded RNG."""
        target = [self.target[1]] if self.target else []
        enough = self.composed and len(self.keywords) + len(self.aspects) >= count
        extra = [] if enough else [*_frequent_words(self.source, 8), self.topic]
        pool = target + self.keywords + self.aspects + extra
        seen: list[str] = []
        focus = _mid(self.target[0]).lower() if self.target else None
        for item in map(_mid, pool):
            if item.lower() not in {s.lower() for s in seen} and item.lower() != focus:
                seen.append(item)
        head, rest = seen[: len(target)], seen[len(target) :]
        self.rng.shuffle(rest)
        chosen = (head + rest)[:count]
        self.rng.shuffle(chosen)
        return chosen + [f"none of {_mid(self.topic)} ({i})" for i in range(count - len(chosen))]

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

    def _base_instruction(self) -> str | None:
        return next((_as_text(v) for k, v in self.prompt.values.items() if "instruction" in k.lower()), None)

    def rewrite_instruction(self, name: str) -> str:
        """An optimizer's proposed instruction: the given one plus seeded `KNOB_PHRASES`.

        Each knob the base instruction lacks is added with probability 0.35, or 0.7 when the
        other inputs (feedback, tips, demos) hint at it (`_KNOB_HINTS`; for diversity, also an
        input of 200+ words, such as example outputs, whose `repetition` is 0.3 or more), so
        proposals differ in which quality knobs they switch on and an optimizer can select the
        useful ones. Fields
        named like `shortened_instruction` get the base cut to its first sentences instead.
        """
        base = (self._base_instruction() or "").strip() or "Complete the task."
        if re.search(r"short|compress|concise", name.lower()):
            return " ".join(split_sentences(base)[:2]) or base
        texts = [_as_text(v) for k, v in self.prompt.values.items() if "instruction" not in k.lower()]
        context = " ".join(texts).lower()
        repetitive = any(len(t.split()) >= 200 and repetition(t) >= 0.3 for t in texts)
        present = detect_knobs(base)
        added = []
        for knob, phrases in KNOB_PHRASES.items():
            if present[knob]:
                continue
            hinted = any(word in context for word in KNOBS[knob] + _KNOB_HINTS[knob])
            hinted = hinted or (knob == "diversity" and repetitive)
            if self.rng.random() < (0.7 if hinted else 0.35):
                added.append(self.choose(phrases))
        return " ".join([base, *added])

    def question(self) -> str:
        """A question: for a composed request, about an item the passages linked to a keyword
        (which becomes the quiz target); else about a frequent source word or keyword."""
        if self.composed:
            links = self.links or [(a, k) for a in self.aspects[:1] for k in (self.keywords or self.aspects)[1:2]]
            focus, target = links[self.rng.randrange(len(links))] if links else (self.topic, self.topic)
            self.target = (focus, _mid(target))
            template = self.choose(_QUIZ_QUESTIONS) if self.knobs["diversity"] else _QUIZ_QUESTIONS[0]
            return _cap(template.format(a=_mid(focus), t=_mid(self.topic)))
        grounded = self.rng.random() < self.grounding_p
        pool_words = _frequent_words(" ".join(self.sentences), 8) if grounded else []
        if self.knobs["keywords"] and self.keywords:
            pool_words = self.keywords + pool_words
        focus = (
            self.choose(pool_words) if self.knobs["diversity"] else (pool_words or [""])[0]
        ) or self.topic
        template = self.choose(_DIVERSE_QUESTIONS if self.knobs["diversity"] else _PLAIN_QUESTIONS)
        question = template.format(x=focus)
        if self.knobs["persona"] and self.persona:
            question = f"For {self.persona}: {question}"
        return question

    def title(self) -> str:
        """A short label: a composed request's most recently introduced item (or its topic),
        else two to four frequent source words."""
        if self.composed:
            return self.introduced[0] if self.introduced else self.topic
        words = _frequent_words(self.source, 6)
        if self.knobs["diversity"] and words:
            self.rng.shuffle(words)
        picked = words[: 2 + (self.rng.randrange(3) if self.temperature > 0 else 1)] or [self.topic]
        return " ".join(picked).capitalize()

    def concepts(self, count: int) -> list[str]:
        """What the last composed passage introduced (its focus item and keywords), at most
        `count`; falls back to titles when nothing was introduced yet."""
        if self.introduced:
            return self.introduced[: max(1, count)]
        return [self.title()]

    def reasoning(self) -> str:
        """Numbered steps ending in "Therefore" with the reasoning knob, else one terse line. After
        a quiz (a target and a sibling answer), the steps explain why that answer is right."""
        answer = next((v for k, v in self.siblings.items() if _name_words(k) & {"answer"}), None)
        if self.target and isinstance(answer, str):
            return self._explain(answer)
        if self.knobs["reasoning"]:
            count = max(3, self._length_for("reasoning", 3))
            steps = [f"{i}. {s}" for i, s in enumerate(self.sentences_for(count), 1)]
            return "\n".join(steps + [f"{count + 1}. Therefore, the answer follows from these points."])
        return "The answer follows from the input."

    def _explain(self, answer: str) -> str:
        focus = _mid(self.target[0]) if self.target else _mid(self.topic)
        if not self.knobs["reasoning"]:
            return f"{_cap(answer)} is correct because the lesson links it to {focus}."
        pool = next((v for v in self.siblings.values() if isinstance(v, list) and answer in v), [])
        options = [o for o in pool if isinstance(o, str) and o != answer]
        others = ", ".join(_mid(o) for o in options) or "the other options"
        steps = [
            f"The question asks which idea belongs with {focus}.",
            f"The lesson ties {focus} to {_mid(answer)} when it explains how {focus} works.",
            f"The other options ({others}) belong to different parts of {_mid(self.topic)}.",
            f"Therefore, the correct option is {answer}.",
        ]
        return "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))

    def math(self) -> tuple[int | float, list[str]]:
        """(result, worked steps): the input's first numbers combined by seeded +, -, *.

        Plausible-looking arithmetic, not a solution: the simulator never checks the question.
        """
        numbers = [_number(x) for x in re.findall(r"-?\d+(?:\.\d+)?", self.source)][:3]
        if not numbers:
            guess = self.rng.randint(1, 10)
            return guess, [f"The answer is {guess}."]
        result, steps = numbers[0], []
        for number in numbers[1:]:
            op = self.choose(("+", "*", "-"))
            new = result + number if op == "+" else result * number if op == "*" else result - number
            new = _number(new)
            steps.append(f"{result} {op} {number} = {new}.")
            result = new
        return result, steps or [f"The answer is {result}."]

    def math_answer(self) -> int | float:
        """The result of `math()`."""
        return self.math()[0]


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


def _number(value: float | str) -> int | float:
    number = float(value)
    return int(number) if number.is_integer() else round(number, 2)


def _demo_grounding(prompt: ParsedPrompt) -> float:
    """Mean overlap of the demos' string outputs with their own inputs (0 without demos)."""
    scores = []
    for inputs, outputs in prompt.demos:
        source = "\n".join(_as_text(v) for v in inputs.values())
        texts = [v for v in outputs.values() if isinstance(v, str) and v.strip()]
        if source and texts:
            scores.append(overlap(" ".join(texts), source))
    return sum(scores) / len(scores) if scores else 0.0
