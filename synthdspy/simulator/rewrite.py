"""Optimizer instruction rewrites (`_Rewrite`, mixed into `_Writer`): the given instruction with
seeded quality-knob phrases appended, so instruction search has something real to find."""

from __future__ import annotations

import re

from synthdspy.simulator.features import repetition, split_sentences
from synthdspy.simulator.fields import _as_text
from synthdspy.simulator.knobs import _KNOB_HINTS, KNOB_PHRASES, KNOBS, detect_knobs


class _Rewrite:
    """`_Writer`'s instruction-rewrite methods; they use the writer's prompt, rng and `choose`."""

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
