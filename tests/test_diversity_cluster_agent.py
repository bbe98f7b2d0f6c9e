"""The cluster-agent through DSPy: one round, batch scores and retries, whole runs (criteria, ranking,
saving, caching, skipped rounds, adaptive stopping), driven by a canned LM whose answers are computed
from the prompt (no network, deterministic)."""

from __future__ import annotations

import json
from typing import Any

import dspy
import pytest
from cluster_agent_helpers import CRITERIA, canned_lm, memory_cache, topic_handler  # noqa: F401 (autouse fixture)

from synthdspy.metrics.diversity.cluster_agent import (
    ClusterAgentConfig,
    ClusterBatchScore,
    DiversityCriteria,
    run_cluster_agent,
)
from synthdspy.metrics.diversity.rounds import ClusterRound

# ---- one round through DSPy ----------------------------------------------------------------


def test_round_scores_canned_answer_and_rejects_per_verifier() -> None:
    texts = ["alpha a", "alpha b", "alpha c", "beta a", "beta b", "gamma"]
    lm, _ = canned_lm(topic_handler(invalid_sizes=(3,)))
    with dspy.context(lm=lm):
        pred = ClusterRound()(criteria="1. topic", texts=texts)
    assert pred.skipped is None
    assert pred.score.n_clusters == 3 + 1 + 1 and pred.score.n_invalid == 1
    assert pred.usage.prompt_tokens == 200 and pred.usage.unpriced_calls == pred.usage.calls == 2  # no price: unpriced


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("this is not the expected format", "AdapterParseError"),
        (
            {"clusters": [{"cluster_id": 1, "sample_indices": [1, 7], "uniqueness_reasoning": "x"}]},
            "outside 1..2",
        ),
    ],
)
def test_malformed_round_is_skipped_with_reason(answer: Any, reason: str) -> None:
    lm, _ = canned_lm(lambda task, inputs: answer if task == "cluster" else topic_handler()(task, inputs))
    with dspy.context(lm=lm):
        pred = ClusterRound()(criteria="1. topic", texts=["alpha", "beta"])
    assert pred.score is None and reason in pred.skipped


def test_batch_score_checks_k_and_scores() -> None:
    lm, _ = canned_lm(topic_handler())
    scorer = ClusterBatchScore(CRITERIA, lm=lm, k_samples=4)
    with pytest.raises(ValueError, match="exactly 4"):
        scorer(["a", "b"])
    result = scorer(["x 1", "x 2", "y 1", "z 1"])
    assert result.score == pytest.approx(3 * 3 / 4)
    assert [c.sample_indices for c in result.round.clusters] == [[1, 2], [3], [4]]


def test_scorer_retries_a_failed_round_with_a_fresh_sample_even_from_a_greedy_judge() -> None:
    from synthdspy.metrics.diversity.scorers import ClusterAgentScorer

    seen = {"cluster": 0}

    def first_answer_garbled(task: str, inputs: dict[str, Any]) -> Any:
        if task == "cluster":
            seen["cluster"] += 1
            if seen["cluster"] == 1:
                return "no fields here"
        return topic_handler()(task, inputs)

    lm, _ = canned_lm(first_answer_garbled, temperature=0.0)  # cached: a repeat request replays the garble
    result = ClusterAgentScorer(CRITERIA, lm=lm)(["x 1", "x 2", "y 1", "z 1"])
    assert result.raw == pytest.approx(3 * 3 / 4)


# ---- whole runs ------------------------------------------------------------------------------


def corpus(n_topics: int, size: int = 60) -> list[str]:
    return [f"topic{i % n_topics} text number {i}" for i in range(size)]


def test_run_generates_criteria_ranks_corpora_and_saves(tmp_path: Any) -> None:
    config = ClusterAgentConfig(criteria_rounds=4, cluster_rounds=20, k_samples=10, num_threads=2)
    lm, _ = canned_lm(topic_handler())
    narrow = run_cluster_agent(corpus(2), lm=lm, config=config)
    broad = run_cluster_agent(corpus(30), lm=lm, config=config)
    assert narrow.score == pytest.approx(0.4)  # every draw of 10 from 2 topics: C=2, C^2/K=0.4
    assert broad.score > 4 * narrow.score
    names = [c.name for c in narrow.criteria.criteria]
    assert names == ["topic", "register", "length"]
    # the condense answer skipped the last item: it keeps its merged definition
    assert narrow.criteria.criteria[-1].definition == "merged length"
    assert narrow.criteria.provenance["rounds_used"] == 4
    out = narrow.save(tmp_path / "agent")
    rounds = [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]
    assert len(rounds) == 20 and rounds[0]["clusters"][0]["uniqueness_reasoning"].startswith("all ")
    assert DiversityCriteria.load(out / "criteria.json") == narrow.criteria
    assert json.loads((out / "summary.json").read_text())["rounds_scored"] == 20


def test_rerun_is_answered_by_the_cache() -> None:
    config = ClusterAgentConfig(criteria_rounds=3, cluster_rounds=8, k_samples=5, num_threads=2)
    lm, engine = canned_lm(topic_handler(), model="openai/gpt-4o-mini", temperature=1.0)
    first = run_cluster_agent(corpus(5), lm=lm, config=config)
    calls = engine.calls
    again = run_cluster_agent(corpus(5), lm=lm, config=config)
    assert calls == 3 + 3 + 8 * 2  # propose x3, merge x2 + condense, cluster+verify x8
    assert (
        engine.calls == calls and again.usage.prompt_tokens == 0 and again.criteria_usage.prompt_tokens == 0
    )
    assert again.score == first.score
    assert first.usage.prompt_tokens == 1600 and first.criteria_usage.prompt_tokens == 600
    assert first.usage.cost_usd is not None and first.usage.cost_usd > 0


def test_skipped_rounds_are_recorded_not_fatal() -> None:
    def handler(task: str, inputs: dict[str, Any]) -> Any:
        if task == "cluster" and "topic0" in json.dumps(inputs["samples"]):
            return "garbled"
        return topic_handler()(task, inputs)

    config = ClusterAgentConfig(cluster_rounds=12, k_samples=3, num_threads=2)
    lm, _ = canned_lm(handler)
    result = run_cluster_agent(corpus(8, 40), lm=lm, config=config, criteria=CRITERIA)
    assert 0 < len(result.skipped) < 12
    assert result.rounds_scored == 12 - len(result.skipped)
    assert all("Error" in why for _, why in result.skipped)


def test_adaptive_mode_stops_once_interval_is_tight() -> None:
    lm, _ = canned_lm(topic_handler())
    steady = ClusterAgentConfig(
        cluster_rounds=500, k_samples=5, adaptive_tol=0.01, min_rounds=20, chunk_rounds=10, num_threads=2
    )
    result = run_cluster_agent(corpus(1, 30), lm=lm, config=steady, criteria=CRITERIA)
    assert result.stopped_early and result.rounds_run == 20 and result.interval.half_width == 0
    noisy = steady.model_copy(update={"adaptive_tol": 0.15, "cluster_rounds": 400})
    loose = run_cluster_agent(corpus(6, 60), lm=lm, config=noisy, criteria=CRITERIA)
    assert loose.stopped_early and loose.interval.half_width <= 0.15 and loose.rounds_run < 400
    strict = run_cluster_agent(
        corpus(6, 60), lm=lm, config=noisy.model_copy(update={"adaptive_tol": 1e-6}), criteria=CRITERIA
    )
    assert not strict.stopped_early and strict.rounds_run == 400
    # the adaptive run's rounds are the first rounds of the full run (same seeded draws)
    assert [r.sample_ids for r in loose.rounds] == [r.sample_ids for r in strict.rounds[: loose.rounds_run]]
