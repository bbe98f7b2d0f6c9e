"""Typed signatures of the LLM cluster-agent (Chen et al. 2024, sec. 2.1 and appendix D).

Five steps, five signatures: propose criteria from a few samples, merge the proposals into k
metadata and k metrics (two signatures, since metrics carry 1-5 scoring rules), condense each
into one sentence, cluster K samples, and verify the clusters. Samples are shown to the LM as a
mapping from 1-based index to text; every index in an answer refers to that numbering.
The instructions are our own wording; optimizers may rewrite them.
"""

from __future__ import annotations

import dspy
from pydantic import BaseModel, Field


class CriterionDraft(BaseModel):
    """One proposed metadata attribute or metric: a short name and its definition."""

    name: str = Field(description="short snake_case name")
    definition: str = Field(description="what it captures; for a metric, what scores 1 to 5 mean")


class Criterion(BaseModel):
    """One clustering criterion as shown to the clustering step."""

    name: str
    kind: str = Field(description="'metadata' or 'metric'")
    definition: str = Field(description="one sentence telling how to group texts by it")


class MetricScore(BaseModel):
    """A cluster's score on one metric."""

    metric: str
    score: int = Field(description="1 (lowest) to 5 (highest)")
    reasoning: str = ""


class ProposedCluster(BaseModel):
    """One cluster in a clustering answer."""

    cluster_id: int
    sample_indices: list[int] = Field(description="1-based indices of the samples in this cluster")
    uniqueness_reasoning: str = Field(description="what sets this group apart from the other clusters")
    metadata: dict[str, str] = Field(default_factory=dict, description="metadata name -> value for the group")
    metric_scores: list[MetricScore] = Field(default_factory=list)


class ClusterVerdict(BaseModel):
    """The verifier's judgement of one cluster."""

    cluster_id: int
    valid: bool
    reasoning: str = ""


class ProposeCriteria(dspy.Signature):
    """Before measuring how diverse a text corpus is by clustering it, decide what to cluster on.
    Read the sampled texts and propose 3-5 metadata attributes (categorical properties such as
    subject area, genre or purpose, possibly with nested levels) and 3-5 metrics (properties a text
    can be scored on from 1 to 5, each with what every score means). Prefer specific attributes that
    separate these texts well over generic ones such as length or quality."""

    samples: dict[int, str] = dspy.InputField(desc="randomly sampled texts from the corpus, by index")
    metadata: list[CriterionDraft] = dspy.OutputField(desc="3-5 metadata attributes")
    metrics: list[CriterionDraft] = dspy.OutputField(desc="3-5 metrics with 1-5 scoring rules")


class MergeMetadata(dspy.Signature):
    """Several rounds of reading corpus samples proposed metadata attributes for clustering; the
    same attribute may appear under different names. Group the proposals by meaning, keep the k most
    useful for telling clusters apart (favour the ones proposed most often), and write for each one a
    concrete definition, with nested levels (level1/level2/...) where they help."""

    proposals: dict[str, list[str]] = dspy.InputField(desc="proposed name -> its definitions across rounds")
    k: int = dspy.InputField(desc="how many attributes to return")
    merged: list[CriterionDraft] = dspy.OutputField(desc="exactly k metadata attributes")


class MergeMetrics(dspy.Signature):
    """Several rounds of reading corpus samples proposed metrics for clustering and scoring texts;
    the same metric may appear under different names. Group the proposals by meaning, keep the k most
    useful for telling clusters apart (favour the ones proposed most often), and write for each one a
    concrete definition with what each score from 1 to 5 means."""

    proposals: dict[str, list[str]] = dspy.InputField(desc="proposed name -> its definitions across rounds")
    k: int = dspy.InputField(desc="how many metrics to return")
    merged: list[CriterionDraft] = dspy.OutputField(desc="exactly k metrics with 1-5 scoring rules")


class CondenseCriteria(dspy.Signature):
    """Turn each metadata attribute and metric into a single sentence that tells a reader how to
    group texts by it. Keep every name unchanged and return one criterion per input."""

    metadata: list[CriterionDraft] = dspy.InputField()
    metrics: list[CriterionDraft] = dspy.InputField()
    criteria: list[Criterion] = dspy.OutputField(
        desc="one per input, same names; kind 'metadata' or 'metric'"
    )


class ClusterSamples(dspy.Signature):
    """Measure how diverse these randomly drawn texts are by grouping them into clusters according to
    the criteria. Texts that share their metadata values and score alike on the metrics belong
    together; a text unlike all others is a cluster of its own. Place every sample in exactly one
    cluster, explain what makes each cluster distinct from the others, and give its metadata values
    and metric scores."""

    criteria: str = dspy.InputField(desc="numbered clustering criteria")
    samples: dict[int, str] = dspy.InputField(desc="the texts to cluster, by 1-based index")
    clusters: list[ProposedCluster] = dspy.OutputField(desc="each sample index in exactly one cluster")


class VerifyClusters(dspy.Signature):
    """Check a proposed clustering of texts. For each cluster, decide from the texts themselves and
    the cluster's stated reasoning whether its members really belong together (same topic, purpose
    or style as claimed). Mark a cluster invalid when its members differ in substance. A cluster of
    a single sample is always valid."""

    samples: dict[int, str] = dspy.InputField(desc="the texts, by 1-based index")
    clusters: list[ProposedCluster] = dspy.InputField()
    verdicts: list[ClusterVerdict] = dspy.OutputField(desc="one verdict per cluster_id")
