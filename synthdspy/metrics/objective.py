"""The compile objective: judge quality, gate pass rate and set-level diversity of one batch of records.

A compile example is a batch of seeds; the program generates the batch's records and this
objective scores them together, so per-example optimizers see a set-level signal (diversity).

    score = (w_q * quality + w_p * pass_rate + w_d * diversity) / (w_q + w_p + w_d)

with every component in [0, 1]:

- quality: mean judge score of the records on the 1-10 rubric scale, mapped by (s - 1) / 9. The
  score is read from the ``reward`` gate's verdict when the program has one, else a frozen
  :class:`~synthdspy.gates.judged.RewardGate` scores each record under the judge role.
- pass_rate: share of records that passed every gate (1.0 with no gates).
- diversity: the weighted mean of the configured scorers
  (:mod:`synthdspy.metrics.diversity.scorers`: lexical, embedding, cluster_agent); a batch of
  fewer than two records has diversity 0.

For GEPA the objective also returns feedback text: the judge's rationales for low scores, the
gates' reasons for rejections, and the cluster-agent's reasoning about which records are alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import dspy

from synthdspy.config import ObjectiveConfig
from synthdspy.gates.judged import RewardGate
from synthdspy.metrics.diversity.scorers import DiversityScorer
from synthdspy.program import GateChain
from synthdspy.records import Record


@dataclass
class BatchScores:
    """Objective components for one batch of records, each in [0, 1], and their weighted score.

    ``diversity_parts`` holds each scorer's value; ``feedback`` the text for reflective optimizers.
    """

    quality: float
    pass_rate: float
    diversity: float
    score: float
    n_records: int
    diversity_parts: dict[str, float] = field(default_factory=dict)
    feedback: str = ""

    def as_dict(self) -> dict[str, float]:
        """The numeric fields as a flat dict (diversity parts as ``diversity.<name>``)."""
        d = {k: v for k, v in asdict(self).items() if k not in ("diversity_parts", "feedback")}
        d.update({f"diversity.{k}": v for k, v in self.diversity_parts.items()})
        return d


class Objective:
    """Scores batches of records; usable as a DSPy metric ``metric(example, prediction, trace)``.

    Args:
        cfg: the ``[objective]`` weights.
        gates: the program's (frozen) gate chain, applied to records that carry no verdicts yet.
        scorers: diversity scorers by name; weights come from ``cfg.diversity_metrics``.
        bootstrap_threshold: when DSPy calls the metric with a trace (bootstrapping demos), the
            metric returns ``score >= bootstrap_threshold`` instead of the score.
        with_feedback: return ``dspy.Prediction(score=..., feedback=...)`` (GEPA's metric form).
        guard: a budget guard (:class:`synthdspy.optimizers.budget.BudgetGuard`) whose
            ``check_metric()`` runs before every metric evaluation and may raise.

    Raises:
        KeyError: a weighted diversity metric has no scorer.
    """

    def __init__(self, cfg: ObjectiveConfig, gates: GateChain, scorers: Mapping[str, DiversityScorer],
                 bootstrap_threshold: float = 0.5, with_feedback: bool = False, guard: Any = None) -> None:
        missing = [n for n, w in cfg.diversity_metrics.items() if w > 0 and n not in scorers and cfg.diversity > 0]
        if missing:
            raise KeyError(f"objective.diversity_metrics {missing} have no scorer")
        self.cfg = cfg
        self.gates = gates
        self.scorers = dict(scorers)
        self.has_reward = any(isinstance(g, RewardGate) for g in gates.gates)
        self.quality_judge = None if self.has_reward else RewardGate()
        self.bootstrap_threshold = bootstrap_threshold
        self.with_feedback = with_feedback
        self.guard = guard

    def record_quality(self, record: Record) -> tuple[float, str]:
        """The record's judge score on 1-10 and the judge's rationale (from its reward verdict, else judged now)."""
        for v in record.verdicts:
            if v.gate == "reward" and v.score is not None:
                return float(v.score), v.reason
        if self.quality_judge is None:  # a reward gate exists but gave no score (it errored)
            return 1.0, "the reward judge gave no score"
        return self.quality_judge.score(record.instruction, record.input, record.response)

    def diversity(self, texts: Sequence[str]) -> tuple[float, dict[str, float], str]:
        """Weighted diversity of ``texts`` in [0, 1], each scorer's value, and the scorers' feedback."""
        weights = {n: w for n, w in self.cfg.diversity_metrics.items() if w > 0}
        if len(texts) < 2 or not weights or self.cfg.diversity <= 0:
            return 0.0, {}, ""
        parts, notes = {}, []
        for name in weights:
            result = self.scorers[name](texts)
            parts[name] = result.value
            if result.feedback:
                notes.append(result.feedback)
        value = sum(weights[n] * parts[n] for n in parts) / sum(weights.values())
        return value, parts, " ".join(notes)

    def score_records(self, records: Sequence[Record]) -> BatchScores:
        """Gate (if not yet gated) and score ``records``; an empty batch scores 0."""
        if not records:
            return BatchScores(0.0, 0.0, 0.0, 0.0, 0, feedback="The program produced no records for this batch.")
        gated = [r if r.verdicts or not self.gates.gates else self.gates(r) for r in records]
        judged = [self.record_quality(r) for r in gated]
        quality = sum((s - 1.0) / 9.0 for s, _ in judged) / len(gated)
        pass_rate = sum(r.passed for r in gated) / len(gated)
        field = self.cfg.diversity_field
        diversity, parts, diversity_notes = self.diversity([getattr(r, field) for r in gated])
        c = self.cfg
        total = c.quality + c.pass_rate + c.diversity
        score = (c.quality * quality + c.pass_rate * pass_rate + c.diversity * diversity) / total
        feedback = _feedback(gated, judged, diversity_notes)
        return BatchScores(quality, pass_rate, diversity, score, len(gated), parts, feedback)

    def __call__(self, example: dspy.Example, prediction: dspy.Prediction, trace=None, pred_name=None,
                 pred_trace=None) -> float | bool | dspy.Prediction:
        scores = getattr(prediction, "scores", None)
        if scores is None:  # only a new evaluation counts against the budget, not a re-read for feedback
            if self.guard is not None:
                self.guard.check_metric()
            scores = self.score_records(prediction.records)
            prediction.scores = scores
        if self.with_feedback:
            return dspy.Prediction(score=scores.score, feedback=scores.feedback)
        return scores.score >= self.bootstrap_threshold if trace is not None else scores.score


def diversity_label(cfg: ObjectiveConfig) -> str:
    """What ``diversity`` measures under ``cfg``, e.g. ``"cluster_agent on response"`` or
    ``"1 lexical + 0.5 cluster_agent on text"``; ``"none"`` when diversity has no weight.

    Diversity values are comparable only between runs with the same label.
    """
    weights = {n: w for n, w in cfg.diversity_metrics.items() if w > 0}
    if cfg.diversity <= 0 or not weights:
        return "none"
    mix = next(iter(weights)) if len(weights) == 1 else " + ".join(f"{w:g} {n}" for n, w in weights.items())
    return f"{mix} on {cfg.diversity_field}"


def _feedback(records: Sequence[Record], judged: Sequence[tuple[float, str]], diversity_notes: str) -> str:
    """Text feedback: low judge scores with rationales, gate rejections with reasons, diversity notes."""
    lines = []
    for i, (record, (score, why)) in enumerate(zip(records, judged, strict=True), start=1):
        if score < 7:
            lines.append(f"Record {i} scored {score:.0f}/10: {why}")
        for v in record.verdicts:
            if not v.passed and v.gate != "reward":
                lines.append(f"Record {i} failed the {v.gate} gate: {v.reason}")
    if diversity_notes:
        lines.append(diversity_notes)
    return "\n".join(lines) or "All records scored well and passed every gate."
