"""Curriculum: difficulty scores, stage assignment and schedules (no training needed)."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from synthdspy.training.curriculum import (
    CompetenceSchedule,
    CurriculumSpec,
    GradualSchedule,
    StrictSchedule,
    UniformSchedule,
    build_schedule,
    dimension_score,
    pacing_fixed_exponential,
    pacing_linear,
    pacing_root,
    proxy_score,
    stages_by_quantiles,
    stages_by_thresholds,
)
from synthdspy.training.data import assign_stages
from synthdspy.training.documents import Document, SourceError

SCHEDULES = [
    StrictSchedule([0.2, 0.3, 0.5], 100),
    GradualSchedule([0.0, 0.25, 0.5], 0.2, 0.1, 100),
    GradualSchedule([0.0, 0.4, 0.7], 0.1, 0.0, 37),
    CompetenceSchedule([5, 3, 2], 100, lambda s: pacing_linear(s, 0.1, 50)),
    CompetenceSchedule([1, 1, 1], 80, lambda s: pacing_root(s, 0.2, 40)),
    CompetenceSchedule([4, 4, 4], 90, lambda s: pacing_fixed_exponential(s, 0.1, 2.0, 10)),
    UniformSchedule([3, 1, 1], 10),
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
def test_weights_sum_to_one_and_are_non_negative(schedule):
    for step in range(schedule.total_steps + 1):
        w = schedule.weights(step)
        assert len(w) == schedule.n_stages
        assert math.isclose(sum(w), 1.0, abs_tol=1e-9)
        assert min(w) >= 0


def test_strict_stage_boundaries_fall_where_configured():
    s = StrictSchedule([0.2, 0.3, 0.5], 100)
    stages = [s.weights(step).index(1.0) for step in range(100)]
    assert stages == [0] * 20 + [1] * 30 + [2] * 50
    assert s.transitions() == [20, 50]


def test_strict_fractions_must_sum_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        StrictSchedule([0.5, 0.2, 0.2], 10)


def test_gradual_ramps_in_and_keeps_a_share_of_earlier_stages():
    s = GradualSchedule([0.0, 0.25, 0.5], ramp=0.2, keep=0.1, total_steps=1000)
    assert s.weights(100) == [1.0, 0.0, 0.0]  # before stage 2 starts
    mid = s.weights(350)  # t = 0.35: stage 2 half ramped in, stage 1 handing over
    assert mid[0] == pytest.approx(0.5) and mid[1] == pytest.approx(0.5) and mid[2] == 0
    end = s.weights(1000)  # every stage ramped in: the last dominates, earlier ones keep 0.1 each
    assert end == pytest.approx([0.1 / 1.2, 0.1 / 1.2, 1 / 1.2])
    no_keep = GradualSchedule([0.0, 0.25, 0.5], ramp=0.2, keep=0.0, total_steps=1000)
    assert no_keep.weights(1000) == [0.0, 0.0, 1.0]
    assert no_keep.transitions() == [251, 501]  # stages enter just after their starts


def test_pacing_functions_match_their_formulas():
    c0, T = 0.1, 200
    assert pacing_linear(0, c0, T) == pytest.approx(c0)
    assert pacing_linear(100, c0, T) == pytest.approx(c0 + 0.5 * (1 - c0))
    assert pacing_linear(500, c0, T) == 1.0
    assert pacing_root(0, c0, T) == pytest.approx(c0)
    assert pacing_root(100, c0, T) == pytest.approx(math.sqrt(0.5 * (1 - c0**2) + c0**2))
    assert pacing_root(100, c0, T, p=3) == pytest.approx((0.5 * (1 - c0**3) + c0**3) ** (1 / 3))
    assert pacing_root(T, c0, T) == pytest.approx(1.0)
    # Hacohen & Weinshall: start * inc ** floor(step / step_length), capped at 1
    assert [pacing_fixed_exponential(s, 0.1, 2.0, 10) for s in (0, 9, 10, 25, 39, 40)] == pytest.approx(
        [0.1, 0.1, 0.2, 0.4, 0.8, 1.0]
    )
    # root competence grows faster than linear early on (the point of Platanios et al.'s sqrt)
    assert pacing_root(20, c0, T) > pacing_linear(20, c0, T)


def test_competence_schedule_weighs_the_available_share_of_each_stage():
    s = CompetenceSchedule([1, 1, 1], 100, lambda step: step / 100)
    assert s.weights(10) == [1.0, 0.0, 0.0]
    assert s.weights(50) == pytest.approx([2 / 3, 1 / 3, 0.0])  # stage 2 half available
    assert s.weights(100) == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    assert s.transitions() == [34, 67]  # competence passes 1/3 and 2/3 of the data


def test_build_schedule_from_specs_and_spec_validation():
    spec = CurriculumSpec.model_validate({"schedule": {"kind": "strict", "fractions": [0.5, 0.25, 0.25]}})
    assert isinstance(build_schedule(spec.schedule, [1, 1, 1], 8), StrictSchedule)
    lin = CurriculumSpec.model_validate({"schedule": {"kind": "linear", "c0": 0.2, "duration": 0.5}})
    sched = build_schedule(lin.schedule, [1, 1, 1], 100)
    assert sched.competence(0) == pytest.approx(0.2) and sched.competence(50) == pytest.approx(1.0)
    exp = CurriculumSpec.model_validate(
        {"schedule": {"kind": "fixed_exponential", "start": 0.25, "inc": 2, "step_length": 0.1}}
    )
    assert build_schedule(exp.schedule, [1, 1, 1], 100).competence(10) == pytest.approx(0.5)
    assert isinstance(build_schedule(None, [2, 1], 10), UniformSchedule)
    with pytest.raises(ValidationError, match="fractions needs 3"):
        CurriculumSpec.model_validate({"schedule": {"kind": "strict", "fractions": [0.5, 0.5]}})
    with pytest.raises(ValidationError):
        CurriculumSpec.model_validate({"schedule": {"kind": "cosine"}})


def test_dimension_score_uses_value_ranks():
    order = {
        "Ambiguity Level": ["Low", "Moderate", "High"],
        "Reasoning Explicitness": ["Implicit", "Detailed CoT"],
    }
    assert dimension_score({"Ambiguity Level": "low"}, order) == 0.0
    assert dimension_score({"Ambiguity Level": "High", "Reasoning Explicitness": "Implicit"}, order) == 0.5
    with pytest.raises(ValueError, match="not one of"):
        dimension_score({"Ambiguity Level": "Extreme"}, order)
    with pytest.raises(ValueError, match="none of the curriculum dimensions"):
        dimension_score({"Style": "Critical"}, order)


def test_proxies_and_stage_partitions():
    assert proxy_score("abc" * 100, "compression") < proxy_score(
        "The quick brown fox jumps over.", "compression"
    )
    assert proxy_score("abcd", "length") == 4
    stages = stages_by_quantiles([5, 1, 4, 2, 3, 6], 3)
    assert stages == [2, 0, 1, 0, 1, 2]
    assert stages_by_thresholds([0.1, 0.4, 0.9, 0.34], [1 / 3, 2 / 3]) == [0, 1, 2, 1]


def test_assign_stages_by_dimensions_and_by_proxy_per_source():
    docs = [
        Document("a", "s", 0, {"Ambiguity Level": "Low"}),
        Document("b", "s", 1, {"Ambiguity Level": "Moderate"}),
        Document("c", "s", 2, {"Ambiguity Level": "High"}),
    ]
    assign_stages(docs, CurriculumSpec())
    assert [d.stage for d in docs] == [0, 1, 2]
    bad = [Document("x", "s", 7, {"Ambiguity Level": "Sky-high"})]
    with pytest.raises(SourceError, match="s document 7"):
        assign_stages(bad, CurriculumSpec.model_validate({"difficulty": {"by": "dimensions"}}))
    texts = ["aaaa" * 50, "the cat sat on the mat " * 3, "Zq8#kP!x2@Lm9&" * 2]
    proxy = [Document(t, g, i) for g in ("one", "two") for i, t in enumerate(texts)]
    assign_stages(proxy, CurriculumSpec())
    assert [d.stage for d in proxy] == [0, 1, 2, 0, 1, 2]  # quantiles within each source
