"""``self_curation`` gate: the 5-point pair-quality judge of instruction backtranslation (Li et al.
2023, "Self-Alignment with Instruction Backtranslation", section 2, self-curation).

Li et al. let the model being trained rate its own (instruction, answer) pairs and keep those
rated 4 or 5 (their A4 and A5 sets). The gate runs under the judge role: point ``lm.judge`` at the
generator's model for self-curation in their sense, or at a stronger model for plain curation.
"""

from __future__ import annotations

import dspy
from pydantic import Field

from synthdspy.gates.base import Gate
from synthdspy.records import Record, Verdict
from synthdspy.registry import Params, register_gate
from synthdspy.roles import judge_context
from synthdspy.signatures.catalog_knowledge import CurateInstructionPair


class SelfCurationParams(Params):
    """Parameters of the ``self_curation`` gate."""

    threshold: int = Field(4, ge=1, le=5, description="minimum 1-5 score to pass (Li et al. keep 4 and 5)")


@register_gate("self_curation", SelfCurationParams)
class SelfCurationGate(Gate):
    """Score the record's (instruction, answer) pair on Li et al.'s 5-point scale and pass it at ``threshold``.

    The instruction is ``record.instruction`` followed by ``record.input`` when there is one; the
    answer is :attr:`Record.response` (the chosen answer of a preference pair, the first rollout of
    a GRPO group, a conversation, else ``output``). As with the ``reward`` gate, the verdict's
    ``score`` is the judge's score (clipped to 1-5) and its ``reason`` starts with
    ``"score S/5, threshold T: "`` followed by the judge's reason; a record with an empty
    instruction or answer fails with reason ``empty_pair`` without a judge call.
    """

    name = "self_curation"

    def __init__(self, threshold: int = 4) -> None:
        super().__init__()
        self.threshold = threshold
        self.judge = dspy.Predict(CurateInstructionPair)

    def forward(self, record: Record) -> Verdict:
        instruction = "\n\n".join(p for p in (record.instruction.strip(), record.input.strip()) if p)
        response = record.response.strip()
        if not instruction or not response:
            return Verdict(gate=self.name, passed=False, score=None, reason="empty_pair")
        with judge_context():
            pred = self.judge(instruction=instruction, response=response)
        score = min(5, max(1, int(pred.score)))
        return Verdict(gate=self.name, passed=score >= self.threshold, score=float(score),
                       reason=f"score {score}/5, threshold {self.threshold}: {pred.reason}")
