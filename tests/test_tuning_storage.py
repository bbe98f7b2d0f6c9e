"""Ticket claims under contention: several processes never run one ticket twice."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import optuna
import pytest

from synthdspy.tuning.storage import claim, open_storage

CLAIMER = """
import json, pathlib, sys, time
import optuna
from synthdspy.tuning.storage import claim, open_storage
optuna.logging.set_verbosity(optuna.logging.WARNING)
storage = open_storage(sys.argv[1])
study = optuna.load_study(study_name="s", storage=storage)
pathlib.Path(sys.argv[2]).touch()  # ready
while not pathlib.Path(sys.argv[3]).exists():  # start together
    time.sleep(0.01)
got = []
while (trial := claim(study, storage)) is not None:
    got.append(trial.number)
print(json.dumps(got))
"""


@pytest.mark.parametrize("backend", ["sqlite", "journal"])
def test_racing_processes_claim_each_ticket_exactly_once(tmp_path, backend):
    url = f"sqlite:///{tmp_path / 'o.db'}" if backend == "sqlite" else f"journal:{tmp_path / 'j.log'}"
    tickets = 120
    study = optuna.create_study(study_name="s", storage=open_storage(url))
    for _ in range(tickets):
        study.enqueue_trial({})
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{k}" for k in range(4)]
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, url, str(r), str(go)], stdout=subprocess.PIPE, text=True)
             for r in ready]
    deadline = time.monotonic() + 120
    while not all(r.exists() for r in ready) and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()
    claimed = []
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0
        claimed.append(json.loads(out))
    numbers = [n for got in claimed for n in got]
    assert sorted(numbers) == list(range(tickets))  # none lost, none claimed twice
    assert sum(bool(got) for got in claimed) >= 2  # the processes did race


def test_claim_returns_none_when_no_ticket_waits(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'o.db'}")
    study = optuna.create_study(study_name="s", storage=storage)
    study.enqueue_trial({})
    assert claim(study, storage).number == 0
    assert claim(study, storage) is None


def test_a_journal_in_a_new_directory_is_created(tmp_path):
    path = tmp_path / "new" / "dir" / "journal.log"
    storage = open_storage(f"journal:{path}")
    optuna.create_study(study_name="s", storage=storage).enqueue_trial({})
    assert path.is_file()


def test_a_worker_dead_right_after_its_claim_leaves_a_trial_found_stale(tmp_path):
    """The claim records the ticket's heartbeat first: a worker killed between claiming and its
    heartbeat thread's first beat still leaves a trial that the others fail and run again."""
    from synthdspy.tuning.config import StudySpec
    from synthdspy.tuning.storage import fail_stale, running_elsewhere

    storage = open_storage(f"sqlite:///{tmp_path / 'o.db'}", StudySpec(heartbeat_s=1, grace_s=2))
    study = optuna.create_study(study_name="s", storage=storage)
    study.enqueue_trial({})
    dead = claim(study, storage)  # ... and its worker dies here, before any heartbeat thread
    assert dead is not None and running_elsewhere(study)
    time.sleep(3)
    fail_stale(study)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states[dead.number] == optuna.trial.TrialState.FAIL and not running_elsewhere(study)
    assert claim(study, storage) is not None  # its retry ticket
