"""Grouping requests: the simulator answering the cluster-agent's criteria, clustering and
verification steps, and the cluster-agent run end to end on it."""

import json
from pathlib import Path

import dspy
import pytest
from simulator_helpers import ADAPTERS, memory_cache  # noqa: F401 (autouse fixture)

from synthdspy.metrics.diversity.cluster_agent import ClusterAgentConfig, run_cluster_agent
from synthdspy.signatures.diversity import (
    ClusterSamples,
    CondenseCriteria,
    MergeMetadata,
    MergeMetrics,
    ProposeCriteria,
    ProposedCluster,
    VerifyClusters,
)
from synthdspy.simulator import SimLM, similarity, split_sentences

TEMPLATE = (
    "Dear {name}, thank you for your order of {item}. Your package leaves our warehouse today and "
    "should arrive by {day}. Best regards, the shop team."
)
NEAR_DUPLICATES = [
    TEMPLATE.format(name=n, item=i, day=d)
    for n, i, d in zip(
        ["Ann", "Bo", "Cy", "Di", "Ed", "Flo", "Gus", "Hal", "Ida", "Jo"],
        ["socks", "a lamp", "tea", "two mugs", "a kettle", "paint", "a rug", "soap", "pens", "a clock"],
        ["Monday", "Tuesday", "Friday", "Monday", "Sunday", "Friday", "Tuesday", "Monday", "Sunday", "Friday"],
        strict=True,
    )
]
DIVERSE_TEXTS = [
    "Honeybees tell nestmates where flowers are by dancing; the angle of the waggle run points the way.",
    "The Treaty of Westphalia in 1648 ended the Thirty Years' War and reshaped European borders.",
    "def mean(xs):\n    return sum(xs) / len(xs)\n\nprint(mean([1, 2, 3]))",
    "Whisk two eggs with sugar until pale, fold in the flour, and bake for twenty minutes.",
    "Hey! Can't make it tonight, my car broke down again. Rain check for Saturday?",
    "Photosynthesis converts light, water and carbon dioxide into glucose and oxygen in chloroplasts.",
    "1. Open the valve\n2. Bleed the radiator\n3. Close the valve once water appears",
    "The striker scored twice in the second half, sealing a comeback that stunned the home crowd.",
    "Interest rates rose by a quarter point as the central bank tried to cool persistent inflation.",
    "Glaciers in the Alps have lost more than half of their volume since the nineteenth century.",
]
CRITERIA_TEXT = (
    "1. topic (metadata): the subject\n2. format (metadata): the form\n"
    "3. length (metric): 1 short to 5 long\n4. repetitiveness (metric): 1 none to 5 mostly repeated"
)


def indexed(texts: list[str]) -> dict[int, str]:
    return {i: t for i, t in enumerate(texts, 1)}


def cluster(samples: dict[int, str], adapter, rollout_id: int = 0):
    with dspy.context(lm=SimLM(), adapter=adapter):
        program = dspy.Predict(ClusterSamples)
        return program(criteria=CRITERIA_TEXT, samples=samples, config={"rollout_id": rollout_id}).clusters


def test_similarity_sees_topics_templates_and_form():
    assert similarity(NEAR_DUPLICATES[0], NEAR_DUPLICATES[1]) >= 0.5
    unrelated = [similarity(a, b) for n, a in enumerate(DIVERSE_TEXTS) for b in DIVERSE_TEXTS[n + 1 :]]
    assert max(unrelated) < 0.3
    io_a = "Sure.\nInput: a cat\nOutput: un chat\nInput: a dog\nOutput: un chien"
    io_b = "Here you go.\nInput: the sea\nOutput: la mer"
    assert similarity(io_a, io_b) >= 0.3 > similarity(io_a, DIVERSE_TEXTS[0])
    assert similarity("", "") == 1.0 and similarity("", DIVERSE_TEXTS[0]) == 0.0


@pytest.mark.parametrize("adapter", ADAPTERS, ids=["chat", "json"])
def test_clustering_partitions_samples_by_similarity(adapter):
    counts = {}
    for label, texts in (("dup", NEAR_DUPLICATES), ("diverse", DIVERSE_TEXTS)):
        clusters = cluster(indexed(texts), adapter)
        members = sorted(i for c in clusters for i in c.sample_indices)
        assert members == list(range(1, 11)), f"{label}: not a partition of 1..10: {members}"
        assert len({c.cluster_id for c in clusters}) == len(clusters)
        for c in clusters:
            assert set(c.metadata) == {"topic", "format"}
            assert [s.metric for s in c.metric_scores] == ["length", "repetitiveness"]
            assert all(1 <= s.score <= 5 for s in c.metric_scores)
        counts[label] = len(clusters)
        if label == "dup":
            biggest = max(clusters, key=lambda c: len(c.sample_indices))
            reason = biggest.uniqueness_reasoning
            assert "share words: dear, thank, order" in reason and "similarity" in reason, reason
    assert counts["dup"] <= 2 and counts["diverse"] >= 8, counts


def test_clustering_length_scores_follow_the_texts():
    short = ["Yes.", "No.", "Maybe.", "Sure.", "Fine."]
    long = [("The committee reviewed " + " ".join(f"item{i}{j}" for j in range(150))) for i in range(5)]
    clusters = cluster(indexed(short + long), ADAPTERS[0])
    for c in clusters:
        length = next(s.score for s in c.metric_scores if s.metric == "length")
        assert length <= 2 if max(c.sample_indices) <= 5 else length >= 4, (c.sample_indices, length)


@pytest.mark.parametrize("adapter", ADAPTERS, ids=["chat", "json"])
def test_verification_rejects_a_wrong_merge(adapter):
    samples = indexed(NEAR_DUPLICATES[:5] + DIVERSE_TEXTS[:5])
    proposed = [
        ProposedCluster(cluster_id=1, sample_indices=[1, 2, 3], uniqueness_reasoning="order notes"),
        ProposedCluster(cluster_id=2, sample_indices=[6, 7, 9], uniqueness_reasoning="all history"),
        ProposedCluster(cluster_id=3, sample_indices=[10], uniqueness_reasoning="a recipe"),
        ProposedCluster(cluster_id=4, sample_indices=[4, 8], uniqueness_reasoning="mixed"),
        ProposedCluster(cluster_id=5, sample_indices=[5, 11], uniqueness_reasoning="out of range"),
    ]
    with dspy.context(lm=SimLM(), adapter=adapter):
        verdicts = dspy.Predict(VerifyClusters)(samples=samples, clusters=proposed).verdicts
    by_id = {v.cluster_id: v for v in verdicts}
    assert {i: v.valid for i, v in by_id.items()} == {1: True, 2: False, 3: True, 4: False, 5: False}
    assert "similarity" in by_id[2].reasoning and "11" in by_id[5].reasoning


@pytest.mark.parametrize("adapter", ADAPTERS, ids=["chat", "json"])
def test_criteria_are_proposed_merged_to_k_and_condensed(adapter):
    with dspy.context(lm=SimLM(), adapter=adapter):
        proposed = dspy.Predict(ProposeCriteria)(samples=indexed(DIVERSE_TEXTS[:5]))
        proposals = {"topic": ["a", "b", "c"], "subject_area": ["d"], "tone": ["e"], "novelty": ["f", "g"]}
        meta = dspy.Predict(MergeMetadata)(proposals=proposals, k=4).merged
        few = dspy.Predict(MergeMetadata)(proposals={"topic": ["a"]}, k=3).merged
        metrics = dspy.Predict(MergeMetrics)(proposals={"length": ["a"], "verbosity": ["b"]}, k=2).merged
        condensed = dspy.Predict(CondenseCriteria)(metadata=meta, metrics=metrics).criteria
    for items in (proposed.metadata, proposed.metrics):
        names = [c.name for c in items]
        assert 3 <= len(names) <= 5 and len(set(names)) == len(names)
    assert "1" in proposed.metrics[0].definition and "5" in proposed.metrics[0].definition
    assert [c.name for c in meta][:2] == ["topic", "novelty"]  # topic + subject_area grouped, then by count
    assert len(meta) == 4 and len(few) == 3 and len({c.name for c in few}) == 3
    assert len(metrics) == 2 and metrics[0].name == "length" and "verbosity" not in [m.name for m in metrics]
    assert [(c.name, c.kind) for c in condensed] == [(c.name, "metadata") for c in meta] + [
        (c.name, "metric") for c in metrics
    ]
    assert all(len(split_sentences(c.definition)) == 1 for c in condensed)


def test_pipeline_cluster_agent_scores_templated_corpus_below_varied_passages(shared_data):
    """Pipeline test: the cluster-agent run end to end on the simulator, whose judge and clustering decide the
    scores with their own word-overlap heuristics; the ordering is decided by those heuristics and is not
    evidence that the cluster-agent measures diversity."""
    path = shared_data(Path(__file__).resolve().parents[2] / "shared" / "data" / "passages" / "passages.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    varied = [json.loads(line)["text"] for line in lines[::120][:30]]
    templated = [
        t.format(x=x)
        for x in ("tea", "rice", "salt", "wool", "iron", "corn", "silk", "milk", "coal", "wine")
        for t in (TEMPLATE.replace("{item}", "{x}").replace("{name}", "Sam").replace("{day}", "Monday"),
                  "Q: What is the price of {x} today? A: The price of {x} rose slightly today.",
                  "Input: buy {x}\nOutput: Added {x} to your basket.")
    ]
    config = ClusterAgentConfig(criteria_rounds=3, cluster_rounds=8, chunk_rounds=8, n_resamples=200,
                                num_threads=2, min_rounds=2)
    results = {name: run_cluster_agent(texts, lm=SimLM(), config=config)
               for name, texts in (("templated", templated), ("varied", varied))}
    for result in results.values():
        assert result.rounds_scored >= 7, result.skipped
    assert results["templated"].score < 2.0 < 8.0 < results["varied"].score, {
        k: r.score for k, r in results.items()
    }
