"""The LLM-judged ``pairwise`` gate: which of two texts is better on named criteria, with position
bias controlled.

LLM judges prefer whichever answer they are shown first (or second) more often than chance
(Zheng et al. 2023, "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena", section 3.3, position
bias). As they propose (section 3.4, swapping positions), every pair is judged twice, once in each
order, and a side wins only when both orders prefer it; when the two answers disagree the pair is
a tie. The strategy seed (section A.4) uses such comparisons to select and validate examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import dspy
from pydantic import Field

from synthdspy.gates.base import Gate
from synthdspy.records import Record, Verdict
from synthdspy.registry import Params, register_gate
from synthdspy.roles import judge_context
from synthdspy.signatures.pairwise import ComparePair

Outcome = Literal["win", "tie", "loss"]
RANK: dict[str, int] = {"loss": 0, "tie": 1, "win": 2}
POINTS: dict[str, float] = {"loss": 0.0, "tie": 0.5, "win": 1.0}
DEFAULT_CRITERIA = [
    "correct and complete",
    "faithful to the source when one is given",
    "clear, specific and well organised",
]


@dataclass(frozen=True)
class Comparison:
    """Both orders of one pair: ``outcome`` is the first text's against the second (``win``,
    ``tie`` or ``loss``); ``orders`` the judge's answers (A, B or tie) with the first text shown as
    A, then as B; ``consistent`` whether the two orders agreed; ``reason`` the judge's reason in
    the first order."""

    outcome: Outcome
    orders: tuple[str, str]
    consistent: bool
    reason: str


def combine(first_as_a: str, first_as_b: str) -> tuple[Outcome, bool]:
    """(outcome of the first text, consistent) from the judge's answers in both orders.

    Each order votes win, tie or loss for the first text; equal votes are the outcome, differing
    votes (one order prefers a side the other does not) are a tie (Zheng et al. 2023, section 3.4).
    """
    vote_1 = {"A": "win", "B": "loss", "tie": "tie"}[first_as_a]
    vote_2 = {"A": "loss", "B": "win", "tie": "tie"}[first_as_b]
    return (vote_1 if vote_1 == vote_2 else "tie"), vote_1 == vote_2  # type: ignore[return-value]


class PairwiseParams(Params):
    """Parameters of the ``pairwise`` gate."""

    against: Literal["rollouts", "gold", "original"] = Field(
        description="rollouts: rank a GRPO group's responses; gold: the record's answer against "
                    "metadata[gold_field]; original: a variation's output against its original (input)")
    criteria: list[str] = Field(default_factory=lambda: list(DEFAULT_CRITERIA), min_length=1)
    min_outcome: Outcome = Field("tie", description="gold/original: the worst outcome that passes")
    gold_field: str = Field("gold_answer", min_length=1, description="gold: the metadata key holding the gold text")


@register_gate("pairwise", PairwiseParams)
class PairwiseGate(Gate):
    """Compare two texts on named criteria, both orders asked (a tie when they disagree).

    ``against`` picks what is compared:

    - ``gold``: the record's answer (:attr:`Record.response`) against ``metadata[gold_field]``
      (``gold_answer``: the seed's answer, as the ``grpo``, ``cot`` and ``mind`` tasks keep it).
      Passes when the outcome is at least ``min_outcome`` (``tie``: win or tie; ``loss``: always,
      for reporting only). A record without that key fails with reason ``no_gold``.
    - ``original``: a variation (``output``) against its original (``input``), as the
      ``variation`` task lays records out; same pass rule; reason ``no_original`` when either is empty.
    - ``rollouts``: every pair of a GRPO group's ``responses`` (n(n-1)/2 pairs, two judge calls
      each; identical texts tie without a call). Each response gets wins, ties and losses; the
      ranking orders them by wins + ties/2 (then by position). ``metadata["pairwise"]`` keeps
      ``wins``, ``ties``, ``losses`` (lists by response), ``ranking`` and ``best`` (the index of
      the best response). The group passes when at least one pair was separated (all ties give
      GRPO no advantage to learn from), else reason ``all_tied``; ``too_few_rollouts`` under 2.

    Reasons start with the outcome (``win``, ``tie``, ``loss``) or the failure code. ``details``
    always has ``wins``, ``ties``, ``losses`` and ``inconsistent`` (pairs whose two orders
    disagreed): for gold/original the record's single comparison, for rollouts the best
    response's record against the others (``inconsistent`` over all pairs). The score is the
    record's points share: win 1, tie 0.5, loss 0 (rollouts: the best response's mean).
    """

    name = "pairwise"

    def __init__(self, against: str, criteria: list[str] | None = None, min_outcome: str = "tie",
                 gold_field: str = "gold_answer") -> None:
        super().__init__()
        self.against = against
        self.criteria = list(criteria or DEFAULT_CRITERIA)
        self.min_outcome = min_outcome
        self.gold_field = gold_field
        self.judge = dspy.Predict(ComparePair)

    def compare(self, instruction: str, source: str, first: str, second: str) -> Comparison:
        """Judge ``first`` against ``second`` in both orders under the judge role (see :func:`combine`)."""
        if first.strip() == second.strip():
            return Comparison("tie", ("tie", "tie"), True, "identical texts")
        criteria = "\n".join(f"{i}. {c}" for i, c in enumerate(self.criteria, 1))
        with judge_context():
            one = self.judge(criteria=criteria, instruction=instruction, source=source,
                             response_a=first, response_b=second)
            two = self.judge(criteria=criteria, instruction=instruction, source=source,
                             response_a=second, response_b=first)
        outcome, consistent = combine(one.better, two.better)
        return Comparison(outcome, (one.better, two.better), consistent, one.reason)

    def forward(self, record: Record) -> Verdict:
        if self.against == "rollouts":
            return self._rollouts(record)
        if self.against == "gold":
            gold = str(record.metadata.get(self.gold_field) or "")
            if not gold.strip():
                return Verdict(gate=self.name, passed=False, score=None,
                               reason=f"no_gold: the record has no metadata[{self.gold_field!r}]")
            return self._single(self.compare(record.instruction, record.input, record.response, gold))
        if not record.output.strip() or not record.input.strip():
            return Verdict(gate=self.name, passed=False, score=None,
                           reason="no_original: the record needs the variation in output and the original in input")
        return self._single(self.compare(record.instruction, "", record.output, record.input))

    def _single(self, c: Comparison) -> Verdict:
        passed = RANK[c.outcome] >= RANK[self.min_outcome]
        details = {"outcome": c.outcome, "orders": list(c.orders), "wins": int(c.outcome == "win"),
                   "ties": int(c.outcome == "tie"), "losses": int(c.outcome == "loss"),
                   "inconsistent": int(not c.consistent)}
        said = f"judge said {c.orders[0]} with the record as A, {c.orders[1]} with it as B"
        return Verdict(gate=self.name, passed=passed, score=POINTS[c.outcome],
                       reason=f"{c.outcome}: against {self.against}, {said}; {c.reason}", details=details)

    def _rollouts(self, record: Record) -> Verdict:
        responses = record.responses or []
        n = len(responses)
        if n < 2:
            return Verdict(gate=self.name, passed=False, score=None,
                           reason=f"too_few_rollouts: {n} response(s), 2 needed")
        tally = {k: [0] * n for k in ("win", "tie", "loss")}
        inconsistent = 0
        for i, j in combinations(range(n), 2):
            c = self.compare(record.instruction, record.input, responses[i], responses[j])
            inconsistent += not c.consistent
            tally[c.outcome][i] += 1
            tally[{"win": "loss", "loss": "win", "tie": "tie"}[c.outcome]][j] += 1
        points = [tally["win"][k] + tally["tie"][k] / 2 for k in range(n)]
        ranking = sorted(range(n), key=lambda k: (-points[k], k))
        best = ranking[0]
        record.metadata["pairwise"] = {"wins": tally["win"], "ties": tally["tie"], "losses": tally["loss"],
                                       "ranking": ranking, "best": best}
        details = {"wins": tally["win"][best], "ties": tally["tie"][best], "losses": tally["loss"][best],
                   "inconsistent": inconsistent, "pairs": n * (n - 1) // 2}
        score = points[best] / (n - 1)
        summary = (f"best response {best} ({tally['win'][best]} wins, {tally['tie'][best]} ties, "
                   f"{tally['loss'][best]} losses of {n - 1}); {inconsistent} of {details['pairs']} pairs "
                   "changed with the order")
        if not any(tally["win"]):
            return Verdict(gate=self.name, passed=False, score=score, reason=f"all_tied: {summary}", details=details)
        return Verdict(gate=self.name, passed=True, score=score, reason=summary, details=details)
