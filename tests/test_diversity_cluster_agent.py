"""The cluster-agent's arithmetic, verification rules, malformed answers, bootstrap and caching,
driven by a canned LM whose answers are computed from the prompt (no network, deterministic)."""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable
from typing import Any

import dspy
import numpy as np
import pytest
from dspy.clients.cache import Cache
from dspy.lm15 import Message, Response, TextPart, Usage

from synthdspy.configio import ConfigError
from synthdspy.metrics.diversity.cluster_agent import (
    ClusterAgentConfig,
    ClusterBatchScore,
    DiversityCriteria,
    bootstrap_interval,
    run_cluster_agent,
)
from synthdspy.metrics.diversity.criteria import gather_proposals
from synthdspy.metrics.diversity.rounds import ClusterRound, MalformedAnswer, sample_indices, score_round
from synthdspy.signatures.diversity import ClusterVerdict, Criterion, CriterionDraft, ProposedCluster

Handler = Callable[[str, dict[str, Any]], dict[str, Any]]


class CannedEngine:
    """A DSPy engine answering in ChatAdapter format with fields computed by ``handler``.

    ``handler(task, inputs)`` gets the signature's task ("propose", "merge_metadata",
    "merge_metrics", "condense", "cluster", "verify") and the parsed input fields.
    A handler returning a string sends it verbatim (to test unparseable answers).
    """

    def __init__(self, handler: Handler):
        self.handler = handler
        self.calls = 0
        self.lock = threading.Lock()

    def complete(self, request: Any) -> Response:
        with self.lock:
            self.calls += 1
        system = (
            request.system if isinstance(request.system, str) else "".join(p.text for p in request.system)
        )
        user = request.messages[-1].text
        inputs = {
            name: _parse(value)
            for name, value in re.findall(
                r"\[\[ ## (\w+) ## \]\]\n(.*?)(?=\n\n(?:\[\[ ## |Respond with)|\Z)", user, flags=re.S
            )
        }
        answer = self.handler(_task(system), inputs)
        if isinstance(answer, str):
            text = answer
        else:
            text = "".join(f"[[ ## {k} ## ]]\n{json.dumps(v)}\n\n" for k, v in answer.items())
            text += "[[ ## completed ## ]]"
        return Response(
            id=None,
            model="canned",
            message=Message.assistant([TextPart(text)]),
            finish_reason="stop",
            usage=Usage(input_tokens=100, output_tokens=10, total_tokens=110),
        )

    def stream(self, request: Any) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _parse(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _task(system: str) -> str:
    outputs = system.split("Your output fields are:")[1].split("All interactions")[0]
    if "`verdicts`" in outputs:
        return "verify"
    if "`clusters`" in outputs:
        return "cluster"
    if "`criteria`" in outputs:
        return "condense"
    if "`merged`" in outputs:
        return "merge_metrics" if "1 to 5" in system.split("objective is:")[1] else "merge_metadata"
    return "propose"


def topic_handler(invalid_sizes: tuple[int, ...] = ()) -> Handler:
    """Clusters samples by their first word; the verifier rejects clusters whose size is listed."""

    def handle(task: str, inputs: dict[str, Any]) -> dict[str, Any]:
        if task == "propose":
            return {
                "metadata": [
                    {"name": "Topic", "definition": "the first word"},
                    {"name": "register", "definition": "formal or not"},
                ],
                "metrics": [{"name": "length", "definition": "1 short .. 5 long"}],
            }
        if task in ("merge_metadata", "merge_metrics"):
            names = list(inputs["proposals"])[: int(inputs["k"])]
            return {"merged": [{"name": n, "definition": f"merged {n}"} for n in names]}
        if task == "condense":
            items = inputs["metadata"] + inputs["metrics"]
            return {
                "criteria": [
                    {"name": it["name"], "kind": "metadata", "definition": f"group by {it['name']}"}
                    for it in items[:-1]
                ]
            }
        if task == "cluster":
            groups: dict[str, list[int]] = {}
            for index, text in inputs["samples"].items():
                groups.setdefault(text.split()[0], []).append(int(index))
            return {
                "clusters": [
                    {
                        "cluster_id": c,
                        "sample_indices": ids,
                        "uniqueness_reasoning": f"all {w}",
                        "metadata": {"topic": w},
                        "metric_scores": [{"metric": "length", "score": 3}],
                    }
                    for c, (w, ids) in enumerate(sorted(groups.items()), 1)
                ]
            }
        return {
            "verdicts": [
                {
                    "cluster_id": c["cluster_id"],
                    "valid": len(c["sample_indices"]) not in invalid_sizes,
                    "reasoning": "checked",
                }
                for c in inputs["clusters"]
            ]
        }

    return handle


@pytest.fixture(autouse=True)
def memory_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setattr(dspy, "cache", Cache(False, True, str(tmp_path / "dspy_cache")))


def canned_lm(handler: Handler, model: str = "canned/test", **kwargs: Any) -> tuple[dspy.LM, CannedEngine]:
    engine = CannedEngine(handler)
    return dspy.LM(model, engine=engine, cache=True, **kwargs), engine


def clusters(*groups: list[int]) -> list[ProposedCluster]:
    return [
        ProposedCluster(cluster_id=i, sample_indices=g, uniqueness_reasoning="r")
        for i, g in enumerate(groups, 1)
    ]


def verdicts(**valid: bool) -> list[ClusterVerdict]:
    return [ClusterVerdict(cluster_id=int(k[1:]), valid=v) for k, v in valid.items()]


CRITERIA = DiversityCriteria(
    criteria=(Criterion(name="topic", kind="metadata", definition="group by topic"),)
)


# ---- scoring arithmetic on hand-built answers -------------------------------------------------


def test_all_valid_round_gives_c_squared_over_k() -> None:
    score = score_round(
        10, clusters([1, 2, 3], [4, 5], [6], [7, 8, 9, 10]), verdicts(c1=True, c2=True, c4=True)
    )
    assert (score.n_clusters, score.mean_cluster_size) == (4, 2.5)
    assert score.ratio == pytest.approx(1.6)


def test_invalid_cluster_dissolves_into_singletons() -> None:
    score = score_round(
        10, clusters([1, 2, 3], [4, 5], [6], [7, 8, 9, 10]), verdicts(c1=False, c2=True, c4=True)
    )
    assert score.n_clusters == 6 and score.n_invalid == 1
    assert score.ratio == pytest.approx(36 / 10)


def test_singleton_marked_invalid_still_counts_once() -> None:
    score = score_round(4, clusters([1, 2], [3], [4]), verdicts(c1=True, c2=False, c3=False))
    assert score.n_clusters == 3 and score.n_invalid == 0


def test_unassigned_samples_become_singletons_and_missing_verdicts_stand() -> None:
    score = score_round(10, clusters([1, 2, 3, 4], [5, 6, 7, 8]), verdicts(c1=True))
    assert score.n_unassigned == 2 and score.n_unverified == 1
    assert score.n_clusters == 4 and score.ratio == pytest.approx(1.6)


def test_without_verification_every_cluster_is_valid() -> None:
    assert score_round(6, clusters([1, 2, 3], [4, 5, 6]), None).n_clusters == 2


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        (([1, 2], [3, 11]), "outside"),
        (([0, 1], [2]), "outside"),
        (([1, 2], [2, 3]), "sample 2"),
        ((), "no clusters"),
    ],
)
def test_malformed_answers_raise(groups: tuple[list[int], ...], message: str) -> None:
    with pytest.raises(MalformedAnswer, match=message):
        score_round(10, clusters(*groups), None)


def test_repeated_cluster_id_is_malformed() -> None:
    dup = [
        ProposedCluster(cluster_id=1, sample_indices=[1], uniqueness_reasoning="a"),
        ProposedCluster(cluster_id=1, sample_indices=[2], uniqueness_reasoning="b"),
    ]
    with pytest.raises(MalformedAnswer, match="twice"):
        score_round(2, dup, None)


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


# ---- helpers ---------------------------------------------------------------------------------


def test_bootstrap_interval_matches_normal_theory() -> None:
    values = np.random.default_rng(1).normal(3.0, 1.0, size=400)
    interval = bootstrap_interval(values, seed=0)
    assert interval.low < values.mean() < interval.high
    assert interval.half_width == pytest.approx(1.96 * values.std() / math.sqrt(400), rel=0.15)
    wider = bootstrap_interval(values[:100], seed=0)
    assert wider.half_width == pytest.approx(2 * interval.half_width, rel=0.3)
    assert bootstrap_interval([2.0, 2.0, 2.0]).half_width == 0
    assert math.isinf(bootstrap_interval([1.0]).half_width)


def test_sample_indices_are_seeded_per_round() -> None:
    assert sample_indices(100, 10, 0, 1, 7) == sample_indices(100, 10, 0, 1, 7)
    assert sample_indices(100, 10, 0, 1, 7) != sample_indices(100, 10, 0, 1, 8)
    assert len(set(sample_indices(100, 10, 0, 1, 7))) == 10
    with pytest.raises(ValueError, match="only 5"):
        sample_indices(5, 10, 0, 1, 0)


def test_gather_proposals_ranks_by_frequency() -> None:
    drafts = [
        CriterionDraft(name=n, definition=d)
        for n, d in [
            ("Tone", "a"),
            ("subject area", "b"),
            ("Subject-Area", "c"),
            ("tone", "d"),
            ("Subject_area", "e"),
        ]
    ]
    assert gather_proposals(drafts, 1) == {"subject_area": ["b", "c", "e"]}


def test_criteria_are_frozen_and_loading_bad_file_names_it(tmp_path: Any) -> None:
    with pytest.raises(ValueError):
        CRITERIA.criteria = ()  # type: ignore[misc]
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ConfigError, match="bad.json: not a saved DiversityCriteria file"):
        DiversityCriteria.load(bad)
