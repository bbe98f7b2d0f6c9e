"""Composed text for requests with no source text (`_Passages`, mixed into `_Writer`): passages
about a topic's items built from sentence frames, keywords shared out, and the reader addressed."""

from __future__ import annotations

from synthdspy.simulator.fields import _AUDIENCE_WORDS, _cap, _mid, _name_words, _phrase
from synthdspy.simulator.frames import _AUDIENCE, _BASIC, _KEYWORD_FRAMES, _NUANCE


class _Passages:
    """`_Writer`'s composed-text methods; they use the writer's fields (topic, aspects, keywords,
    knobs, rng, position...) and its sentence helpers."""

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
