"""The tuning search space: the stick-breaking simplex, schedule suggestions, plans as training configs."""

from __future__ import annotations

import random

import numpy as np
import optuna
import pytest
from tuning_helpers import tiny

from synthdspy.configio import ConfigError
from synthdspy.training.curriculum import build_schedule
from synthdspy.training.data import prepare
from synthdspy.training.trainer import SplitLoss
from synthdspy.tuning.objective import score
from synthdspy.tuning.simplex import from_simplex, to_simplex
from synthdspy.tuning.space import TrialPlan, apply_plan, suggest_plan, suggest_weights


@pytest.mark.parametrize("k", [2, 3, 5, 8])
def test_simplex_weights_are_non_negative_and_sum_to_one(k):
    rng = random.Random(k)
    for _ in range(500):
        u = [rng.random() for _ in range(k - 1)]
        w = to_simplex(u)
        assert len(w) == k
        assert min(w) >= 0
        assert sum(w) == pytest.approx(1.0, abs=1e-12)
        assert from_simplex(w) == pytest.approx(u, abs=1e-9)


@pytest.mark.parametrize("k", [2, 3, 6])
def test_every_corner_is_reached_exactly_with_finite_sticks(k):
    for i in range(k):
        u = [0.0] * i + [1.0] + [0.0] * (k - 2 - i) if i < k - 1 else [0.0] * (k - 1)
        w = to_simplex(u)
        assert w == [1.0 if j == i else 0.0 for j in range(k)]
        assert to_simplex(from_simplex(w)) == w


def test_uniform_sticks_give_a_uniform_simplex():
    """Dirichlet(1,...,1): every weight has mean 1/K and P(w_1 > 1/2) = (1/2)^(K-1).

    The naive stick-breaking with uniform fractions fails this: its first weight has mean 1/2.
    """
    rng = np.random.default_rng(0)
    k, n = 4, 20000
    w = np.array([to_simplex(list(u)) for u in rng.random((n, k - 1))])
    assert w.mean(axis=0) == pytest.approx([1 / k] * k, abs=0.01)
    assert (w[:, 0] > 0.5).mean() == pytest.approx(0.5 ** (k - 1), abs=0.01)
    assert (w[:, -1] > 0.5).mean() == pytest.approx(0.5 ** (k - 1), abs=0.01)


def test_to_simplex_rejects_sticks_outside_the_unit_interval():
    with pytest.raises(ValueError, match="outside"):
        to_simplex([0.5, 1.2])


def test_synthetic_share_corners_through_optuna_trials(tmp_path):
    cfg = tiny(tmp_path, "search.synthetic_share={low = 0.0, high = 1.0}")
    all_synthetic = suggest_weights(optuna.trial.FixedTrial({"synthetic_share": 1.0, "mix/wikitext": 0.3}), cfg.search)
    assert all_synthetic == {"wikitext": 0.0, "gsm8k": 0.0, "shakespeare": 1.0}
    only_gsm8k = suggest_weights(optuna.trial.FixedTrial({"synthetic_share": 0.0, "mix/wikitext": 0.0}), cfg.search)
    assert only_gsm8k == {"wikitext": 0.0, "gsm8k": 1.0, "shakespeare": 0.0}
    mixed = suggest_weights(optuna.trial.FixedTrial({"synthetic_share": 0.25, "mix/wikitext": 0.5}), cfg.search)
    assert mixed["shakespeare"] == pytest.approx(0.25)
    assert mixed["wikitext"] + mixed["gsm8k"] == pytest.approx(0.75)


def test_sampled_plans_build_valid_schedules(tmp_path):
    cfg = tiny(tmp_path, 'search.schedules=["none", "strict", "gradual", "linear", "root", "fixed_exponential"]')
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    kinds = set()
    for _ in range(60):
        trial = study.ask()
        plan = suggest_plan(trial, cfg.search, cfg.train.curriculum.stages)
        kinds.add(plan.schedule["kind"])
        assert sum(plan.weights.values()) == pytest.approx(1.0)
        train_cfg = apply_plan(cfg.train, plan)
        schedule = build_schedule(train_cfg.curriculum.schedule, [10, 10], 100)
        for step in (0, 30, 99):
            assert sum(schedule.weights(step)) == pytest.approx(1.0)
        if plan.schedule["kind"] == "gradual":
            starts = plan.schedule["starts"]
            assert starts[0] == 0 and starts == sorted(starts) and starts[-1] <= 1
        study.tell(trial, 0.0)
    assert kinds == {"none", "strict", "gradual", "linear", "root", "fixed_exponential"}


def test_plan_sets_source_and_group_weights_that_the_stream_samples(tmp_path):
    cfg = tiny(tmp_path)
    passages = cfg.train.sources[0].model_copy(
        update={"name": "passages", "path": "../shared/data/passages/passages.jsonl", "format": "jsonl",
                "template": "{text}", "group_by": "source", "limit": None, "min_chars": 1}
    )
    train = cfg.train.model_copy(update={"sources": [*cfg.train.sources, passages]})
    weights = {"wikitext": 0.1, "gsm8k": 0.2, "shakespeare": 0.0, "passages/cnn_dailymail": 0.3,
               "passages/wikipedia": 0.4}
    out = apply_plan(train, TrialPlan(weights=weights, schedule={"kind": "none"}))
    assert out.mixture == pytest.approx({"wikitext": 0.1, "gsm8k": 0.2, "shakespeare": 0.0, "passages": 0.7})
    data = prepare(out)
    probs = data.stream(out).cell_probs(0)
    per_group: dict[str, float] = {}
    for cell, p in zip(data.cells, probs, strict=True):
        per_group[cell.group] = per_group.get(cell.group, 0.0) + p
    assert {g: per_group.get(g, 0.0) for g in weights} == pytest.approx(weights)
    assert per_group.get("passages/xsum", 0.0) == 0.0  # an unlisted group of a split source


def test_config_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="in no group"):
        tiny(tmp_path, 'search.groups={wikitext = "real", gsm8k = "real"}')
    with pytest.raises(ConfigError, match="no group_by"):
        tiny(tmp_path, 'search.groups={wikitext = "real", "gsm8k/x" = "real", shakespeare = "real"}')
    with pytest.raises(ConfigError, match="synthetic_share"):
        tiny(tmp_path, 'search.groups={wikitext = "real", gsm8k = "real", shakespeare = "real"}',
             "search.synthetic_share={low = 0.0, high = 0.5}")
    with pytest.raises(ConfigError, match="cannot prune"):
        tiny(tmp_path, "objective.multi=true", "study.pruner=median")


def test_score_is_a_weighted_mean_and_a_worst_split(tmp_path):
    cfg = tiny(tmp_path, 'objective.target={"val/a*" = 1.0, "val/b" = 3.0}', 'objective.worst_over=["val/*"]')
    losses = {n: SplitLoss(nats_per_token=0.0, bits_per_byte=v)
              for n, v in {"val/a1": 1.0, "val/a2": 2.0, "val/b": 4.0, "stage/x": 9.0}.items()}
    target, worst = score(losses, cfg.objective)
    assert target == pytest.approx((1.0 + 2.0 + 3 * 4.0) / 5)
    assert worst == 4.0
    bad = cfg.objective.model_copy(update={"target": {"ood/*": 1.0}})
    with pytest.raises(ConfigError, match="matches no validation split"):
        score(losses, bad)
