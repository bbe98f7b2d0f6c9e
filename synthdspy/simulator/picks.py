"""Short values the writer picks (`_Picks`, mixed into `_Writer`): list items copied from an input
or sibling, distinct options, questions, titles and the concepts a passage introduced."""

from __future__ import annotations

import re

from synthdspy.simulator.features import _frequent_words
from synthdspy.simulator.fields import _SUIT_WORDS, _as_list, _cap, _mid, _singular, _stems
from synthdspy.simulator.frames import _DIVERSE_QUESTIONS, _PLAIN_QUESTIONS, _QUIZ_QUESTIONS

_COPY_DESC = re.compile(r"\b(?:copied|copy|chosen|taken|picked|one of)\b[^.;]*?\bfrom\s+(?:the\s+)?`?(\w+)")


class _Picks:
    """`_Writer`'s methods for copied items, options, questions, titles and concepts; they use the
    writer's fields (lists, siblings, picks, target, keywords, knobs, rng...)."""

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
