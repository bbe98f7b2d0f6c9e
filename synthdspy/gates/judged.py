"""LLM-judged gates: ``grounding`` (is the output supported by ``record.input``?) and ``reward``
(rubric score on 1-10 against a threshold). Both run their predictor under the judge LM role."""

from __future__ import annotations

import dspy
from pydantic import Field

from synthdspy.gates.base import Gate
from synthdspy.lm import judge_context
from synthdspy.records import Record, Verdict
from synthdspy.registry import Params, register_gate
from synthdspy.signatures.judges import JudgeGrounding, JudgeQuality

DEFAULT_RUBRIC = (
    "Correct and complete; faithful to the source when one is given; clear, specific and well organised; "
    "useful as a training example for a helpful assistant."
)


class GroundingParams(Params):
    """Parameters of the ``grounding`` gate."""


class RewardParams(Params):
    """Parameters of the ``reward`` gate."""

    threshold: float = Field(6.0, ge=1, le=10, description="minimum 1-10 score to pass")
    rubric: str = DEFAULT_RUBRIC


@register_gate("grounding", GroundingParams)
class GroundingGate(Gate):
    """Judge whether the record's output is supported by its source (``record.input``).

    A record without a source fails with reason ``no_source``: grounding cannot be checked.
    Score is 1.0 when supported, else 0.0.
    """

    name = "grounding"

    def __init__(self) -> None:
        super().__init__()
        self.judge = dspy.Predict(JudgeGrounding)

    def forward(self, record: Record) -> Verdict:
        if not record.input.strip():
            return Verdict(gate=self.name, passed=False, score=0.0, reason="no_source")
        with judge_context():
            pred = self.judge(source=record.input, instruction=record.instruction, response=record.output)
        return Verdict(gate=self.name, passed=bool(pred.supported), score=float(pred.supported), reason=pred.reason)


@register_gate("reward", RewardParams)
class RewardGate(Gate):
    """Judge the record against a rubric on 1-10; passes when the score is at least ``threshold``."""

    name = "reward"

    def __init__(self, threshold: float = 6.0, rubric: str = DEFAULT_RUBRIC) -> None:
        super().__init__()
        self.threshold = threshold
        self.rubric = rubric
        self.judge = dspy.Predict(JudgeQuality)

    def score(self, instruction: str, source: str, response: str) -> tuple[float, str]:
        """(score clipped to 1-10, rationale) for one response under the judge role."""
        with judge_context():
            pred = self.judge(rubric=self.rubric, instruction=instruction, source=source, response=response)
        return float(min(10, max(1, pred.score))), pred.rationale

    def forward(self, record: Record) -> Verdict:
        score, why = self.score(record.instruction, record.input, record.output)
        return Verdict(gate=self.name, passed=score >= self.threshold, score=score, reason=why)
