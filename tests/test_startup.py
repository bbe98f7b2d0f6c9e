"""Start-up of `generate`: the garbage collector held back during imports, MLflow's set-up deferred
until the first LM request is answered, no scikit-learn import without dimension verdicts."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
import time

import pytest

from synthdspy import startup_gc, tracking


@pytest.fixture
def restore_gc():
    before = gc.get_threshold()
    yield
    startup_gc.release()
    gc.unfreeze()
    gc.set_threshold(*before)


def test_hold_raises_the_young_threshold_and_release_freezes_and_restores(restore_gc):
    default = gc.get_threshold()
    startup_gc.hold()
    held = gc.get_threshold()
    assert held[0] > 100 * default[0] and held[1:] == default[1:]
    startup_gc.hold()  # a second hold keeps the first one's saved thresholds
    assert gc.get_threshold() == held
    frozen = gc.get_freeze_count()
    startup_gc.release()
    assert gc.get_threshold() == default
    assert gc.get_freeze_count() > frozen
    startup_gc.release()  # already released: nothing changes
    assert gc.get_threshold() == default


def test_mlflow_set_up_waits_for_the_predicate(tmp_path, monkeypatch):
    answered, began = threading.Event(), threading.Event()
    configure = tracking.configure

    def observed(*args, **kwargs):
        began.set()
        return configure(*args, **kwargs)

    monkeypatch.setattr(tracking, "configure", observed)
    setup = tracking.BackgroundSetup(None, "deferred", tmp_path, after=answered.is_set, max_delay_s=30)
    assert not began.wait(0.5)  # nothing answered yet: MLflow not touched
    answered.set()
    assert began.wait(30)
    assert setup.result().endswith("mlflow.db")


def test_a_cancelled_set_up_never_touches_mlflow(tmp_path, monkeypatch):
    began = threading.Event()
    monkeypatch.setattr(tracking, "configure", lambda *a, **k: began.set())
    setup = tracking.BackgroundSetup(None, "cancelled", tmp_path, after=lambda: False, max_delay_s=600)
    start = time.monotonic()
    setup.cancel()
    assert setup.result() == "" and not began.is_set() and time.monotonic() - start < 5


def test_held_start_up_leaves_the_collector_as_it_found_it_even_on_an_error(restore_gc):
    default = gc.get_threshold()
    with pytest.raises(RuntimeError), startup_gc.held():
        assert gc.get_threshold()[0] > default[0]
        raise RuntimeError("a config error before the units started")
    assert gc.get_threshold() == default and gc.get_freeze_count() == 0


def test_result_starts_a_deferred_set_up_whose_predicate_never_holds(tmp_path):
    setup = tracking.BackgroundSetup(None, "never-sent", tmp_path, after=lambda: False, max_delay_s=600)
    start = time.monotonic()
    assert setup.result().endswith("mlflow.db")
    assert time.monotonic() - start < 60  # not the 600 s delay


def test_generate_over_http_sets_up_mlflow_only_after_its_first_answer(tmp_path, monkeypatch):
    """Pipeline test over the provider-realistic endpoint: the requests the endpoint had received
    when `configure` ran (received, not answered: the endpoint counts on arrival, so this shows the
    set-up waited for the first request at least), and the in-process simulator's runs (no request
    to wait for)."""
    from test_real_providers import KEY, KEY_ENV, experiment

    from synthdspy.pipeline import _first_answer, run_generate
    from synthdspy.sim_server import serve_provider

    monkeypatch.setenv(KEY_ENV, KEY)
    seen: list[int] = []
    configure = tracking.configure
    with serve_provider() as ep:
        def counting(*args, **kwargs):
            seen.append(ep.stats()["requests"])
            return configure(*args, **kwargs)

        monkeypatch.setattr(tracking, "configure", counting)
        out = run_generate(experiment(tmp_path, ep.url, "gates=[]"), n=4, show_progress=False)
    assert out.stats.passed >= 4 and out.run_id
    assert len(seen) == 1 and seen[0] >= 1
    sim = experiment(tmp_path, "unused", "lm.generator.model=sim/default", "lm.judge.model=sim/default")
    from synthdspy.lm import build_lms

    assert _first_answer(sim, build_lms(sim.lm)) is None


def test_no_dimension_verdicts_need_no_scikit_learn():
    code = ("import sys\nfrom synthdspy.gates.dimension import confusion_matrices\n"
            "assert confusion_matrices({}) == {}\nprint('sklearn' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_the_heap_is_frozen_during_the_block_and_handed_back_after(restore_gc):
    gc.unfreeze()
    kept = [object() for _ in range(10)]  # alive at entry
    with startup_gc.frozen_heap():
        assert gc.get_freeze_count() >= len(kept)
    assert gc.get_freeze_count() == 0
    gc.freeze()  # frozen by the caller (the CLI's start-up): left frozen
    with startup_gc.frozen_heap():
        pass
    assert gc.get_freeze_count() > 0
