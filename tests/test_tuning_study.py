"""Tuning studies end to end on a tiny budget: report and MLflow, pruning, workers, resume, seeds."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import optuna
import pytest
from optuna.trial import TrialState
from tuning_helpers import tiny, tiny_path

from synthdspy.tuning.storage import open_storage, storage_url
from synthdspy.tuning.study import tune

ROOT = Path(__file__).parent.parent


def load(cfg, name: str | None = None) -> optuna.Study:
    return optuna.load_study(study_name=name or cfg.name, storage=open_storage(storage_url(cfg)))


def test_study_with_baselines_reports_regret_and_tracks_everything_in_mlflow(tmp_path):
    cfg = tiny(tmp_path, "tracking.enabled=true", "baselines.uniform=true", "baselines.natural=true",
               "baselines.random_trials=2")
    summary = tune(cfg, poll_s=0.2)
    labels = [r.label for r in summary.rows]
    assert labels == ["best tuned trial (tpe)", "uniform", "natural", "random search"]
    tuned = load(cfg)
    values = [t.value for t in tuned.trials if t.state == TrialState.COMPLETE]
    assert summary.best.target == min(values)
    for row in summary.rows[1:]:
        assert row.regret == pytest.approx(row.target - summary.best.target)
    uniform = summary.rows[1].weights
    assert uniform == pytest.approx({"wikitext": 1 / 3, "gsm8k": 1 / 3, "shakespeare": 1 / 3})
    natural = summary.rows[2].weights
    assert sum(natural.values()) == pytest.approx(1.0) and natural != pytest.approx(uniform)

    report = cfg.out_dir / "report"
    best = json.loads((report / "best_config.json").read_text())
    assert best["weights"] == pytest.approx(summary.best.weights)
    assert best["train"]["mixture"] == pytest.approx(summary.best.weights)  # whole-source groups
    for plot in ("optimization_history", "param_importances", "parallel_coordinate"):
        assert (report / "plots" / f"{plot}.png").stat().st_size > 5000

    mlflow.set_tracking_uri(f"sqlite:///{cfg.out_dir.resolve() / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["synthdspy-tune"], output_format="list")
    parents = [r for r in runs if r.data.tags.get("kind") == "tune"]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 3 + 2 + 2
    assert {c.data.tags["study"] for c in children} == {"tuned", "random", "baselines"}
    assert parent.data.metrics["regret/uniform"] == pytest.approx(summary.rows[1].regret)
    client = mlflow.tracking.MlflowClient()
    art = {a.path for a in client.list_artifacts(parent.info.run_id, "report/plots")}
    assert "report/plots/optimization_history.png" in art
    done = [c for c in children if c.data.tags.get("state") == "COMPLETE"]
    assert len(client.get_metric_history(done[0].info.run_id, "target")) >= 4  # the curve, every evaluation


@pytest.mark.parametrize("pruner", ["median", "hyperband"])
def test_pruning_stops_bad_trials_early(tmp_path, pruner):
    cfg = tiny(tmp_path, "study.sampler=random", f"study.pruner={pruner}", "study.n_trials=8",
               "study.n_startup_trials=2")
    tune(cfg, poll_s=0.2)
    trials = load(cfg).trials
    assert len(trials) == 8 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, "no trial was pruned"
    total = cfg.train.total_steps
    for t in pruned:
        assert max(t.intermediate_values) < total
        assert "losses" not in t.user_attrs  # training was aborted before the final evaluation
        assert t.user_attrs["curve"][-1][0] == max(t.intermediate_values)
    for t in trials:
        if t.state == TrialState.COMPLETE:
            assert t.user_attrs["steps"] == total


def test_multi_objective_study_returns_a_pareto_front(tmp_path):
    cfg = tiny(tmp_path, "objective.multi=true", "study.n_trials=4")
    summary = tune(cfg, poll_s=0.2)
    assert summary.pareto
    for row in summary.pareto:
        assert not any(o.target < row.target and o.worst < row.worst for o in summary.pareto)
    assert (cfg.out_dir / "report" / "plots" / "pareto_front.png").stat().st_size > 5000


def test_seeded_study_is_reproducible(tmp_path):
    studies = []
    for run in ("a", "b"):
        cfg = tiny(tmp_path / run)
        tune(cfg, poll_s=0.2)
        studies.append(load(cfg).trials)
    assert [t.params for t in studies[0]] == [t.params for t in studies[1]]
    assert [t.values for t in studies[0]] == [t.values for t in studies[1]]


@pytest.mark.parametrize("backend", ["journal", "sqlite"])
def test_two_workers_on_one_storage_run_every_trial_exactly_once(tmp_path, backend):
    storage = f"journal:{tmp_path / 'journal.log'}" if backend == "journal" else f"sqlite:///{tmp_path / 'o.db'}"
    cfg = tiny(tmp_path, f"study.storage={storage}", "study.n_trials=5", "baselines.random_trials=2",
               "baselines.uniform=true", "study.pruner=none")
    summary = tune(cfg, workers=2, poll_s=0.5)
    tuned = load(cfg).trials
    assert sorted(t.number for t in tuned) == [0, 1, 2, 3, 4]
    assert all(t.state == TrialState.COMPLETE for t in tuned)
    assert len({json.dumps(t.params, sort_keys=True) for t in tuned}) == 5
    assert {t.user_attrs["worker"] for s in ("tiny", "tiny/random", "tiny/baselines")
            for t in load(cfg, s).trials} == {0, 1}  # both processes ran trials
    assert len(load(cfg, "tiny/random").trials) == 2
    assert [t.user_attrs["baseline"] for t in load(cfg, "tiny/baselines").trials] == ["uniform"]
    assert summary.counts["tuned"]["complete"] == 5


def _has_trials(db: Path) -> bool:
    """Whether the tuner has created its trials (without creating Optuna's tables ourselves)."""
    if not db.exists():
        return False
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as con:
        try:
            return con.execute("SELECT COUNT(*) FROM trials").fetchone()[0] > 0
        except sqlite3.OperationalError:  # tables not created yet
            return False


def _peek(cfg) -> list[optuna.trial.FrozenTrial]:
    """The tuner's trials, read without taking the write lock a frozen process may hold."""
    plain = optuna.storages.RDBStorage(storage_url(cfg), engine_kwargs={"connect_args": {"timeout": 1}})
    try:
        return optuna.load_study(study_name=cfg.name, storage=plain).trials
    finally:
        plain.engine.dispose()


def _freeze_when(proc: subprocess.Popen, cfg, predicate, timeout: float) -> None:
    """Leave ``proc`` stopped (SIGSTOP) at a moment when ``predicate(trials)`` holds.

    The process is frozen before each look at the study, so the state seen is the state it is
    killed in: a trial cannot finish between the check and the kill.
    """
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.2)
        if not _has_trials(cfg.out_dir / "optuna.db"):
            continue
        proc.send_signal(signal.SIGSTOP)
        try:
            if predicate(_peek(cfg)):
                return
        except Exception:  # noqa: BLE001 - frozen mid-write: the database is locked, look again later
            pass
        proc.send_signal(signal.SIGCONT)
    raise AssertionError("timed out waiting for the study")


def test_killed_study_resumes_without_losing_or_repeating_trials(tmp_path):
    path = tiny_path(tmp_path)
    overrides = ["--set", "study.n_trials=6", "--set", "study.pruner=none", "--set", "train.trainer.token_budget=8192"]
    cfg = tiny(tmp_path, "study.n_trials=6", "study.pruner=none")
    cmd = [sys.executable, "-m", "synthdspy", "tune", str(path), *overrides]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _freeze_when(proc, cfg, lambda ts: sum(t.state == TrialState.COMPLETE for t in ts) >= 2
                     and any(t.state == TrialState.RUNNING for t in ts), timeout=240)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    before = load(cfg).trials
    kept = {t.number: t.values for t in before if t.state == TrialState.COMPLETE}
    zombies = [t.number for t in before if t.state == TrialState.RUNNING]
    assert len(kept) >= 2 and zombies

    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "best tuned trial (tpe)" in out.stdout
    after = load(cfg).trials
    assert {t.number: t.values for t in after if t.number in kept} == kept
    assert all(after[n].state == TrialState.FAIL for n in zombies)
    assert sum(t.state == TrialState.COMPLETE for t in after) == 6
    assert len(after) == 6 + len(zombies)


def test_gp_sampler_runs_a_study(tmp_path):
    cfg = tiny(tmp_path, "study.sampler=gp", "study.n_trials=3", "study.n_startup_trials=2", 'search.schedules=[]')
    summary = tune(cfg, poll_s=0.2)
    assert summary.counts["tuned"]["complete"] + summary.counts["tuned"]["pruned"] == 3


def test_cmaes_without_its_package_is_a_config_error(tmp_path):
    try:
        import cmaes  # noqa: F401
    except ImportError:
        from synthdspy.configio import ConfigError
        from synthdspy.tuning.storage import make_sampler

        with pytest.raises(ConfigError, match="cmaes package"):
            make_sampler(tiny(tmp_path, "study.sampler=cmaes"), "tuned")
    else:
        summary = tune(tiny(tmp_path, "study.sampler=cmaes", "study.n_trials=3", 'search.schedules=[]'), poll_s=0.2)
        assert summary.counts["tuned"]["complete"] + summary.counts["tuned"]["pruned"] == 3


def test_joining_adds_no_trials_and_a_larger_budget_extends_the_study(tmp_path):
    cfg = tiny(tmp_path, "study.pruner=none")
    tune(cfg, poll_s=0.2)
    first = {t.number: t.values for t in load(cfg).trials}
    bigger = tiny(tmp_path, "study.pruner=none", "study.n_trials=5")
    assert tune(bigger, join=True, poll_s=0.2) is None  # a joiner only runs tickets the owner issued
    assert len(load(cfg).trials) == 3
    summary = tune(bigger, poll_s=0.2)
    after = load(cfg).trials
    assert len(after) == 5 and {t.number: t.values for t in after[:3]} == first
    assert summary.counts["tuned"]["complete"] == 5


def test_a_failed_worker_process_is_reported_with_its_log(tmp_path, monkeypatch):
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'ImportError: worker could not start' >&2\nexit 2\n")
    broken.chmod(0o755)
    cfg = tiny(tmp_path)
    monkeypatch.setattr(sys, "executable", str(broken))  # the interpreter the workers are started with
    with pytest.raises(RuntimeError, match=r"(?s)workers \[0, 1\] failed.*ImportError: worker could not start"):
        tune(cfg, workers=2, poll_s=0.1)
