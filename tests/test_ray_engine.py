"""``generate --engine ray`` on a local Ray (2 CPUs, 2 actors): the local engine's record ids, one
rate limit for the whole cluster against an endpoint that answers 429 past its RPM, a killed actor
that loses and doubles nothing, and dedup correct across workers. Pipeline tests: the simulator
writes the records (over HTTP or in process); nothing here is evidence of data quality."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synthdspy.config import load_experiment
from synthdspy.provider_server import ProviderOptions
from synthdspy.sim_server import serve_provider
from synthdspy.store import RecordStore

ROOT = Path(__file__).parent.parent
KEY_ENV = "SYNTHDSPY_TEST_RAY_KEY"
# 360 requests a minute enforced as 30 per 5 s (OpenAI's documented quantization), so a run of a
# few hundred requests meets the limit within seconds
LIMIT = ProviderOptions(rpm=360, quantum_s=5.0, latency_median_s=0.1)


def _sets(url: str, out: Path, engine: str) -> list[str]:
    sets = [f"output.dir={json.dumps(str(out))}", "tracking.enabled=false", f"generate.engine={json.dumps(engine)}",
            "seeds.sampling_seed=31", "lm.generator.concurrency=16"]
    for role in ("generator", "judge"):
        sets += [f"lm.{role}.model=openai/sim-model", f"lm.{role}.api_base={json.dumps(url)}",
                 f"lm.{role}.api_key_env={KEY_ENV}"]
    return sets


def _ids(out: Path) -> list[str]:
    with RecordStore(out / "generate" / "store") as store:
        return [r.id for r in store.iter_records()]


def _by_unit(out: Path) -> dict[str, list[str]]:
    """Record ids per unit (``seed#rollout``)."""
    units: dict[str, list[str]] = {}
    with RecordStore(out / "generate" / "store") as store:
        for r in store.iter_records():
            units.setdefault(f"{r.provenance.seed_id}#{r.provenance.rollout_id}", []).append(r.id)
    return {k: sorted(v) for k, v in units.items()}


def _same_records(ray_out: Path, local: dict[str, list[str]]) -> None:
    """Every unit both engines ran has the same record ids; the units each ran are the first ones
    in generation order, so one run's units contain the other's (they differ only in how many
    units past ``n`` were in flight when the target was reached)."""
    ray = _by_unit(ray_out)
    common = ray.keys() & local.keys()
    assert {k: ray[k] for k in common} == {k: local[k] for k in common}
    assert common in (ray.keys(), local.keys()) and len(common) >= min(len(ray), len(local))


def _units(out: Path) -> list[str]:
    lines = (out / "generate" / "store" / "units.jsonl").read_text().splitlines()
    return [json.loads(line)["unit"] for line in lines]


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The reference: the same command on the local engine (ids of its records)."""
    from synthdspy.pipeline import run_generate

    out = tmp_path_factory.mktemp("local")
    os.environ[KEY_ENV] = "sk-test-ray-0123456789"
    with serve_provider(provider=LIMIT) as ep:
        run_generate(load_experiment(ROOT / "experiments" / "grounded_qa.toml", _sets(ep.url, out, "local")), n=40,
                     show_progress=False)
    return _by_unit(out)


def test_ray_engine_gives_the_local_records_under_one_cluster_rate_limit(tmp_path, local_run):
    """Two actors, each with its own limiter, would each pace at the learned RPM and together send
    twice the limit (with the limiter actor bypassed, this test sees over 5% of 429s); the
    cluster-wide limiter actor keeps 429 answers at or under 5%."""
    from synthdspy.pipeline import run_generate

    with serve_provider(provider=LIMIT) as ep:
        exp = load_experiment(ROOT / "experiments" / "grounded_qa.toml",
                              [*_sets(ep.url, tmp_path, "ray"), "generate.ray_actors=2"])
        out = run_generate(exp, n=40, show_progress=False)
        stats = ep.stats()
    assert out.stats.passed >= 40 and out.exported == 40
    _same_records(tmp_path, local_run)
    assert stats["rate_limited"] <= 0.05 * stats["requests"], stats["by_status"]
    assert stats["duplicate_successes"] == 0  # no request paid twice
    assert out.meter.calls == stats["successes"]  # every worker's billed usage reached the driver's meter


def test_killing_an_actor_mid_run_loses_and_duplicates_nothing(tmp_path, local_run):
    with serve_provider(provider=LIMIT) as ep:
        argv = [sys.executable, "-m", "synthdspy", "generate", str(ROOT / "experiments" / "grounded_qa.toml"),
                "-n", "40"]
        for item in _sets(ep.url, tmp_path, "ray"):
            argv += ["--set", item]
        proc = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        units = tmp_path / "generate" / "store" / "units.jsonl"
        deadline, killed = time.monotonic() + 180, None
        while killed is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            workers = _map_workers()
            if workers and units.exists() and units.read_text().count("\n") >= 2:
                killed = workers[0]
                os.kill(killed, signal.SIGKILL)  # an actor dies with units in flight
        output, _ = proc.communicate(timeout=300)
    assert killed is not None, output[-2000:]
    assert proc.returncode == 0, output[-3000:]
    ids, done = _ids(tmp_path), _units(tmp_path)
    assert len(ids) == len(set(ids))  # nothing doubled
    _same_records(tmp_path, local_run)  # nothing lost
    assert len(done) == len(set(done))


def _map_workers() -> list[int]:
    """Pids of Ray Data's map actors (process title ``ray::MapWorker(...)``)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "cmdline").read_bytes().startswith(b"ray::MapWorker"):
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def test_dedup_sees_every_workers_records(tmp_path):
    """Ten passages, each twice under different seed ids, the copies far apart: the second copy's
    records are exact duplicates (the simulator answers the same prompt the same way) and must be
    rejected although another actor may have written the first."""
    from synthdspy.pipeline import run_generate

    passages = [json.loads(line)["text"] for line in
                (ROOT.parent / "shared" / "data" / "passages" / "passages.jsonl").read_text().splitlines()[:10]]
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"id": f"{copy}-{i}", "text": text}) + "\n"
                             for copy in ("a", "b") for i, text in enumerate(passages)))
    results = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        exp = load_experiment(ROOT / "experiments" / "qa_filtered.toml",
                              [f"output.dir={json.dumps(str(out))}", "tracking.enabled=false",
                               f"generate.engine={json.dumps(engine)}", f"seeds.source={json.dumps(str(seeds))}",
                               "seeds.train_size=10", "seeds.dev_size=10", "gates[2].embedding=false",
                               "lm.generator.concurrency=4"], )
        run_generate(exp, n=100, show_progress=False, unit_limit=20)
        with RecordStore(out / "generate" / "store") as store:
            records = list(store.iter_records())
        results[engine] = {r.provenance.seed_id: [v.passed for v in r.verdicts if v.gate == "dedup"]
                           for r in records}
    rejected = {engine: sorted(s for s, v in seen.items() if v == [False]) for engine, seen in results.items()}
    assert all(len(v) == 1 for seen in results.values() for v in seen.values())  # dedup ran on every record
    assert rejected["local"] and len(rejected["ray"]) == len(rejected["local"])


def test_workers_share_one_limiter_actor_per_endpoint():
    """Two workers admitting 20 requests each through the endpoint's limiter actor at 600 requests
    a minute take the 39 pacing intervals of one limit (about 3.9 s); two process-local limiters,
    as each worker would have without it, take half that, sending twice the limit."""
    import threading

    import ray

    from synthdspy.ratelimit import EndpointLimiter
    from synthdspy.ray_engine.driver import connect
    from synthdspy.ray_engine.limiter import RemoteLimiter, start_limiter

    def admit(limiters: list) -> float:
        def worker(limiter) -> None:  # noqa: ANN001
            for _ in range(20):
                limiter.release(limiter.acquire(0), ok=True)

        threads = [threading.Thread(target=worker, args=(lim,)) for lim in limiters]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.monotonic() - start

    started = connect("")
    try:
        actor = start_limiter("openai/m", "http://limits.test/v1", 8, 600, None)  # lives while referenced
        shared = admit([RemoteLimiter("openai/m", "http://limits.test/v1") for _ in range(2)])
        assert ray.get(actor.stats.remote())["started"] == 40
    finally:
        if started:
            ray.shutdown()
    separate = admit([EndpointLimiter("openai/m @ here", 8, rpm=600) for _ in range(2)])
    assert shared >= 39 / (600 * 0.99 / 60) * 0.95, shared
    assert separate < shared * 0.6, (separate, shared)


def test_a_wrong_key_stops_a_ray_run_at_once_with_one_line(tmp_path):
    """A 401 on any worker is run-fatal for the whole cluster: the driver raises one line naming the
    cause, the limiter actor is aborted so no worker keeps sending, and the key never leaks."""
    from synthdspy.llm_failures import RunAbortedError
    from synthdspy.pipeline import run_generate

    os.environ[KEY_ENV] = "sk-test-ray-0123456789"
    with serve_provider(provider=ProviderOptions(api_key="sk-the-right-key-000000")) as ep:
        exp = load_experiment(ROOT / "experiments" / "grounded_qa.toml", _sets(ep.url, tmp_path, "ray"))
        with pytest.raises(RunAbortedError, match="auth error from lm.generator .*Incorrect API key") as info:
            run_generate(exp, n=40, show_progress=False)
        requests = ep.stats()["requests"]
    assert "\n" not in str(info.value) and "sk-test-ray-0123456789" not in str(info.value)
    assert requests <= 4  # slow start: each actor's first request, then the endpoint is aborted


def test_the_spending_cap_holds_within_a_round(tmp_path):
    """One slot per actor, so the second round queues more units than run at once: workers ask the
    run's budget actor before each unit, so the cluster stops at the cap plus the units in flight
    (checked only between rounds, this round would spend about three times the cap). The units left
    are neither run nor failed, and a re-run with a higher cap resumes."""
    from synthdspy.pipeline import run_generate

    os.environ[KEY_ENV] = "sk-test-ray-0123456789"
    price = "{ input_per_mtok = 1000.0, output_per_mtok = 4000.0 }"
    sets = [*_sets("URL", tmp_path, "ray"), "generate.ray_actors=2", "lm.generator.concurrency=2",
            f"lm.generator.price={price}", f"lm.judge.price={price}"]
    with serve_provider(provider=ProviderOptions(latency_median_s=0.05)) as ep:
        exp = load_experiment(ROOT / "experiments" / "grounded_qa.toml", [s.replace("URL", ep.url) for s in sets])
        first = run_generate(exp, n=40, show_progress=False, max_usd=20.0)
        ids = _ids(tmp_path)
        second = run_generate(exp, n=40, show_progress=False, max_usd=500.0)
    per_unit = first.meter.cost_usd / first.stats.units_run
    assert first.stats.stopped_by == "budget" and first.stats.passed < 40
    assert 20.0 <= first.meter.cost_usd <= 20.0 + 2 * 2 * per_unit  # in flight: a slot per actor
    assert not (tmp_path / "generate" / "store" / "failures.jsonl").exists() or \
        "budget" not in (tmp_path / "generate" / "store" / "failures.jsonl").read_text()
    assert second.stats.passed >= 40 and set(ids) <= set(_ids(tmp_path))


def test_truncated_answers_and_hung_requests_on_ray_are_handled_as_locally(tmp_path):
    """Record-fatal and transient failures behave on the workers as on the local engine: answers
    cut at max_tokens fail their units as record:truncated (journaled by the driver, then the
    circuit breaker), and hung requests time out and are retried until the run completes."""
    from synthdspy.llm_failures import RunAbortedError
    from synthdspy.pipeline import run_generate

    os.environ[KEY_ENV] = "sk-test-ray-0123456789"
    grounded = ROOT / "experiments" / "grounded_qa.toml"
    with serve_provider() as ep:
        exp = load_experiment(grounded, [*_sets(ep.url, tmp_path / "cut", "ray"), "lm.generator.max_tokens=8",
                                         "gates=[]"])
        with pytest.raises(RunAbortedError, match="record:truncated"):
            run_generate(exp, n=20, show_progress=False)
    failures = (tmp_path / "cut" / "generate" / "store" / "failures.jsonl").read_text().splitlines()
    assert failures and {json.loads(f)["class"] for f in failures} == {"record:truncated"}
    with serve_provider(provider=ProviderOptions(hang_rate=0.3, hang_s=60, seed=5)) as ep:
        exp = load_experiment(grounded, [*_sets(ep.url, tmp_path / "hang", "ray"), "gates=[]",
                                         "lm.generator.timeout_s=1", "lm.generator.num_retries=5"])
        start = time.monotonic()
        out = run_generate(exp, n=8, show_progress=False)
        hung = ep.stats()["hung"]
    assert out.stats.passed >= 8 and hung >= 1
    assert time.monotonic() - start < 90
