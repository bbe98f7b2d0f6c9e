"""LLM-judged gates: ``grounding`` (is the output supported by ``record.input``?) and ``reward``
(rubric score on 1-10 against a threshold; dual rule for preference pairs, best-of rule for GRPO
groups). Both run their predictor under the judge LM role."""

from __future__ import annotations

import dspy
from pydantic import Field

from synthdspy.gates.base import Gate
from synthdspy.records import Record, Verdict
from synthdspy.registry import Params, register_gate
from synthdspy.roles import judge_context
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
    """Judge whether the record's answer (:attr:`Record.response`: the chosen answer of a preference
    pair, the first rollout of a GRPO group, a conversation, else ``output``) is supported by its
    source (``record.input``).

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
            pred = self.judge(source=record.input, instruction=record.instruction, response=record.response)
        return Verdict(gate=self.name, passed=bool(pred.supported), score=float(pred.supported), reason=pred.reason)


@register_gate("reward", RewardParams)
class RewardGate(Gate):
    """Judge the record against a rubric on 1-10 and compare with ``threshold``.

    - Single output: passes when the score is at least ``threshold``; a conversation (``turns``) is
      judged as one text, all messages in order.
    - Preference pair (``chosen`` and ``rejected`` set): both are scored; the pair passes only if
      chosen >= threshold and rejected < threshold (the peer tool's dual rule: a pair whose
      rejected answer is as good as its chosen one teaches no contrast). Failures have reason
      ``chosen_below_threshold`` (checked first) or ``rejected_above_threshold``, followed by
      ``": chosen X, rejected Y"``. The verdict's score is the chosen answer's.
    - GRPO group (``responses`` set, no ``output``): every response is scored and the list is stored
      in ``record.reward_scores``, unless the task already filled it (same judge, same scale); the
      group passes when its best response reaches ``threshold`` (a group with no good rollout gives
      no learning signal towards good answers), reason ``best_below_threshold`` otherwise. The
      verdict's score is the best response's.
    """

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
        if record.chosen is not None and record.rejected is not None:
            return self._preference(record)
        if record.responses and not record.output:
            return self._group(record)
        response = record.text if record.turns else record.output
        score, why = self.score(record.instruction, record.input, response)
        return Verdict(gate=self.name, passed=score >= self.threshold, score=score, reason=why)

    def _preference(self, record: Record) -> Verdict:
        chosen, why = self.score(record.instruction, record.input, record.chosen or "")
        rejected, _ = self.score(record.instruction, record.input, record.rejected or "")
        scores = f"chosen {chosen:g}, rejected {rejected:g}"
        if chosen < self.threshold:
            return Verdict(gate=self.name, passed=False, score=chosen, reason=f"chosen_below_threshold: {scores}")
        if rejected >= self.threshold:
            return Verdict(gate=self.name, passed=False, score=chosen, reason=f"rejected_above_threshold: {scores}")
        return Verdict(gate=self.name, passed=True, score=chosen, reason=f"{scores}; {why}")

    def _group(self, record: Record) -> Verdict:
        responses = record.responses or []
        if record.reward_scores is None or len(record.reward_scores) != len(responses):
            record.reward_scores = [self.score(record.instruction, record.input, r)[0] for r in responses]
        best = max(record.reward_scores)
        summary = f"best {best:g} of {len(responses)} responses"
        if best < self.threshold:
            return Verdict(gate=self.name, passed=False, score=best, reason=f"best_below_threshold: {summary}")
        return Verdict(gate=self.name, passed=True, score=best, reason=summary)
