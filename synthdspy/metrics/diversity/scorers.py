"""Set-level diversity scorers for the compile objective, each mapping a batch of texts into [0, 1].

- ``lexical``: Shaib et al. 2024's n-gram diversity score for n = 1..4, divided by 4.
- ``embedding``: the Vendi score (Friedman & Dieng 2023) of the batch's sentence embeddings divided
  by the batch size n (Vendi lies in [1, n]: 1/n when all texts are alike, 1 when all differ).
- ``cluster_agent``: one clustering-and-verification round of the LLM cluster-agent (Chen et al.
  2024, sec. 2.1) over the whole batch against frozen criteria. The round's C/S = C^2/K lies in
  [1/K, K]; divided by K it lies in [1/K^2, 1]. Its feedback names the records the agent grouped
  together and why, for GEPA's reflection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from synthdspy.metrics.diversity.lexical import ngram_diversity_score


@dataclass
class DiversityScore:
    """A batch's diversity in [0, 1], the metric's raw value, and text feedback (may be empty)."""

    value: float
    raw: float | None = None
    feedback: str = ""


class DiversityScorer(Protocol):
    """Scores the diversity of a batch of texts (``len(texts) >= 2``)."""

    name: str

    def __call__(self, texts: Sequence[str]) -> DiversityScore: ...


class LexicalScorer:
    """n-gram diversity (n = 1..4) / 4."""

    name = "lexical"

    def __call__(self, texts: Sequence[str]) -> DiversityScore:
        raw = ngram_diversity_score(list(texts), max_n=4)
        return DiversityScore(min(1.0, raw / 4.0), raw)


class EmbeddingScorer:
    """Vendi score of all-MiniLM-L6-v2 embeddings / n."""

    name = "embedding"

    def __call__(self, texts: Sequence[str]) -> DiversityScore:
        from synthdspy.metrics.diversity.embedding import embed_texts, vendi_score

        raw = vendi_score(embed_texts(list(texts)))
        return DiversityScore(raw / len(texts), raw)


class ClusterAgentScorer:
    """One cluster-agent round over the batch under the judge LM, against frozen criteria.

    A round that fails or whose answer is malformed is retried once with a fresh sample (rollout 1,
    at temperature 1.0 if the judge is greedy); if it fails again the batch scores 0 with the
    reason as feedback.
    """

    name = "cluster_agent"

    def __init__(self, criteria: Any, lm: Any | None = None, verify: bool = True) -> None:
        self.criteria = criteria
        self.lm = lm
        self.verify = verify

    def __call__(self, texts: Sequence[str]) -> DiversityScore:
        from synthdspy.metrics.diversity.cluster_agent import ClusterBatchScore

        scorer = ClusterBatchScore(self.criteria, lm=self.lm, k_samples=len(texts), verify=self.verify)
        result = scorer(texts)
        if result.score is None:
            result = scorer(texts, rollout_id=1, fresh=True)
        if result.score is None:
            return DiversityScore(0.0, None, f"The diversity judge could not score this batch: {result.round.skipped}")
        k = len(texts)
        return DiversityScore(result.score / k, result.score, cluster_feedback(result.round))


def cluster_feedback(round_record: Any) -> str:
    """Sentences naming the records the cluster-agent grouped together, with its reasoning."""
    valid = {v.cluster_id: v.valid for v in (round_record.verdicts or [])}
    lines = []
    for cluster in round_record.clusters or []:
        if len(cluster.sample_indices) > 1 and valid.get(cluster.cluster_id, True):
            ids = ", ".join(str(i) for i in cluster.sample_indices)
            lines.append(f"Records {ids} are alike: {cluster.uniqueness_reasoning}")
    if not lines:
        return "Every record in the batch stood apart from the others."
    return "Too similar (vary them): " + " ".join(lines)


def make_scorer(name: str, **kwargs: Any) -> DiversityScorer:
    """The scorer registered as ``name``.

    Raises:
        KeyError: unknown name.
    """
    table = {"lexical": LexicalScorer, "embedding": EmbeddingScorer, "cluster_agent": ClusterAgentScorer}
    if name not in table:
        raise KeyError(f"unknown diversity metric {name!r}; known: {sorted(table)}")
    return table[name](**kwargs)
