"""Tuning across machines, for real: a PostgreSQL server holds the Optuna study, an ``mlflow server``
backed by a second PostgreSQL database tracks it, and two ``synthdspy tune`` processes (the owner
and a ``--join`` worker) share the trials. Killing the joined worker mid-trial leaves a trial that
Optuna's heartbeat finds stale; the owner's worker fails it and runs it again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import optuna
from optuna.trial import TrialState
from server_helpers import mlflow_server, postgres_server
from tuning_helpers import tiny_path

ROOT = Path(__file__).parent.parent


def _trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=name, storage=url).trials
    except KeyError:  # the owner has not created the study yet
        return []


def _wait_for(predicate, timeout: float, procs: list[subprocess.Popen]) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        for proc in procs:
            assert proc.poll() is None, f"{proc.args[3:5]} exited early with {proc.returncode}"
        time.sleep(0.3)
    raise AssertionError("timed out")


def test_two_machines_share_a_postgres_study_tracked_by_an_mlflow_server_and_a_killed_workers_trial_reruns(
        tmp_path):
    with postgres_server() as pg, mlflow_server(f"{pg}/mlflow", tmp_path / "artifacts") as tracking_uri:
        storage = f"{pg}/optuna"
        sets = ["study.n_trials=8", "study.pruner=none", "study.heartbeat_s=1", "study.grace_s=3",
                f"study.storage={storage}", "tracking.enabled=true", f"tracking.uri={tracking_uri}",
                "tracking.experiment=tiny-postgres", "train.trainer.token_budget=16384"]
        argv = [sys.executable, "-m", "synthdspy", "tune", str(tiny_path(tmp_path))]
        for item in sets:
            argv += ["--set", item]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        logs = {name: (tmp_path / f"{name}.log").open("w") for name in ("owner", "joined")}
        owner = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=logs["owner"], stderr=subprocess.STDOUT)
        _wait_for(lambda: len(_trials(storage, "tiny")) >= 8, 120, [owner])  # the owner issued its tickets
        joined = subprocess.Popen([*argv, "--join"], cwd=ROOT, env=env, stdout=logs["joined"],
                                  stderr=subprocess.STDOUT)
        hosts = {"owner": f":{owner.pid}", "joined": f":{joined.pid}"}

        def joined_mid_trial() -> bool:  # the joined worker finished one trial and runs another
            mine = [t for t in _trials(storage, "tiny") if t.user_attrs.get("host", "").endswith(hosts["joined"])]
            return (any(t.state == TrialState.COMPLETE for t in mine)
                    and any(t.state == TrialState.RUNNING for t in mine))

        try:
            _wait_for(joined_mid_trial, 240, [owner, joined])
            killed = next(t for t in _trials(storage, "tiny") if t.state == TrialState.RUNNING
                          and t.user_attrs["host"].endswith(hosts["joined"]))
            joined.send_signal(signal.SIGKILL)
            joined.wait()
            assert owner.wait(timeout=300) == 0, (tmp_path / "owner.log").read_text()[-3000:]
        finally:
            for proc in (owner, joined):
                if proc.poll() is None:
                    proc.kill()
        trials = _trials(storage, "tiny")
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        assert len(complete) == 8  # the budget, each ticket run once
        assert {t.user_attrs["host"].rpartition(":")[2] for t in complete} == {str(owner.pid), str(joined.pid)}
        failed = [t for t in trials if t.state == TrialState.FAIL]
        assert [t.number for t in failed] == [killed.number]  # found stale by the heartbeat
        retry = [t for t in complete if t.system_attrs.get("failed_trial") == killed.number]
        assert len(retry) == 1 and retry[0].params == killed.params
        assert retry[0].user_attrs["host"].endswith(hosts["owner"])  # rerun by the live worker
        assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]

        client = mlflow.MlflowClient(tracking_uri)
        experiment = client.get_experiment_by_name("tiny-postgres")
        runs = client.search_runs([experiment.experiment_id])
        parents = [r for r in runs if r.data.tags.get("kind") == "tune"]
        assert len(parents) == 1
        nested = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id
                  and r.info.status == "FINISHED"]
        assert len(nested) == 8  # one finished nested run per completed trial, on the server
