"""The LLM cluster-agent diversity score of Chen et al. 2024 (sec. 2.1, appendices B.2 and D): the driver.

Pipeline:

1. **Criteria** (:class:`~synthdspy.metrics.diversity.criteria.CriteriaGenerator`): M rounds of J
   samples propose metadata and metrics, merged into k each and frozen as
   :class:`~synthdspy.metrics.diversity.criteria.DiversityCriteria`.
2. **Clustering** (:class:`~synthdspy.metrics.diversity.rounds.ClusterRound`): each of N rounds
   shows K random samples and the criteria; the LM answers with typed clusters, and a second call
   verifies each cluster (counting rules in :mod:`synthdspy.metrics.diversity.rounds`).
3. **Score** (:func:`run_cluster_agent`): D = (1/N) sum_i C_i / S_i, with C_i clusters and
   S_i = K / C_i mean samples per cluster in round i (so C_i / S_i = C_i^2 / K, between 1/K and K),
   with a bootstrap confidence interval over rounds
   (:func:`~synthdspy.metrics.diversity.statistics.bootstrap_interval`) and an optional adaptive stop.

Parameters live in :class:`~synthdspy.metrics.diversity.agent_config.ClusterAgentConfig`. Paper
settings (reference points, all parameters here): J=5, M=100, K=10, N=5000, bootstrapped over 10
subsamples. K=10 gave the most stable scores and N >= 1000 a tight estimate (Table 10).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dspy
from pydantic import BaseModel, Field

from synthdspy.metrics.diversity.agent_config import ClusterAgentConfig
from synthdspy.metrics.diversity.criteria import CriteriaGenerator, DiversityCriteria
from synthdspy.metrics.diversity.progress import ProgressLines, run_parallel
from synthdspy.metrics.diversity.rounds import CLUSTER_STREAM, ClusterRound, RoundRecord, sample_indices
from synthdspy.metrics.diversity.statistics import Interval, bootstrap_interval
from synthdspy.usage import RoleUsage

__all__ = ["BatchClusterResult", "ClusterAgentConfig", "ClusterAgentResult", "ClusterBatchScore",
           "CriteriaGenerator", "DiversityCriteria", "bootstrap_interval", "run_cluster_agent"]


class BatchClusterResult(BaseModel):
    """The cluster-agent's verdict on one batch of K texts; ``score`` is C/S, None if skipped."""

    score: float | None
    round: RoundRecord


class ClusterBatchScore:
    """Score one batch of exactly K texts against frozen criteria: the compile objective's unit.

    Args:
        criteria: frozen :class:`DiversityCriteria`.
        lm: the judge LM; None uses the LM configured in ``dspy.settings``.
        k_samples: K, the batch size every call must have (paper: 10).
        verify: run the self-verification step (paper: yes).

    ``__call__(texts, rollout_id=None, fresh=False)`` returns a :class:`BatchClusterResult` whose
    score lies in [1/K, K]; ``fresh`` asks for a new sample even from a greedy judge (a retry). It
    raises ``ValueError`` when ``len(texts) != k_samples``.
    """

    def __init__(self, criteria: DiversityCriteria, lm: Any | None = None, k_samples: int = 10,
                 verify: bool = True):
        self.criteria = criteria
        self.lm = lm
        self.k_samples = k_samples
        self.round = ClusterRound(verify=verify)

    def __call__(self, texts: Sequence[str], rollout_id: int | None = None, fresh: bool = False) -> BatchClusterResult:
        if len(texts) != self.k_samples:
            raise ValueError(f"ClusterBatchScore expects exactly {self.k_samples} texts, got {len(texts)}")
        with dspy.context(lm=self.lm) if self.lm else contextlib.nullcontext():
            pred = self.round(criteria=self.criteria.prompt_text(), texts=list(texts), rollout_id=rollout_id,
                              fresh=fresh)
        record = RoundRecord(
            round=rollout_id or 0, sample_ids=list(range(len(texts))), clusters=pred.clusters,
            verdicts=pred.verdicts, score=pred.score, skipped=pred.skipped, usage=pred.usage,
        )
        return BatchClusterResult(score=pred.score.ratio if pred.score else None, round=record)


class ClusterAgentResult(BaseModel):
    """Outcome of :func:`run_cluster_agent`: the score, its interval and everything behind it.

    ``usage`` and ``criteria_usage`` are the billed calls (:class:`~synthdspy.usage.RoleUsage`) of
    the clustering rounds and of generating the criteria (zero when criteria were given).
    """

    score: float | None = Field(description="D = mean of C_i / S_i over scored rounds")
    interval: Interval | None
    rounds_requested: int
    rounds_run: int
    rounds_scored: int
    stopped_early: bool
    skipped: list[tuple[int, str]]
    usage: RoleUsage
    criteria_usage: RoleUsage
    criteria: DiversityCriteria
    config: ClusterAgentConfig
    rounds: list[RoundRecord]

    def summary(self) -> dict[str, Any]:
        """The result without the per-round records (what ``summary.json`` holds)."""
        return self.model_dump(mode="json", exclude={"rounds", "criteria"})

    def save(self, directory: str | Path) -> Path:
        """Write ``criteria.json``, ``rounds.jsonl`` (clusters, reasoning, verdicts) and
        ``summary.json`` into ``directory``; returns the directory."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.criteria.save(directory / "criteria.json")
        with (directory / "rounds.jsonl").open("w", encoding="utf-8") as handle:
            for record in self.rounds:
                handle.write(record.model_dump_json() + "\n")
        (directory / "summary.json").write_text(json.dumps(self.summary(), indent=2), encoding="utf-8")
        return directory


def run_cluster_agent(
    texts: Sequence[str],
    lm: Any | None = None,
    config: ClusterAgentConfig | None = None,
    criteria: DiversityCriteria | None = None,
    label: str = "cluster-agent",
) -> ClusterAgentResult:
    """Measure the LLM cluster score D of ``texts`` (Chen et al. 2024, sec. 2.1).

    Args:
        texts: the corpus (at least K texts).
        lm: any DSPy LM (None: the one in ``dspy.settings``). Calls run on ``config.num_threads``
            threads; DSPy's cache answers repeated requests, so a re-run costs nothing.
        config: parameters (default: the paper's).
        criteria: frozen criteria to reuse; None generates them first (M more LM calls).
        label: names the clustering stage in progress lines printed off a terminal.

    Returns:
        :class:`ClusterAgentResult`; ``score`` is None when no round could be scored.

    Raises:
        ValueError: fewer texts than K.
        RuntimeError: criteria generation failed (see :class:`CriteriaGenerator`).
    """
    config = config or ClusterAgentConfig()
    if len(texts) < config.k_samples:
        raise ValueError(f"the cluster-agent needs at least K={config.k_samples} texts, got {len(texts)}")
    with dspy.context(lm=lm) if lm is not None else contextlib.nullcontext():
        criteria_usage = RoleUsage()
        if criteria is None:
            made = CriteriaGenerator()(texts=texts, config=config)
            criteria, criteria_usage = made.criteria, made.usage
        prompt = criteria.prompt_text()
        module = ClusterRound(verify=config.verify)
        records: list[RoundRecord] = []
        interval: Interval | None = None
        stopped_early = False
        progress = ProgressLines(label, total=config.cluster_rounds, unit="rounds")
        while len(records) < config.cluster_rounds:
            start = len(records)
            stop = min(config.cluster_rounds, start + config.chunk_rounds)
            jobs, draws = [], []
            for r in range(start, stop):
                ids = sample_indices(len(texts), config.k_samples, config.seed, CLUSTER_STREAM, r)
                draws.append(ids)
                jobs.append((module, {"criteria": prompt, "texts": [texts[i] for i in ids], "rollout_id": r}))
            for r, ids, pred in zip(range(start, stop), draws, run_parallel(jobs, config.num_threads, progress),
                                    strict=True):
                records.append(_record(r, ids, pred))
            ratios = [rec.score.ratio for rec in records if rec.score is not None]
            if ratios:
                interval = bootstrap_interval(ratios, config.confidence, config.n_resamples, config.seed)
            if (config.adaptive_tol is not None and interval is not None and len(ratios) >= config.min_rounds
                    and interval.half_width <= config.adaptive_tol):
                stopped_early = len(records) < config.cluster_rounds
                break
        progress.finish(f"; stopped early, interval half-width {interval.half_width:.3f}"
                        if stopped_early and interval else "")
    scored = [rec for rec in records if rec.score is not None]
    return ClusterAgentResult(
        score=interval.mean if interval else None,
        interval=interval,
        rounds_requested=config.cluster_rounds,
        rounds_run=len(records),
        rounds_scored=len(scored),
        stopped_early=stopped_early,
        skipped=[(rec.round, rec.skipped) for rec in records if rec.skipped],
        usage=sum((rec.usage for rec in records), RoleUsage()),
        criteria_usage=criteria_usage,
        criteria=criteria,
        config=config,
        rounds=records,
    )


def _record(round_index: int, ids: list[int], pred: dspy.Prediction | None) -> RoundRecord:
    if pred is None:  # dspy.Parallel returns None for a job that raised or timed out
        return RoundRecord(round=round_index, sample_ids=ids, skipped="the round's job failed or timed out")
    return RoundRecord(round=round_index, sample_ids=ids, clusters=pred.clusters, verdicts=pred.verdicts,
                       score=pred.score, skipped=pred.skipped, usage=pred.usage)
