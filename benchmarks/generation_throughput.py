"""Records per second of synthdspy's generation engine against a raw async HTTP client.

An endpoint in a separate process (``benchmarks/fixed_endpoint.py``) answers every chat request
with one fixed valid response after a fixed latency (default 100 ms), so the ideal rate at
concurrency c is c / latency. For c = 1, 8, 64, 256 and 1024 (n = max(32, 4c) records each), the
same chat requests (messages formatted by DSPy's ChatAdapter beforehand) go through five clients,
each a semaphore of c over one more layer of the stack, and then through synthdspy:

* ``raw-aiohttp``: ``aiohttp.ClientSession``, the baseline every ``/raw`` ratio is against;
* ``raw-httpx``: ``httpx.AsyncClient`` (slower than aiohttp at high concurrency);
* ``litellm``: ``litellm.acompletion``, the library every synthdspy LLM path uses;
* ``dspy+litellm``: ``dspy.LM(engine="litellm").acall``, DSPy's async LM path with its response
  cache on LiteLLM, which synthdspy's provider engine extends;
* ``dspy+lm15``: ``dspy.LM(engine="auto").acall``, DSPy's own HTTP engine, for comparison;
* ``synthdspy``: :func:`synthdspy.generation.generate` running the ``qa`` task (one LM call per
  record, no gates) with ``[lm.generator] concurrency = c`` into a fresh record store: event loop
  and greenlets, DSPy's ChatAdapter (formatting and parsing), the async provider engine (limiter,
  retries, metering), the unit journal and the store.

Printed per c and client: records/s, the ratio to ideal, the ratio to ``raw-aiohttp``, and the
client's CPU milliseconds per record (process CPU time, all threads; the endpoint is another
process). Runtime: about four minutes on 2 cores.

Run from the repository root: ``python -m benchmarks.generation_throughput [--latency-s 0.1]
[--concurrency 1 8 64 256 1024]``. The endpoint's fixed text is not evidence of anything but
throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network for price maps
CACHE = tempfile.mkdtemp(prefix="throughput-cache-")
os.environ["DSPY_CACHEDIR"] = CACHE  # a fresh response cache: no run replays another's answers

import aiohttp  # noqa: E402
import dspy  # noqa: E402
import httpx  # noqa: E402

from synthdspy.config import LMConfig, LMRole, TaskConfig  # noqa: E402
from synthdspy.generation import generate  # noqa: E402
from synthdspy.lm import build_lms  # noqa: E402
from synthdspy.program import SynthesisProgram  # noqa: E402
from synthdspy.records import Seed  # noqa: E402
from synthdspy.signatures.qa import AnswerInstruction  # noqa: E402
from synthdspy.store import RecordStore  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KEY_ENV = "SYNTHDSPY_BENCH_KEY"
MAX_TOKENS = 256
HEADERS = {"authorization": "Bearer sk-bench", "content-type": "application/json"}


def instruction(i: int) -> str:
    """The i-th instruction (distinct, so no call is a cache hit)."""
    return f"Explain in two sentences why item number {i} of the benchmark is interesting."


def start_endpoint(latency_s: float) -> tuple[subprocess.Popen, str]:
    """Start ``fixed_endpoint.py`` in its own process; (the process, its base URL)."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "fixed_endpoint.py"),
                             "--latency-s", str(latency_s)], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()  # type: ignore[union-attr]


def _body(msgs: list[dict]) -> str:
    return json.dumps({"model": "fixed", "messages": msgs, "temperature": 0.7, "max_tokens": MAX_TOKENS})


def _has_field(text: str) -> bool:
    return "[[ ## response ## ]]" in text


async def _bounded(concurrency: int, messages: list[list[dict]], one: Any) -> int:
    slots = asyncio.Semaphore(concurrency)

    async def bounded(msgs: list[dict]) -> bool:
        async with slots:
            return await one(msgs)

    return sum(await asyncio.gather(*(bounded(m) for m in messages)))


async def raw_aiohttp(url: str, concurrency: int, messages: list[list[dict]]) -> int:
    """One chat request per message list with ``aiohttp`` and a semaphore of ``concurrency``; the
    number of answers holding the ``response`` field."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=HEADERS) as session:

        async def one(msgs: list[dict]) -> bool:
            async with session.post(f"{url}/chat/completions", data=_body(msgs)) as answer:
                answer.raise_for_status()
                return _has_field((await answer.json())["choices"][0]["message"]["content"])

        return await _bounded(concurrency, messages, one)


async def raw_httpx(url: str, concurrency: int, messages: list[list[dict]]) -> int:
    """As :func:`raw_aiohttp` with ``httpx.AsyncClient``."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=120.0, headers=HEADERS) as client:

        async def one(msgs: list[dict]) -> bool:
            answer = await client.post(f"{url}/chat/completions", content=_body(msgs))
            answer.raise_for_status()
            return _has_field(answer.json()["choices"][0]["message"]["content"])

        return await _bounded(concurrency, messages, one)


async def litellm_client(url: str, concurrency: int, messages: list[list[dict]]) -> int:
    """As :func:`raw_aiohttp` through ``litellm.acompletion`` (the library every LLM path uses)."""
    import litellm

    async def one(msgs: list[dict]) -> bool:
        answer = await litellm.acompletion(model="openai/fixed", api_base=url, api_key="sk-bench", messages=msgs,
                                           temperature=0.7, max_tokens=MAX_TOKENS, num_retries=0)
        return _has_field(answer.choices[0].message.content)

    return await _bounded(concurrency, messages, one)


def dspy_lm(engine: str) -> Any:
    """As :func:`raw_aiohttp` through ``dspy.LM(engine=engine).acall`` (DSPy's async LM path with
    its response cache): ``litellm`` is the engine synthdspy's provider engine builds on, ``auto``
    DSPy's own HTTP client where it can serve the request."""

    async def layer(url: str, concurrency: int, messages: list[list[dict]]) -> int:
        lm = dspy.LM("openai/fixed", api_base=url, api_key="sk-bench", temperature=0.7, max_tokens=MAX_TOKENS,
                     num_retries=0, engine=engine)

        async def one(msgs: list[dict]) -> bool:
            return _has_field((await lm.acall(messages=msgs))[0])

        return await _bounded(concurrency, messages, one)

    return layer


LAYERS: dict[str, Any] = {"raw-aiohttp": raw_aiohttp, "raw-httpx": raw_httpx, "litellm": litellm_client,
                          "dspy+litellm": dspy_lm("litellm"), "dspy+lm15": dspy_lm("auto")}


def run_synthdspy(url: str, concurrency: int, first: int, n: int, out: Path) -> int:
    """Generate ``n`` records with the ``qa`` task at ``concurrency``; the passed records stored.

    Raises:
        synthdspy.llm_failures.RunAbortedError: the endpoint failed.
    """
    role = LMRole(model="openai/fixed", api_base=url, api_key_env=KEY_ENV, concurrency=concurrency,
                  max_tokens=MAX_TOKENS)
    lms = build_lms(LMConfig(generator=role, judge=role, reflection=role))
    program = SynthesisProgram(TaskConfig(name="qa"), [])
    seeds = [Seed(id=f"s{i}", data={"instruction": instruction(i)}) for i in range(first, first + n)]
    with RecordStore(out) as store:
        stats = generate(program, seeds, lms, store, n, max_rollouts=1, show_progress=False)
    return stats.passed


def timed(fn, *args) -> tuple[int, float, float]:  # noqa: ANN001
    """(fn's result, wall seconds, process CPU seconds)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    """Print records/s, ratio to ideal, ratio to the raw client and CPU ms/record per concurrency."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-s", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64, 256, 1024])
    args = parser.parse_args()
    os.environ[KEY_ENV] = "sk-bench"
    proc, url = start_endpoint(args.latency_s)
    adapter = dspy.ChatAdapter()
    try:
        run_synthdspy(url, 1, -1, 1, Path(tempfile.mkdtemp()) / "warm")  # imports and clients warm
        for layer in LAYERS.values():
            asyncio.run(layer(url, 1, [adapter.format(AnswerInstruction, demos=[], inputs={"instruction": "warm"})]))
        print(f"endpoint {url} (separate process), latency {args.latency_s * 1000:.0f} ms; "
              f"CPU: {os.cpu_count()} cores; /raw is against raw-aiohttp")
        print(f"{'c':>5} {'n':>5} {'client':>11} {'rec/s':>8} {'ideal':>8} {'/ideal':>7} {'/raw':>6} "
              f"{'CPU ms/rec':>10}")
        first = 0
        for c in args.concurrency:
            n, ideal = max(32, 4 * c), c / args.latency_s
            rates: dict[str, float] = {}
            for name, layer in LAYERS.items():
                messages = [adapter.format(AnswerInstruction, demos=[], inputs={"instruction": instruction(i)})
                            for i in range(first, first + n)]
                ok, wall, cpu = timed(lambda m=messages, c=c, layer=layer: asyncio.run(layer(url, c, m)))
                rates[name] = ok / wall
                first += n
                _row(c, n, name, rates, ideal, cpu)
            ok, wall, cpu = timed(run_synthdspy, url, c, first, n, Path(tempfile.mkdtemp()) / f"c{c}")
            rates["synthdspy"] = ok / wall
            first += n
            _row(c, n, "synthdspy", rates, ideal, cpu)
            if ok != n:
                raise SystemExit(f"synthdspy stored {ok} of {n} records at concurrency {c}")
    finally:
        proc.terminate()


def _row(c: int, n: int, name: str, rates: dict[str, float], ideal: float, cpu: float) -> None:
    rate = rates[name]
    print(f"{c:>5} {n:>5} {name:>11} {rate:>8.1f} {ideal:>8.1f} {rate / ideal:>7.2f} "
          f"{rate / rates['raw-aiohttp']:>6.2f} {1000 * cpu / n:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
