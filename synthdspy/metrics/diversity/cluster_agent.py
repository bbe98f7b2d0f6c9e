"""The LLM cluster-agent diversity score of Chen et al. 2024 (sec. 2.1, appendices B.2 and D).

Pipeline:

1. **Criteria** (:func:`generate_criteria`): M rounds, each showing J random samples to the LM,
   which proposes 3-5 metadata attributes and 3-5 metrics with 1-5 scoring rules; the proposals
   are gathered by name and merged into k metadata and k metrics; each is condensed to one
   sentence. The result, :class:`DiversityCriteria`, is frozen and can be saved and loaded.
2. **Clustering** (:class:`ClusterRound`): each of N rounds shows K random samples and the
   criteria; the LM answers with typed clusters, and a second call verifies each cluster.
3. **Score** (:func:`score_round`, :func:`run_cluster_agent`):
   D = (1/N) sum_i C_i / S_i, with C_i clusters and S_i = K / C_i mean samples per cluster in
   round i (so C_i / S_i = C_i^2 / K, between 1/K and K), with a bootstrap confidence interval
   over rounds and an optional adaptive stop.

Counting rules of one round (our decisions; the paper only says that verification removes
unreasonable clusters):

- a cluster the verifier marks invalid is dissolved: each of its samples becomes a singleton;
- singletons are always valid, whatever the verifier says;
- a sample the clustering answer leaves out is a singleton;
- a cluster with no verdict stands (counted as valid, reported as ``unverified``);
- an index outside 1..K, a sample placed in two clusters, a repeated cluster id or an answer with
  no cluster makes the round malformed: it is skipped and its reason recorded;
- a failed LM call or an answer that does not parse skips the round the same way.

Paper settings (reference points, all parameters here): J=5, M=100, K=10, N=5000, bootstrapped
over 10 subsamples. K=10 gave the most stable scores and N >= 1000 a tight estimate (Table 10).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import dspy
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from synthdspy.pricing import token_cost
from synthdspy.signatures.diversity import (
    ClusterSamples,
    ClusterVerdict,
    CondenseCriteria,
    Criterion,
    CriterionDraft,
    MergeMetadata,
    MergeMetrics,
    ProposeCriteria,
    ProposedCluster,
    VerifyClusters,
)

CRITERIA_STREAM = 0
CLUSTER_STREAM = 1


class MalformedAnswer(ValueError):
    """A clustering answer that cannot be scored (bad index, sample in two clusters, ...)."""


class DiversityCriteria(BaseModel):
    """Frozen clustering criteria: k metadata and k metrics, one sentence each.

    ``provenance`` records how they were made (J, M, k, seed, LM, rounds used and skipped).
    """

    model_config = ConfigDict(frozen=True)

    criteria: tuple[Criterion, ...]
    provenance: dict[str, Any] = Field(default_factory=dict)

    def prompt_text(self) -> str:
        """The criteria as the numbered list given to the clustering step."""
        return "\n".join(f"{i}. {c.name} ({c.kind}): {c.definition}" for i, c in enumerate(self.criteria, 1))

    def save(self, path: str | Path) -> Path:
        """Write the criteria as JSON to ``path`` (parent directories created); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> DiversityCriteria:
        """Read criteria saved by :meth:`save`.

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file is not valid criteria JSON (message names the file).
        """
        path = Path(path)
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise
        except ValueError as exc:
            raise ValueError(f"{path}: not a saved DiversityCriteria file: {exc}") from exc


class RoundScore(BaseModel):
    """The counts of one clustering round after verification."""

    n_samples: int
    n_clusters: int
    mean_cluster_size: float
    ratio: float = Field(description="C / S = n_clusters / mean_cluster_size")
    n_invalid: int = Field(description="clusters of two or more samples dissolved by the verifier")
    n_unassigned: int = Field(description="samples the answer left out, counted as singletons")
    n_unverified: int = Field(description="clusters with no verdict, counted as valid")


def score_round(
    k: int, clusters: Sequence[ProposedCluster], verdicts: Sequence[ClusterVerdict] | None
) -> RoundScore:
    """Score one round of K samples: C clusters, S = K / C, ratio C / S (Chen et al. 2024, sec. 2.1).

    Applies the counting rules of the module docstring. ``verdicts=None`` means no verification
    (every cluster valid), the paper's "w/o verification" ablation.

    Raises:
        MalformedAnswer: index outside 1..k, a sample in two clusters, a repeated cluster id,
            or no cluster at all.
    """
    if not clusters:
        raise MalformedAnswer("the answer has no clusters")
    owner: dict[int, int] = {}
    ids: set[int] = set()
    for cluster in clusters:
        if cluster.cluster_id in ids:
            raise MalformedAnswer(f"cluster id {cluster.cluster_id} appears twice")
        ids.add(cluster.cluster_id)
        for index in cluster.sample_indices:
            if not 1 <= index <= k:
                raise MalformedAnswer(f"cluster {cluster.cluster_id} has index {index} outside 1..{k}")
            if index in owner:
                raise MalformedAnswer(
                    f"sample {index} is in clusters {owner[index]} and {cluster.cluster_id}"
                )
            owner[index] = cluster.cluster_id
    valid = {v.cluster_id: v.valid for v in verdicts} if verdicts is not None else {}
    n_clusters = n_invalid = n_unverified = 0
    for cluster in clusters:
        size = len(set(cluster.sample_indices))
        if size == 0:
            continue
        if verdicts is not None and size > 1 and cluster.cluster_id not in valid:
            n_unverified += 1
        if size > 1 and valid.get(cluster.cluster_id, True) is False:
            n_invalid += 1
            n_clusters += size
        else:
            n_clusters += 1
    n_unassigned = k - len(owner)
    n_clusters += n_unassigned
    mean_size = k / n_clusters
    return RoundScore(
        n_samples=k,
        n_clusters=n_clusters,
        mean_cluster_size=mean_size,
        ratio=n_clusters / mean_size,
        n_invalid=n_invalid,
        n_unassigned=n_unassigned,
        n_unverified=n_unverified,
    )


class LMUsage(BaseModel):
    """Billed LM tokens (cache hits excluded). ``cost_usd`` is None when LiteLLM has no price."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0

    def add(self, other: LMUsage) -> LMUsage:
        """Sum of two usages (unknown cost stays unknown)."""
        cost = None if self.cost_usd is None or other.cost_usd is None else self.cost_usd + other.cost_usd
        return LMUsage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost_usd=cost,
        )


class UsageMeter:
    """Accumulates the billed usage of the DSPy calls made inside :meth:`track` blocks.

    Each block opens its own ``dspy.track_usage()`` tracker, so the count is right on any thread
    (``dspy.Parallel`` gives worker threads a copy of the caller's tracker, which is discarded)
    and includes calls whose answer then failed to parse.
    """

    def __init__(self) -> None:
        self.usage = LMUsage()

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        """Count the calls made inside the block."""
        with dspy.track_usage() as tracker:
            try:
                yield
            finally:
                self.usage = self.usage.add(usage_from_tokens(tracker.get_total_tokens()))


def usage_from_tokens(tokens: dict[str, dict[str, Any]]) -> LMUsage:
    """:class:`LMUsage` from DSPy's ``{model: {prompt_tokens, completion_tokens, ...}}``.

    Cost comes from LiteLLM's price table for the model name (``litellm.cost_per_token``);
    models it does not know (``sim/...``, local servers) give ``cost_usd=None``.
    """
    total = LMUsage()
    for model, usage in tokens.items():
        if not usage:
            continue
        prompt = int(usage.get("prompt_tokens") or 0)
        completion = int(usage.get("completion_tokens") or 0)
        cost = token_cost(model, prompt, completion)
        total = total.add(LMUsage(prompt_tokens=prompt, completion_tokens=completion, cost_usd=cost))
    return total


def _indexed(texts: Sequence[str]) -> dict[int, str]:
    return {i: t for i, t in enumerate(texts, 1)}


RETRY_TEMPERATURE = 1.0
"""Temperature of a retried round when the judge runs greedily (a new sample needs one above 0)."""


def _rollout_config(lm: Any, rollout_id: int | None, fresh: bool = False) -> dict[str, Any]:
    """``rollout_id`` asks DSPy for a distinct sample; it only matters when temperature > 0, so a
    ``fresh`` request (a retry) of a greedy judge also raises the temperature to
    :data:`RETRY_TEMPERATURE`."""
    temperature = getattr(lm, "kwargs", {}).get("temperature") if lm is not None else None
    if rollout_id is None:
        return {}
    if temperature == 0:
        return {"rollout_id": rollout_id, "temperature": RETRY_TEMPERATURE} if fresh else {}
    return {"rollout_id": rollout_id}


def sample_indices(n: int, size: int, seed: int, stream: int, round_index: int) -> list[int]:
    """Indices of the texts shown in one round, drawn without replacement.

    The draw depends only on (seed, stream, round_index), so a re-run, or an adaptive run that
    adds rounds, re-issues identical requests and DSPy's cache answers them for free.

    Raises:
        ValueError: ``size`` exceeds ``n``.
    """
    if size > n:
        raise ValueError(f"a round needs {size} samples but the corpus has only {n}")
    rng = np.random.default_rng([seed, stream, round_index])
    return sorted(int(i) for i in rng.choice(n, size=size, replace=False))


class RoundRecord(BaseModel):
    """One clustering round, as saved for inspection."""

    round: int
    sample_ids: list[int] = Field(description="0-based indices of the texts in the corpus")
    clusters: list[ProposedCluster] = Field(default_factory=list)
    verdicts: list[ClusterVerdict] | None = None
    score: RoundScore | None = None
    skipped: str | None = Field(default=None, description="why the round was not scored")
    usage: LMUsage = Field(default_factory=LMUsage)


def _reason(exc: Exception) -> str:
    text = re.sub(r"\s+", " ", str(exc)).strip()
    return f"{type(exc).__name__}: {text[:300]}"


class ClusterRound(dspy.Module):
    """One clustering round: cluster K texts under the criteria, then verify the clusters.

    ``forward(criteria, texts, rollout_id=None, fresh=False)`` returns a ``dspy.Prediction`` with
    ``clusters``, ``verdicts`` (None without verification), ``score`` (:class:`RoundScore` or
    None), ``skipped`` (reason or None) and ``usage`` (:class:`LMUsage`).
    It never raises for a bad LM answer: the round is marked skipped.
    """

    def __init__(self, verify: bool = True):
        super().__init__()
        self.verify_clusters = verify
        self.cluster = dspy.Predict(ClusterSamples)
        self.verify = dspy.Predict(VerifyClusters)

    def forward(self, criteria: str, texts: list[str], rollout_id: int | None = None,
                fresh: bool = False) -> dspy.Prediction:
        samples = _indexed(texts)
        config = _rollout_config(dspy.settings.lm, rollout_id, fresh)
        clusters: list[ProposedCluster] = []
        verdicts: list[ClusterVerdict] | None = None
        meter = UsageMeter()
        try:
            with meter.track():
                clusters = list(self.cluster(criteria=criteria, samples=samples, config=config).clusters)
            if self.verify_clusters:
                with meter.track():
                    check = self.verify(samples=samples, clusters=clusters, config=config)
                verdicts = list(check.verdicts)
            score, skipped = score_round(len(texts), clusters, verdicts), None
        except Exception as exc:  # a bad answer or a failed call skips the round, never the run
            score, skipped = None, _reason(exc)
        return dspy.Prediction(clusters=clusters, verdicts=verdicts, score=score, skipped=skipped,
                               usage=meter.usage)


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


class ClusterAgentConfig(BaseModel):
    """Parameters of the cluster-agent; the paper's values (Chen et al. 2024) are the defaults.

    Attributes:
        criteria_samples: J, samples shown per criteria round (paper 5).
        criteria_rounds: M, criteria rounds (paper 100).
        n_criteria: k, metadata and metrics kept each (paper: the top few; 5 here).
        max_candidates: proposals passed to each merge call, most frequent first.
        k_samples: K, samples per clustering round (paper 10).
        cluster_rounds: N, clustering rounds, the maximum in adaptive mode (paper 5000).
        verify: run self-verification (paper yes).
        adaptive_tol: stop once the bootstrap interval's half-width is at most this; None runs
            all N rounds.
        min_rounds: scored rounds needed before the adaptive stop may trigger.
        chunk_rounds: rounds launched between two adaptive checks.
        confidence: level of the bootstrap interval.
        n_resamples: bootstrap resamples.
        seed: seeds every round's sample draw and the bootstrap.
        num_threads: concurrent LM calls.
    """

    criteria_samples: int = Field(5, ge=1)
    criteria_rounds: int = Field(100, ge=1)
    n_criteria: int = Field(5, ge=1)
    max_candidates: int = Field(30, ge=1)
    k_samples: int = Field(10, ge=2)
    cluster_rounds: int = Field(5000, ge=1)
    verify: bool = True
    adaptive_tol: float | None = Field(None, gt=0)
    min_rounds: int = Field(30, ge=2)
    chunk_rounds: int = Field(50, ge=1)
    confidence: float = Field(0.95, gt=0, lt=1)
    n_resamples: int = Field(2000, ge=100)
    seed: int = 0
    num_threads: int = Field(8, ge=1)


class Interval(BaseModel):
    """Mean of per-round ratios with a percentile-bootstrap confidence interval."""

    mean: float
    low: float
    high: float
    half_width: float
    n: int


def bootstrap_interval(values: Sequence[float], confidence: float = 0.95, n_resamples: int = 2000,
                       seed: int = 0) -> Interval:
    """Percentile-bootstrap interval of the mean of ``values`` (resampling rounds with replacement).

    Uses ``scipy.stats.bootstrap``. The paper instead repeats the whole measure on 10 data
    subsamples and reports mean +/- error (Chen et al. 2024, sec. 3.2); resampling rounds gives
    the same kind of error bar without re-running the LM. ``half_width`` is (high - low) / 2.
    With fewer than two values the bounds are NaN and the half-width infinite; with identical
    values the interval is a point.

    Raises:
        ValueError: empty ``values``.
    """
    from scipy.stats import bootstrap

    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("bootstrap_interval needs at least one value")
    mean = float(data.mean())
    if data.size < 2:
        return Interval(mean=mean, low=math.nan, high=math.nan, half_width=math.inf, n=1)
    if np.ptp(data) == 0:
        return Interval(mean=mean, low=mean, high=mean, half_width=0.0, n=int(data.size))
    result = bootstrap((data,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                       method="percentile", random_state=np.random.default_rng(seed))
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return Interval(mean=mean, low=low, high=high, half_width=(high - low) / 2, n=int(data.size))


class CriteriaGenerator(dspy.Module):
    """Criteria step (Chen et al. 2024, sec. 2.1): propose over M rounds, merge, condense.

    ``forward(texts, config)`` returns a ``dspy.Prediction`` with ``criteria``
    (:class:`DiversityCriteria`), ``skipped`` (list of (round, reason)) and ``usage``
    (:class:`LMUsage` of all its calls).

    Raises:
        RuntimeError: every proposal round failed, or a merge or condense call failed (the
            message carries the reasons).
    """

    def __init__(self) -> None:
        super().__init__()
        self.propose = dspy.Predict(ProposeCriteria)
        self.merge_metadata = dspy.Predict(MergeMetadata)
        self.merge_metrics = dspy.Predict(MergeMetrics)
        self.condense = dspy.Predict(CondenseCriteria)

    def _propose_round(self, samples: dict[int, str], rollout_id: int) -> dspy.Prediction:
        config = _rollout_config(dspy.settings.lm, rollout_id)
        meter = UsageMeter()
        try:
            with meter.track():
                pred = self.propose(samples=samples, config=config)
            return dspy.Prediction(metadata=pred.metadata, metrics=pred.metrics, usage=meter.usage)
        except Exception as exc:  # a bad answer skips the round
            return dspy.Prediction(skipped=_reason(exc), usage=meter.usage)

    def forward(self, texts: Sequence[str], config: ClusterAgentConfig) -> dspy.Prediction:
        j = min(config.criteria_samples, len(texts))
        jobs = []
        for r in range(config.criteria_rounds):
            ids = sample_indices(len(texts), j, config.seed, CRITERIA_STREAM, r)
            samples = _indexed([texts[i] for i in ids])
            jobs.append((self._propose_round, {"samples": samples, "rollout_id": r}))
        preds = _run_parallel(jobs, config.num_threads)
        skipped = [(r, p.get("skipped", "no answer") if p else "no answer")
                   for r, p in enumerate(preds) if p is None or p.get("skipped")]
        ok = [p for p in preds if p is not None and not p.get("skipped")]
        if not ok:
            reasons = "; ".join(f"round {r}: {why}" for r, why in skipped[:3])
            raise RuntimeError(f"all {config.criteria_rounds} criteria rounds failed ({reasons})")
        meta = gather_proposals([d for p in ok for d in p.metadata], config.max_candidates)
        metrics = gather_proposals([d for p in ok for d in p.metrics], config.max_candidates)
        meter = UsageMeter()
        for pred in preds:
            if pred is not None:
                meter.usage = meter.usage.add(pred.usage)
        try:
            with meter.track():
                merged_meta = self.merge_metadata(proposals=meta, k=config.n_criteria)
                merged_metrics = self.merge_metrics(proposals=metrics, k=config.n_criteria)
                condensed = self.condense(metadata=merged_meta.merged, metrics=merged_metrics.merged)
        except Exception as exc:
            raise RuntimeError(f"merging the criteria failed: {_reason(exc)}") from exc
        criteria = _final_criteria(merged_meta.merged, merged_metrics.merged, condensed.criteria)
        lm = dspy.settings.lm
        provenance = {
            "J": j, "M": config.criteria_rounds, "k": config.n_criteria, "seed": config.seed,
            "lm": getattr(lm, "model", str(lm)), "rounds_used": len(ok), "rounds_skipped": len(skipped),
            "proposal_counts": {"metadata": {k: len(v) for k, v in meta.items()},
                                "metrics": {k: len(v) for k, v in metrics.items()}},
        }
        return dspy.Prediction(criteria=DiversityCriteria(criteria=tuple(criteria), provenance=provenance),
                               skipped=skipped, usage=meter.usage)


def _normalize_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def gather_proposals(drafts: Sequence[CriterionDraft], max_candidates: int) -> dict[str, list[str]]:
    """Group proposals by normalized name (lower-case, non-alphanumerics to ``_``).

    Returns:
        name -> its definitions, the ``max_candidates`` most frequent names first (ties by
        first appearance), the input of the merge step.
    """
    groups: dict[str, list[str]] = {}
    for draft in drafts:
        key = _normalize_name(draft.name)
        if key:
            groups.setdefault(key, []).append(draft.definition)
    ranked = sorted(groups, key=lambda k: -len(groups[k]))[:max_candidates]
    return {k: groups[k] for k in ranked}


def _final_criteria(meta: Sequence[CriterionDraft], metrics: Sequence[CriterionDraft],
                    condensed: Sequence[Criterion]) -> list[Criterion]:
    """One criterion per merged item: its condensed sentence, or its merged definition if the
    condense answer skipped it."""
    sentences = {_normalize_name(c.name): c.definition for c in condensed}
    out = []
    for kind, items in (("metadata", meta), ("metric", metrics)):
        for item in items:
            sentence = sentences.get(_normalize_name(item.name), item.definition)
            out.append(Criterion(name=item.name, kind=kind, definition=sentence))
    return out


def _run_parallel(jobs: list[tuple[Any, dict[str, Any]]], num_threads: int) -> list[Any]:
    """Run (callable, kwargs) jobs on ``dspy.Parallel`` threads (DSPy settings propagate)."""
    if not jobs:
        return []
    quiet = len(jobs) < 2 or not sys.stderr.isatty()  # piped output: no carriage-return progress lines
    parallel = dspy.Parallel(num_threads=num_threads, max_errors=len(jobs) + 1, timeout=600,
                             disable_progress_bar=quiet)
    return parallel(jobs)


class ClusterAgentResult(BaseModel):
    """Outcome of :func:`run_cluster_agent`: the score, its interval and everything behind it."""

    score: float | None = Field(description="D = mean of C_i / S_i over scored rounds")
    interval: Interval | None
    rounds_requested: int
    rounds_run: int
    rounds_scored: int
    stopped_early: bool
    skipped: list[tuple[int, str]]
    usage: LMUsage
    criteria_usage: LMUsage
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
) -> ClusterAgentResult:
    """Measure the LLM cluster score D of ``texts`` (Chen et al. 2024, sec. 2.1).

    Args:
        texts: the corpus (at least K texts).
        lm: any DSPy LM (None: the one in ``dspy.settings``). Calls run on ``config.num_threads``
            threads; DSPy's cache answers repeated requests, so a re-run costs nothing.
        config: parameters (default: the paper's).
        criteria: frozen criteria to reuse; None generates them first (M more LM calls).

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
        criteria_usage = LMUsage()
        if criteria is None:
            made = CriteriaGenerator()(texts=texts, config=config)
            criteria, criteria_usage = made.criteria, made.usage
        prompt = criteria.prompt_text()
        module = ClusterRound(verify=config.verify)
        records: list[RoundRecord] = []
        interval: Interval | None = None
        stopped_early = False
        while len(records) < config.cluster_rounds:
            start = len(records)
            stop = min(config.cluster_rounds, start + config.chunk_rounds)
            jobs, draws = [], []
            for r in range(start, stop):
                ids = sample_indices(len(texts), config.k_samples, config.seed, CLUSTER_STREAM, r)
                draws.append(ids)
                jobs.append((module, {"criteria": prompt, "texts": [texts[i] for i in ids], "rollout_id": r}))
            for r, ids, pred in zip(range(start, stop), draws, _run_parallel(jobs, config.num_threads),
                                    strict=True):
                records.append(_record(r, ids, pred))
            ratios = [rec.score.ratio for rec in records if rec.score is not None]
            if ratios:
                interval = bootstrap_interval(ratios, config.confidence, config.n_resamples, config.seed)
            if (config.adaptive_tol is not None and interval is not None and len(ratios) >= config.min_rounds
                    and interval.half_width <= config.adaptive_tol):
                stopped_early = len(records) < config.cluster_rounds
                break
    usage = LMUsage()
    for rec in records:
        usage = usage.add(rec.usage)
    scored = [rec for rec in records if rec.score is not None]
    return ClusterAgentResult(
        score=interval.mean if interval else None,
        interval=interval,
        rounds_requested=config.cluster_rounds,
        rounds_run=len(records),
        rounds_scored=len(scored),
        stopped_early=stopped_early,
        skipped=[(rec.round, rec.skipped) for rec in records if rec.skipped],
        usage=usage,
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

