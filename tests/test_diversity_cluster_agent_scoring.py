"""The cluster-agent's arithmetic and verification rules on hand-built answers (C^2/K, invalid clusters
dissolved, malformed answers), its bootstrap interval, seeded sample draws, proposal ranking and frozen
criteria."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from cluster_agent_helpers import CRITERIA

from synthdspy.configio import ConfigError
from synthdspy.metrics.diversity.cluster_agent import DiversityCriteria, bootstrap_interval
from synthdspy.metrics.diversity.criteria import gather_proposals
from synthdspy.metrics.diversity.rounds import MalformedAnswer, sample_indices, score_round
from synthdspy.signatures.diversity import ClusterVerdict, CriterionDraft, ProposedCluster


def clusters(*groups: list[int]) -> list[ProposedCluster]:
    return [
        ProposedCluster(cluster_id=i, sample_indices=g, uniqueness_reasoning="r")
        for i, g in enumerate(groups, 1)
    ]


def verdicts(**valid: bool) -> list[ClusterVerdict]:
    return [ClusterVerdict(cluster_id=int(k[1:]), valid=v) for k, v in valid.items()]


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
