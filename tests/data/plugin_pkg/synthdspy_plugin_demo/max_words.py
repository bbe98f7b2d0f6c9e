"""``max_words``: a rule gate registered from outside the synthdspy package."""

from __future__ import annotations

from pydantic import Field

from synthdspy.gates.base import Gate
from synthdspy.records import Record, Verdict
from synthdspy.registry import Params, register_gate


class MaxWordsParams(Params):
    """Parameters of the ``max_words`` gate."""

    limit: int = Field(40, ge=1)


@register_gate("max_words", MaxWordsParams)
class MaxWordsGate(Gate):
    """Pass records whose output has at most ``limit`` words (a plugin gate)."""

    name = "max_words"

    def __init__(self, limit: int = 40) -> None:
        super().__init__()
        self.limit = limit

    def forward(self, record: Record) -> Verdict:
        words = len(record.output.split())
        return Verdict(gate=self.name, passed=words <= self.limit, score=float(words),
                       reason=f"{words} words (limit {self.limit})")
