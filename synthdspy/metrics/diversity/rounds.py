"""One clustering round of the LLM cluster-agent (Chen et al. 2024, sec. 2.1, appendix B.2): the
seeded draw of its samples, the cluster-then-verify LM calls, and the counting of its clusters.

Counting rules of one round (our decisions; the paper only says that verification removes
unreasonable clusters):

- a cluster the verifier marks invalid is dissolved: each of its samples becomes a singleton;
- singletons are always valid, whatever the verifier says;
- a sample the clustering answer leaves out is a singleton;
- a cluster with no verdict stands (counted as valid, reported as ``unverified``);
- an index outside 1..K, a sample placed in two clusters, a repeated cluster id or an answer with
  no cluster makes the round malformed: it is skipped and its reason recorded;
- a failed LM call or an answer that does not parse skips the round the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import dspy
import numpy as np
from pydantic import BaseModel, Field

from synthdspy.signatures.diversity import ClusterSamples, ClusterVerdict, ProposedCluster, VerifyClusters
from synthdspy.usage import RoleUsage, UsageMeter

CRITERIA_STREAM = 0
CLUSTER_STREAM = 1
JUDGE = "judge"
"""The role the cluster-agent's LM calls are billed to."""

RETRY_TEMPERATURE = 1.0
"""Temperature of a retried round when the judge runs greedily (a new sample needs one above 0)."""


class MalformedAnswer(ValueError):
    """A clustering answer that cannot be scored (bad index, sample in two clusters, ...)."""


class RoundScore(BaseModel):
    """The counts of one clustering round after verification."""

    n_samples: int
    n_clusters: int
    mean_cluster_size: float
    ratio: float = Field(description="C / S = n_clusters / mean_cluster_size")
    n_invalid: int = Field(description="clusters of two or more samples dissolved by the verifier")
    n_unassigned: int = Field(description="samples the answer left out, counted as singletons")
    n_unverified: int = Field(description="clusters with no verdict, counted as valid")


def _check_partition(k: int, clusters: Sequence[ProposedCluster]) -> int:
    """The number of samples the clusters assign; raises :class:`MalformedAnswer` (see :func:`score_round`)."""
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
    return len(owner)


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
    assigned = _check_partition(k, clusters)
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
    n_unassigned = k - assigned
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


def indexed(texts: Sequence[str]) -> dict[int, str]:
    """``texts`` numbered from 1, as the LM sees them."""
    return {i: t for i, t in enumerate(texts, 1)}


def rollout_config(lm: Any, rollout_id: int | None, fresh: bool = False) -> dict[str, Any]:
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
    usage: RoleUsage = Field(default_factory=RoleUsage)


def reason(exc: Exception) -> str:
    """``Type: message`` of ``exc`` on one line, cut to 300 characters (why a round was skipped)."""
    text = re.sub(r"\s+", " ", str(exc)).strip()
    return f"{type(exc).__name__}: {text[:300]}"


class ClusterRound(dspy.Module):
    """One clustering round: cluster K texts under the criteria, then verify the clusters.

    ``forward(criteria, texts, rollout_id=None, fresh=False)`` returns a ``dspy.Prediction`` with
    ``clusters``, ``verdicts`` (None without verification), ``score`` (:class:`RoundScore` or
    None), ``skipped`` (reason or None) and ``usage`` (:class:`~synthdspy.usage.RoleUsage` of its
    calls, billed ones only). It never raises for a bad LM answer: the round is marked skipped.
    """

    def __init__(self, verify: bool = True):
        super().__init__()
        self.verify_clusters = verify
        self.cluster = dspy.Predict(ClusterSamples)
        self.verify = dspy.Predict(VerifyClusters)

    def forward(self, criteria: str, texts: list[str], rollout_id: int | None = None,
                fresh: bool = False) -> dspy.Prediction:
        samples = indexed(texts)
        config = rollout_config(dspy.settings.lm, rollout_id, fresh)
        clusters: list[ProposedCluster] = []
        verdicts: list[ClusterVerdict] | None = None
        meter = UsageMeter()
        try:
            with meter.track(JUDGE):
                clusters = list(self.cluster(criteria=criteria, samples=samples, config=config).clusters)
                if self.verify_clusters:
                    verdicts = list(self.verify(samples=samples, clusters=clusters, config=config).verdicts)
            score, skipped = score_round(len(texts), clusters, verdicts), None
        except Exception as exc:  # a bad answer or a failed call skips the round, never the run
            score, skipped = None, reason(exc)
        return dspy.Prediction(clusters=clusters, verdicts=verdicts, score=score, skipped=skipped,
                               usage=meter.total())
