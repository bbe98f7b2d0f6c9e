"""The async generation engine: units as greenlets on one event loop, LM calls on DSPy's async path,
the limiter awaited, blocking gates on worker threads (synthdspy.greenlet_bridge, synthdspy.generation)."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
import time
from pathlib import Path

import pytest

from synthdspy import greenlet_bridge
from synthdspy.config import load_experiment
from synthdspy.provider_engine import AsyncProviderEngine
from synthdspy.provider_server import ProviderOptions
from synthdspy.ratelimit import EndpointAbortedError, EndpointLimiter
from synthdspy.sim_server import serve_provider

ROOT = Path(__file__).parent.parent
KEY_ENV = "SYNTHDSPY_TEST_ASYNC_KEY"
_var: contextvars.ContextVar[str] = contextvars.ContextVar("test_var", default="unset")


def test_bridge_keeps_each_units_context_and_propagates_errors():
    def unit(i: int) -> tuple[str, str, bool]:
        _var.set(f"unit-{i}")
        seen = greenlet_bridge.await_only(_read_var_after(0.05))
        on_thread = greenlet_bridge.call_blocking(lambda: (_var.get(), threading.current_thread().name))
        if i == 3:
            greenlet_bridge.await_only(_fail())
        return seen, on_thread[0], on_thread[1] != threading.main_thread().name

    async def main() -> list:
        _var.set("loop")
        results = await asyncio.gather(*(greenlet_bridge.spawn(unit, i) for i in range(50)),
                                       return_exceptions=True)
        return [*results, _var.get()]

    start = time.monotonic()
    *results, outer = asyncio.run(main())
    assert time.monotonic() - start < 1.0  # 50 units awaited 50 ms each at once, not one after another
    assert results[0] == ("unit-0", "unit-0", True) and results[49] == ("unit-49", "unit-49", True)
    assert isinstance(results[3], ValueError) and str(results[3]) == "from the loop"
    assert outer == "loop"  # a unit's context never leaks into the loop's


async def _read_var_after(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return _var.get()


async def _fail() -> None:
    raise ValueError("from the loop")


def test_cancelling_a_unit_runs_its_finally_blocks():
    ran: list[str] = []

    def unit() -> None:
        try:
            greenlet_bridge.await_only(asyncio.sleep(10))
        finally:
            ran.append("finally")

    async def main() -> None:
        task = asyncio.ensure_future(greenlet_bridge.spawn(unit))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert ran == ["finally"]


def test_await_only_outside_a_unit_is_refused():
    with pytest.raises(RuntimeError, match="outside a greenlet"):
        greenlet_bridge.await_only(asyncio.sleep(0))


def test_awaited_limiter_holds_the_window_and_an_abort_wakes_waiters():
    limiter = EndpointLimiter("test @ here", max_concurrency=1)  # slow start: window 1

    async def main() -> tuple[float, str]:
        started = await limiter.aacquire()
        waiter = asyncio.ensure_future(limiter.aacquire())
        await asyncio.sleep(0.1)
        assert not waiter.done()  # the window is full
        limiter.release(started, ok=True)
        await asyncio.wait_for(waiter, 1.0)
        third = asyncio.ensure_future(limiter.aacquire())
        await asyncio.sleep(0.05)
        t0 = time.monotonic()
        limiter.abort(RuntimeError("wrong key"))
        with pytest.raises(EndpointAbortedError) as info:
            await asyncio.wait_for(third, 1.0)
        return time.monotonic() - t0, str(info.value.__cause__)

    woke_after, cause = asyncio.run(main())
    assert woke_after < 0.5 and cause == "wrong key"


def test_awaited_backoff_ends_early_when_the_endpoint_is_aborted():
    limiter = EndpointLimiter("test @ here", max_concurrency=4)

    async def main() -> float:
        asyncio.get_running_loop().call_later(0.1, limiter.abort, RuntimeError("no quota"))
        t0 = time.monotonic()
        with pytest.raises(EndpointAbortedError):
            await limiter.await_backoff(30)
        return time.monotonic() - t0

    assert asyncio.run(main()) < 1.5


def _experiment(tmp_path: Path, url: str, *extra: str):
    sets = [f"output.dir={json.dumps(str(tmp_path / 'out'))}", "tracking.enabled=false", "gates=[]",
            "task.num_questions=1"]
    for role in ("generator", "judge"):
        sets += [f"lm.{role}.model=openai/sim-model", f"lm.{role}.api_base={json.dumps(url)}",
                 f"lm.{role}.api_key_env={KEY_ENV}"]
    return load_experiment(ROOT / "experiments" / "grounded_qa.toml", [*sets, *extra])


def test_generate_keeps_hundreds_of_requests_in_flight_from_one_thread(tmp_path, monkeypatch):
    """128 units at concurrency 128 against an endpoint answering after 0.5 s: they overlap (a few
    seconds, not 64 s), every LM call went through the async engine, and the client's thread count
    stays small (the endpoint's own per-request threads are not counted)."""
    from synthdspy.pipeline import run_generate

    monkeypatch.setenv(KEY_ENV, "sk-test-async-0123456789")
    sent: list[str] = []
    original = AsyncProviderEngine.complete_legacy

    async def counted(self, lm, request, **context):
        sent.append(threading.current_thread().name)
        return await original(self, lm, request, **context)

    monkeypatch.setattr(AsyncProviderEngine, "complete_legacy", counted)
    peak = [0]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            client = [t for t in threading.enumerate() if "process_request" not in t.name]
            peak[0] = max(peak[0], len(client))

    watcher = threading.Thread(target=watch, daemon=True)
    with serve_provider(provider=ProviderOptions(latency_median_s=0.5)) as ep:
        exp = _experiment(tmp_path, ep.url, "lm.generator.concurrency=128", "seeds.sampling_seed=4242")
        watcher.start()
        start = time.monotonic()
        out = run_generate(exp, n=128, show_progress=False)
        seconds = time.monotonic() - start
        done.set()
        requests = ep.stats()["requests"]
    assert out.stats.passed >= 128
    assert len(sent) == requests >= 128 and set(sent) == {threading.main_thread().name}
    assert seconds < 30  # AIMD slow start doubles the window per answer: 1, 2, 4 ... 128 in flight
    assert peak[0] < 40, f"{peak[0]} client threads for 128 units in flight"


def test_a_blocking_gate_runs_on_a_worker_thread_while_other_units_proceed(tmp_path):
    """A gate marked ``blocking`` (sandbox, embedding dedup) runs off the event loop: eight units
    whose gate sleeps 0.4 s each finish in far less than 8 x 0.4 s."""
    from synthdspy.gates.base import Gate
    from synthdspy.generation import generate
    from synthdspy.lm import build_lms
    from synthdspy.program import SynthesisProgram
    from synthdspy.records import Seed, Verdict
    from synthdspy.store import RecordStore

    threads: list[str] = []

    class SlowGate(Gate):
        name = "slow"
        blocking = True

        def forward(self, record):
            threads.append(threading.current_thread().name)
            time.sleep(0.4)
            return Verdict(gate=self.name, passed=True, score=1.0, reason="slept")

    exp = load_experiment(ROOT / "experiments" / "grounded_qa.toml", ["lm.generator.concurrency=8", "gates=[]",
                                                                      "task.num_questions=1"])
    program = SynthesisProgram.from_experiment(exp)
    program.gates.gates = [SlowGate()]
    seeds = [Seed(id=f"seed-{i}", data={"instruction": f"Say the number {i} in words."}) for i in range(8)]
    with RecordStore(tmp_path / "store") as store:
        start = time.monotonic()
        stats = generate(program, seeds, build_lms(exp.lm), store, n=8, show_progress=False)
        seconds = time.monotonic() - start
    assert stats.passed == 8 and len(threads) == 8
    assert threading.main_thread().name not in threads and all(t.startswith("synthdspy-blocking") for t in threads)
    assert seconds < 8 * 0.4 * 0.6
