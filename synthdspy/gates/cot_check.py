"""The ``cot_check`` gate: does the text show explicit step-by-step reasoning? (strategy seed,
section B.2: the chain-of-thought quality filter)."""

from __future__ import annotations

import dspy
from pydantic import Field

from synthdspy.gates.base import Gate
from synthdspy.records import Record, Verdict
from synthdspy.registry import Params, register_gate
from synthdspy.roles import judge_context
from synthdspy.signatures.dimension_judges import JudgeStepByStep


class CoTCheckParams(Params):
    """Parameters of the ``cot_check`` gate."""

    expected: bool = Field(True, description="pass when the judge's yes/no equals this (False: keep texts without)")


@register_gate("cot_check", CoTCheckParams)
class CoTCheckGate(Gate):
    """A judge's yes/no on whether the record's text lays out its reasoning step by step.

    Passes when the answer equals ``expected``; score 1.0 for yes, 0.0 for no; the judge's reason
    is the verdict's reason and ``details.step_by_step`` the answer.
    """

    name = "cot_check"

    def __init__(self, expected: bool = True) -> None:
        super().__init__()
        self.expected = expected
        self.judge = dspy.Predict(JudgeStepByStep)

    def forward(self, record: Record) -> Verdict:
        with judge_context():
            pred = self.judge(text=record.output or record.text)
        steps = bool(pred.step_by_step)
        return Verdict(gate=self.name, passed=steps == self.expected, score=float(steps), reason=pred.reason,
                       details={"step_by_step": steps})
