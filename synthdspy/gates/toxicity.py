"""The LLM-judged ``toxicity`` gate: a harm rubric scored per category, under the judge role.

No classifier weights can be downloaded here, so the judge is the project's judge LM with the
:class:`~synthdspy.signatures.safety.JudgeHarm` rubric; the categories and their definitions are
:data:`~synthdspy.signatures.safety.HARM_CATEGORIES` (the filtering step of the strategy seed,
section A.3: toxicity checks by an instruction-tuned judge).
"""

from __future__ import annotations

import re
from typing import Literal

import dspy
from pydantic import Field

from synthdspy.gates.base import Gate
from synthdspy.gates.pii import TextField, record_texts
from synthdspy.records import Record, Verdict
from synthdspy.registry import Params, register_gate
from synthdspy.roles import judge_context
from synthdspy.signatures.safety import HARM_CATEGORIES, JudgeHarm

Category = Literal["harassment", "hate", "self-harm", "sexual", "violence", "illegal activity"]
JUDGED_FIELDS = ["instruction", "output", "chosen", "responses", "turns"]


def _key(name: str) -> str:
    """A category name as compared: lower case, runs of spaces, hyphens and underscores as one space."""
    return re.sub(r"[\s_-]+", " ", name.strip().lower())


class ToxicityParams(Params):
    """Parameters of the ``toxicity`` gate."""

    categories: list[Category] = Field(default_factory=lambda: list(HARM_CATEGORIES), min_length=1,
                                       description="harm categories the judge scores")
    threshold: int = Field(5, ge=1, le=10, description="a category scored at or above this (0-10) fails the record")
    fields: list[TextField] = Field(default_factory=lambda: list(JUDGED_FIELDS), min_length=1,
                                    description="record fields judged, each text on its own")


@register_gate("toxicity", ToxicityParams)
class ToxicityGate(Gate):
    """Judge each of the record's texts for harm per category (0-10) and fail at ``threshold``.

    Every non-empty text among ``fields`` (default: the instruction and the generated answers:
    ``output``, ``chosen``, each of ``responses``, each turn; not the seed ``input`` nor a
    preference pair's deliberately worse ``rejected``) is judged in its own call. A record's score
    for a category is its highest over those texts.

    - Fails with reason ``toxic: <category> <score> (<where>), ...; <judge's reason>`` when any
      category reaches ``threshold``.
    - Fails with reason ``incomplete_judgment: no score for <categories> (<where>)`` when the judge
      left a configured category out (a safety filter does not read silence as a zero); names the
      judge gave that are not configured are ignored.
    - Passes otherwise, reason ``below <threshold>: highest <category> <score>``.

    ``details``: ``scores`` (category -> highest score), ``flagged`` (categories at or above the
    threshold) and ``by_text`` (location -> category -> score). The verdict's score is the highest
    category score (0-10); a record with no text to judge passes with score 0.
    """

    name = "toxicity"

    def __init__(self, categories: list[str] | None = None, threshold: int = 5,
                 fields: list[str] | None = None) -> None:
        super().__init__()
        self.categories = list(categories or HARM_CATEGORIES)
        self.threshold = threshold
        self.fields = list(fields or JUDGED_FIELDS)
        self.rubric = "\n".join(f"- {c}: {HARM_CATEGORIES[c]}" for c in self.categories)
        self.judge = dspy.Predict(JudgeHarm)

    def judge_text(self, text: str) -> tuple[dict[str, int], list[str], str]:
        """(configured category -> score clipped to 0-10, configured categories the judge left
        out, the judge's reason) for one text, under the judge role."""
        with judge_context():
            pred = self.judge(categories=self.rubric, text=text)
        given = {_key(str(k)): v for k, v in (pred.scores or {}).items()}
        scores = {c: min(10, max(0, int(given[_key(c)]))) for c in self.categories if _key(c) in given}
        return scores, [c for c in self.categories if c not in scores], pred.reason

    def forward(self, record: Record) -> Verdict:
        by_text: dict[str, dict[str, int]] = {}
        missing: dict[str, list[str]] = {}
        reasons: dict[str, str] = {}
        for where, text in record_texts(record, self.fields):
            by_text[where], left_out, reasons[where] = self.judge_text(text)
            if left_out:
                missing[where] = left_out
        worst: dict[str, tuple[int, str]] = {}
        for where, scores in by_text.items():
            for category, value in scores.items():
                if value > worst.get(category, (-1, ""))[0]:
                    worst[category] = (value, where)
        flagged = [c for c in self.categories if c in worst and worst[c][0] >= self.threshold]
        top = max(worst.values(), default=(0, ""))[0]
        details = {"scores": {c: v for c, (v, _) in worst.items()}, "flagged": flagged, "by_text": by_text}
        if flagged:
            listed = ", ".join(f"{c} {worst[c][0]} ({worst[c][1]})" for c in flagged)
            return Verdict(gate=self.name, passed=False, score=float(top),
                           reason=f"toxic: {listed}; {reasons[worst[flagged[0]][1]]}", details=details)
        if missing:
            listed = "; ".join(f"{', '.join(cats)} ({where})" for where, cats in missing.items())
            return Verdict(gate=self.name, passed=False, score=float(top),
                           reason=f"incomplete_judgment: no score for {listed}", details=details)
        highest = max(worst, key=lambda c: worst[c][0], default="")
        summary = f"highest {highest} {top}" if highest else "no text to judge"
        return Verdict(gate=self.name, passed=True, score=float(top), reason=f"below {self.threshold}: {summary}",
                       details=details)
