"""Proxy-to-target transfer: rank statistics against scipy on hand-made data, regret, scale checks,
and the tiny end to end (a real tuning study of tiny proxies, retrained at 8x parameters and 4x
tokens, killed in the middle of a retraining and resumed), with MLflow and the report."""

from __future__ import annotations

import json
from dataclasses import replace

import mlflow
import numpy as np
import pytest
from scipy import stats
from tuning_helpers import TINY

import synthdspy.training.api as training_api
from synthdspy.configio import ConfigError
from synthdspy.transfer.config import load_study_config, load_transfer_config, target_train
from synthdspy.transfer.run import retrain, transfer
from synthdspy.transfer.stats import bootstrap_spearman, regret, spearman
from synthdspy.tuning.config import load_tune_config
from synthdspy.tuning.study import tune


def test_spearman_matches_scipy_and_the_hand_computed_value():
    # ranks differ by d = (1, 1, 1, 1, 0): rho = 1 - 6 * 4 / (5 * 24) = 0.8
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    assert spearman([3.1, 2.2, 5.0], [0.3, 0.2, 0.1]) == pytest.approx(-0.5)
    x, y = [0.5, 0.7, 0.7, 0.2, 0.9, 0.4], [1.0, 3.0, 2.0, 0.5, 2.5, 2.5]  # ties: average ranks
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="same length"):
        spearman([1, 2], [1, 2, 3])


def rank_corr(a, b, axis=-1):
    """Spearman's rho along ``axis`` (scipy's bootstrap passes resamples stacked on a leading axis)."""
    ra, rb = stats.rankdata(a, axis=axis), stats.rankdata(b, axis=axis)
    ra = ra - ra.mean(axis=axis, keepdims=True)
    rb = rb - rb.mean(axis=axis, keepdims=True)
    return (ra * rb).sum(axis=axis) / np.sqrt((ra * ra).sum(axis=axis) * (rb * rb).sum(axis=axis))


def test_bootstrap_interval_agrees_with_scipys_percentile_bootstrap():
    rng = np.random.default_rng(3)
    x = rng.normal(size=14)
    y = x + rng.normal(scale=0.8, size=14)
    ours = bootstrap_spearman(x, y, n_resamples=5000, confidence=0.9, seed=1)
    ref = stats.bootstrap((x, y), rank_corr, paired=True, vectorized=True, n_resamples=5000,
                          confidence_level=0.9, method="percentile", random_state=2)
    assert ours.low == pytest.approx(ref.confidence_interval.low, abs=0.05)
    assert ours.high == pytest.approx(ref.confidence_interval.high, abs=0.05)
    assert ours.low < spearman(x, y) < ours.high and ours.n_valid == 5000
    same = bootstrap_spearman(x, y, n_resamples=5000, confidence=0.9, seed=1)
    assert (same.low, same.high) == (ours.low, ours.high)  # seeded


def test_bootstrap_drops_resamples_where_rho_is_undefined():
    iv = bootstrap_spearman([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], n_resamples=1000, seed=0)
    assert (iv.low, iv.high) == (1.0, 1.0)
    # 4 of 256 index draws repeat one pair only: (1/4)^3 of the resamples, about 16 in 1000
    assert 990 > iv.n_valid > 960


def test_regret_of_the_proxy_pick_against_the_best_target():
    r = regret([3.0, 2.0, 2.5, 2.8], [1.2, 1.5, 1.1, 1.3])
    assert (r.pick, r.best, r.target_rank) == (1, 2, 4)
    assert r.regret == pytest.approx(0.4) and r.relative == pytest.approx(0.4 / 1.1)
    agree = regret([1.0, 2.0], [5.0, 6.0])
    assert (agree.regret, agree.target_rank) == (0.0, 1)


STUDY = (TINY.replace('sampler = "tpe"', 'sampler = "tpe"\npruner = "none"')
         .replace("random_trials = 0\nuniform = false\nnatural = false", "random_trials = 2"))

TRANSFER = """
name = "tiny_transfer"
study = "{study}"
seed = 5
[output]
dir = "{out}"
[pick]
top_k = 2
random = 2
[target.model]
n_layer = 2
n_embd = 80
[target.trainer]
token_budget = 16384
[stats]
bootstrap = 500
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A tiny tuning study: 3 TPE trials, 2 random trials, 2 baselines (1-layer proxies, 4096 tokens)."""
    root = tmp_path_factory.mktemp("study")
    path = root / "tiny.toml"
    path.write_text(f'{STUDY}\n[output]\ndir = "{root / "out"}"\n')
    tune(load_tune_config(path), poll_s=0.2)
    return path, root / "out"


def transfer_config(tmp_path, study_file, *overrides):
    path = tmp_path / "transfer.toml"
    path.write_text(TRANSFER.format(study=study_file, out=tmp_path / "transfer"))
    return load_transfer_config(path, list(overrides))


def test_transfer_end_to_end_resumes_a_killed_run_and_tracks_everything(study, tmp_path, monkeypatch):
    study_file, study_dir = study
    cfg = transfer_config(tmp_path, study_file)
    real_train = training_api.train
    calls: list[str] = []

    killed: list[int] = []

    class Killed(Exception):
        pass

    def killing_train(config, on_eval=None, resume=False):
        calls.append(config.name)

        def hook(event):
            if on_eval is not None:
                on_eval(event)
            if config.name == "natural" and event.step == 32 and not killed:
                killed.append(event.step)
                raise Killed  # the process dies at the step-32 evaluation of the 4th retraining

        return real_train(config, on_eval=hook, resume=resume)

    monkeypatch.setattr(training_api, "train", killing_train)
    with pytest.raises(Killed):
        transfer(cfg, study_dir)
    assert calls == ["top-1", "top-2", "uniform", "natural"]
    assert (cfg.out_dir / "runs" / "natural" / "checkpoint.pt").is_file()
    calls.clear()
    summary = transfer(cfg, study_dir)
    monkeypatch.setattr(training_api, "train", real_train)
    labels = [m.label for m in summary.mixtures]
    randoms = sorted((m for m in summary.mixtures if m.kind == "random"), key=lambda m: m.trial)
    assert calls == ["natural", *(m.label for m in randoms)]  # the finished three are not retrained
    assert len(summary.mixtures) == 6 and {"top-1", "top-2", "uniform", "natural"} <= set(labels)
    assert [m.proxy for m in summary.mixtures] == sorted(m.proxy for m in summary.mixtures)
    proxy = [m.proxy for m in summary.mixtures]
    target = [m.target for m in summary.mixtures]
    assert summary.rho == pytest.approx(stats.spearmanr(proxy, target).statistic)
    assert summary.regret.regret == pytest.approx(target[int(np.argmin(proxy))] - min(target))
    assert summary.regret.pick == 0  # mixtures come in proxy order: the pick is the first
    assert summary.scale.param_ratio >= 8 and summary.scale.token_ratio == 4

    # the resumed retraining ends where an uninterrupted one does
    natural = next(m for m in summary.mixtures if m.label == "natural")
    tune_cfg = load_study_config(cfg, study_dir)
    fresh = replace(natural, target=None, target_losses={}, run_id=None)
    retrain(fresh, target_train(cfg, tune_cfg.train, "target"), tune_cfg, tmp_path / "again", None)
    assert fresh.target == pytest.approx(natural.target, abs=1e-6)

    report = cfg.out_dir / "report"
    data = json.loads((report / "transfer.json").read_text())
    assert data["rho"] == pytest.approx(summary.rho) and len(data["mixtures"]) == 6
    assert "Spearman's rho over 6 mixtures" in (report / "transfer.md").read_text()
    assert (report / "proxy_vs_target.png").stat().st_size > 10000

    mlflow.set_tracking_uri(f"sqlite:///{cfg.out_dir.resolve() / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["synthdspy-transfer"], output_format="list")
    parents = [r for r in runs if r.data.tags.get("kind") == "transfer"]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(c.info.run_name for c in children) == sorted(labels)  # the killed one reopened, not doubled
    assert parent.data.metrics["spearman"] == pytest.approx(summary.rho)
    assert parent.data.metrics["regret"] == pytest.approx(summary.regret.regret)
    child = next(c for c in children if c.info.run_name == "top-2")
    assert child.data.metrics["final/target"] == pytest.approx(next(m.target for m in summary.mixtures
                                                                     if m.label == "top-2"))

    calls.clear()
    monkeypatch.setattr(training_api, "train", killing_train)
    transfer(cfg, study_dir)  # everything finished: nothing is retrained
    assert calls == []


def test_target_below_the_required_scale_or_too_many_picks_is_a_one_line_error(study, tmp_path):
    study_file, study_dir = study
    small = transfer_config(tmp_path, study_file, "target.model.n_embd=48")
    with pytest.raises(ConfigError, match=r"parameters .*min_param_ratio asks for 8x"):
        transfer(small, study_dir)
    short = transfer_config(tmp_path, study_file, "target.trainer.token_budget=8192")
    with pytest.raises(ConfigError, match=r"2.0x the proxy's tokens"):
        transfer(short, study_dir)
    greedy = transfer_config(tmp_path, study_file, "pick.random=9")
    with pytest.raises(ConfigError, match="pick.random = 9, but the study's random search has 2"):
        transfer(greedy, study_dir)
    bad = transfer_config(tmp_path, study_file, "target.model.n_head=3")
    with pytest.raises(ConfigError, match="target"):
        transfer(bad, study_dir)
    with pytest.raises(ConfigError, match="no such study output directory"):
        transfer(small, tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="no tuning study there"):
        (tmp_path / "empty").mkdir()
        transfer(small, tmp_path / "empty")
