"""The compile objective: judge quality, gate pass rate and set-level diversity of one batch of records.

A compile example is a batch of seeds; the program generates the batch's records and this
objective scores them together, so per-example optimizers see a set-level signal (diversity).

    score = (w_q * quality + w_p * pass_rate + w_d * diversity) / (w_q + w_p + w_d)

with every component in [0, 1]:

- quality: mean judge score of the records on the 1-10 rubric scale, mapped by (s - 1) / 9. The
  score is read from the ``reward`` gate's verdict when the program has one, else a frozen
  :class:`~synthdspy.gates.judged.RewardGate` scores each record under the judge role.
- pass_rate: share of records that passed every gate (1.0 with no gates).
- diversity: a pluggable set-level metric from :data:`DIVERSITY_METRICS` (``lexical``: the n-gram
  diversity score of Shaib et al. 2024 for n = 1..4, divided by 4 to map it into [0, 1]).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import dspy

from synthdspy.config import ObjectiveConfig
from synthdspy.gates.judged import RewardGate
from synthdspy.metrics.diversity.lexical import ngram_diversity_score
from synthdspy.program import GateChain
from synthdspy.records import Record


def lexical_diversity(texts: Sequence[str]) -> float:
    """Shaib et al.'s n-gram diversity score (n = 1..4) scaled into [0, 1]; 0 for fewer than 2 texts."""
    texts = [t for t in texts if t.strip()]
    if len(texts) < 2:
        return 0.0
    return ngram_diversity_score(texts, max_n=4) / 4.0


DIVERSITY_METRICS: dict[str, Callable[[Sequence[str]], float]] = {"lexical": lexical_diversity}


@dataclass
class BatchScores:
    """Objective components for one batch of records, each in [0, 1], and their weighted score."""

    quality: float
    pass_rate: float
    diversity: float
    score: float
    n_records: int

    def as_dict(self) -> dict[str, float]:
        """The fields as a plain dict."""
        return asdict(self)


class Objective:
    """Scores batches of records; usable as a DSPy metric ``metric(example, prediction, trace)``.

    Args:
        cfg: the ``[objective]`` weights and diversity metric name.
        gates: the program's (frozen) gate chain, applied to records that carry no verdicts yet.
        bootstrap_threshold: when DSPy calls the metric with a trace (bootstrapping demos), the
            metric returns ``score >= bootstrap_threshold`` instead of the score.

    Raises:
        KeyError: ``cfg.diversity_metric`` is not in :data:`DIVERSITY_METRICS`.
    """

    def __init__(self, cfg: ObjectiveConfig, gates: GateChain, bootstrap_threshold: float = 0.5) -> None:
        if cfg.diversity_metric not in DIVERSITY_METRICS:
            raise KeyError(f"objective.diversity_metric {cfg.diversity_metric!r}; known: {sorted(DIVERSITY_METRICS)}")
        self.cfg = cfg
        self.gates = gates
        self.diversity_fn = DIVERSITY_METRICS[cfg.diversity_metric]
        self.has_reward = any(isinstance(g, RewardGate) for g in gates.gates)
        self.quality_judge = None if self.has_reward else RewardGate()
        self.bootstrap_threshold = bootstrap_threshold

    def record_quality(self, record: Record) -> float:
        """The record's judge score on 1-10 (from its reward verdict, else judged now)."""
        for v in record.verdicts:
            if v.gate == "reward" and v.score is not None:
                return float(v.score)
        if self.quality_judge is None:  # a reward gate exists but gave no score (it errored)
            return 1.0
        score, _ = self.quality_judge.score(record.instruction, record.input, record.output)
        return score

    def score_records(self, records: Sequence[Record]) -> BatchScores:
        """Gate (if not yet gated) and score ``records``; an empty batch scores 0."""
        if not records:
            return BatchScores(0.0, 0.0, 0.0, 0.0, 0)
        gated = [r if r.verdicts or not self.gates.gates else self.gates(r) for r in records]
        quality = sum((self.record_quality(r) - 1.0) / 9.0 for r in gated) / len(gated)
        pass_rate = sum(r.passed for r in gated) / len(gated)
        diversity = self.diversity_fn([r.text for r in gated])
        c = self.cfg
        total = c.quality + c.pass_rate + c.diversity
        score = (c.quality * quality + c.pass_rate * pass_rate + c.diversity * diversity) / total
        return BatchScores(quality, pass_rate, diversity, score, len(gated))

    def __call__(self, example: dspy.Example, prediction: dspy.Prediction, trace=None) -> float | bool:
        scores = self.score_records(prediction.records)
        prediction.scores = scores
        return scores.score >= self.bootstrap_threshold if trace is not None else scores.score
