"""``hallucination``: a grounding judge that also names the failure class (peer tool's HallucinationGate)."""

from __future__ import annotations

from collections import Counter

import dspy

from synthdspy.gates.base import Gate
from synthdspy.records import Record, Verdict
from synthdspy.registry import Params, register_gate
from synthdspy.roles import judge_context
from synthdspy.signatures.hallucination import CheckFaithful, DiagnoseFailure


class HallucinationParams(Params):
    """Parameters of the ``hallucination`` gate (none)."""


def judged_pairs(record: Record) -> list[tuple[str, str]]:
    """The (question, answer) pairs the gate judges for ``record``.

    Preference records: the ``chosen`` answer. Conversations (``turns``): all user messages as the
    question and all assistant replies as the answer, one pair. GRPO records (``responses`` and no
    ``output``): one pair per response. Otherwise ``output``.
    """
    if record.chosen is not None:
        return [(record.instruction, record.chosen)]
    if record.turns:
        by_role = {role: "\n".join(t["content"] for t in record.turns if t.get("role") == role)
                   for role in ("user", "assistant")}
        return [(by_role["user"], by_role["assistant"])]
    if record.responses and not record.output:
        return [(record.instruction, r) for r in record.responses]
    return [(record.instruction, record.output)]


@register_gate("hallucination", HallucinationParams)
class HallucinationGate(Gate):
    """Judge whether a record is faithful to its source and, when not, diagnose why.

    Two judge calls under the judge role: :class:`CheckFaithful` (bool), then, only for a failed
    check, :class:`DiagnoseFailure`, whose Literal output is one of GENERATOR_PARAMETRIC,
    GENERATOR_TEMPERATURE, DOMAIN_MISMATCH, INSTRUCTION_QUALITY. A faithful record passes with
    diagnosis None (reported as NONE) and score 1.0; a failed one has ``diagnosis`` set, score 0.0
    and reason ``"<DIAGNOSIS>: <evidence>"``. GRPO records (several responses) pass when at least
    one response is faithful (the group still has a good rollout); score is the share of faithful
    responses and a failing group's diagnosis is its most common one. Which text is judged for each
    record kind: :func:`judged_pairs`. A record without a source fails with reason ``no_source``.
    """

    name = "hallucination"

    def __init__(self) -> None:
        super().__init__()
        self.check = dspy.Predict(CheckFaithful)
        self.diagnose = dspy.Predict(DiagnoseFailure)

    def judge(self, source: str, question: str, answer: str) -> tuple[str, str]:
        """(diagnosis, reason) for one answer: ``"NONE"`` when faithful. Call under the judge role."""
        check = self.check(source=source, question=question, answer=answer)
        if check.faithful:
            return "NONE", check.reason
        pred = self.diagnose(source=source, question=question, answer=answer, finding=check.reason)
        return pred.diagnosis, pred.reason

    def forward(self, record: Record) -> Verdict:
        if not record.input.strip():
            return Verdict(gate=self.name, passed=False, score=0.0, reason="no_source")
        with judge_context():
            results = [self.judge(record.input, q, a) for q, a in judged_pairs(record)]
        faithful = [r for r in results if r[0] == "NONE"]
        if len(results) == 1:
            diagnosis, reason = results[0]
            if faithful:
                return Verdict(gate=self.name, passed=True, score=1.0, reason=reason)
            return Verdict(gate=self.name, passed=False, score=0.0, reason=f"{diagnosis}: {reason}",
                           diagnosis=diagnosis)
        score = len(faithful) / len(results)
        if faithful:
            return Verdict(gate=self.name, passed=True, score=score,
                           reason=f"{len(faithful)} of {len(results)} responses faithful")
        diagnosis = Counter(d for d, _ in results).most_common(1)[0][0]
        return Verdict(gate=self.name, passed=False, score=0.0, diagnosis=diagnosis,
                       reason=f"{diagnosis}: no response faithful; first: {results[0][1]}")
