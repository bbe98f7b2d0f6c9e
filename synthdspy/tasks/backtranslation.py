"""``backtranslation``: instructions inferred for real documents (Li et al. 2023, "Self-Alignment
with Instruction Backtranslation", section 2, self-augmentation; Köksal et al. 2023, "LongForm: reverse instructions").

A human-written text is taken as the answer and the LM writes the instruction a user would have
given to get it, so the training pair's answer is real text rather than model output. Li et al.
then self-curate the pairs: the ``self_curation`` gate (``synthdspy.gates.self_curation``) scores
each pair on their 5-point scale and rejects those below a threshold.
"""

from __future__ import annotations

import re

import dspy
from pydantic import Field

from synthdspy.records import Record, Seed
from synthdspy.registry import Params, register_task
from synthdspy.signatures.catalog_knowledge import BacktranslateInstruction
from synthdspy.tasks.base import Task, require, sampling_config

_WORD = re.compile(r"\S+")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s|$)")


class BacktranslationParams(Params):
    """Parameters of the ``backtranslation`` task."""

    max_words: int | None = Field(None, ge=10, description="trim the passage to at most this many words; None = whole")


def trim_words(text: str, max_words: int | None) -> str:
    """``text`` cut to at most ``max_words`` whitespace-separated words, stripped.

    The cut keeps the original spacing and line breaks, and ends at the last sentence end
    (``.``, ``!`` or ``?``, optionally followed by a closing quote or bracket) inside the kept
    words when that keeps at least half of them; otherwise it ends after word ``max_words``.
    ``max_words`` None, or a text that already fits, returns ``text`` stripped.
    """
    text = text.strip()
    words = list(_WORD.finditer(text))
    if max_words is None or len(words) <= max_words:
        return text
    head = text[: words[max_words - 1].end()]
    ends = [m.end() for m in _SENTENCE_END.finditer(head)]
    if ends and len(_WORD.findall(head[: ends[-1]])) * 2 >= max_words:
        return head[: ends[-1]]
    return head


@register_task("backtranslation", BacktranslationParams)
class BacktranslationTask(Task):
    """The instruction a user would have given to get a real passage as the answer (backtranslation).

    Per seed (``source`` passage) and rollout: the passage, trimmed by :func:`trim_words` to
    ``max_words`` when set, is the record's ``output``; one LM call infers its ``instruction``.
    ``input`` stays empty (the pair is instruction -> answer; the passage is the answer, not a
    context). Metadata: ``source_words`` (the passage's word count) and ``trimmed``. Self-curation
    is the ``self_curation`` gate.

    Raises:
        SeedFieldError: the seed has no ``source``.
    """

    name = "backtranslation"

    def __init__(self, max_words: int | None = None) -> None:
        super().__init__()
        self.max_words = max_words
        self.backtranslate = dspy.Predict(BacktranslateInstruction)

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:
        (source,) = require(seed, self.name, "source")
        answer = trim_words(str(source), self.max_words)
        pred = self.backtranslate(answer=answer, config=sampling_config(rollout))
        return [
            self.record(
                seed, rollout, 0, instruction=pred.instruction.strip(), output=answer,
                metadata={"source_words": len(_WORD.findall(str(source))), "trimmed": answer != str(source).strip()},
            )
        ]
