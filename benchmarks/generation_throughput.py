"""Records per second through the real dspy.LM HTTP path against the local simulator endpoint.

The endpoint (`synthdspy.sim_server`) answers every request after a fixed latency (default
100 ms) with no injected errors, so the ideal throughput at concurrency c is c / latency records
per second; the script prints the measured rate and its ratio to that ideal for c = 1, 8, 32, 64
(n = max(8, 4c) records each, one `dspy.Predict` call per record, run with `Module.batch`, i.e.
`dspy.Parallel`). A ratio well below 1 at high c means client-side overhead (adapter formatting
and parsing, HTTP client, GIL) dominates, not the endpoint. The endpoint runs in this process,
so its own answer-writing CPU shares the GIL with the client: the ratio is a lower bound for an
out-of-process server. Runtime: a few seconds.

Run from the repository root:
`python -m benchmarks.generation_throughput [--latency-s 0.1] [--engine auto|litellm]`.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network for price maps

import dspy  # noqa: E402

from synthdspy.sim_server import serve  # noqa: E402
from synthdspy.simulator import SIMULATOR_BANNER  # noqa: E402

CONCURRENCY = (1, 8, 32, 64)


class TopicQA(dspy.Signature):
    """Write one question and its answer about the topic."""

    topic: str = dspy.InputField()
    question: str = dspy.OutputField()
    answer: str = dspy.OutputField()


def measure(program: dspy.Module, concurrency: int, offset: int) -> tuple[int, float]:
    """Generate max(8, 4 * concurrency) records with `concurrency` threads; return (n, seconds).

    Raises RuntimeError if any record failed.
    """
    n = max(8, 4 * concurrency)
    examples = [dspy.Example(topic=f"topic number {offset + i}").with_inputs("topic") for i in range(n)]
    start = time.perf_counter()
    results = program.batch(examples, num_threads=concurrency, disable_progress_bar=True, max_errors=0)
    seconds = time.perf_counter() - start
    if len(results) != n or any(r is None or not r.question for r in results):
        raise RuntimeError(f"only {sum(r is not None for r in results)} of {n} records were generated")
    return n, seconds


def main() -> None:
    """Print records/s and the ratio to the ideal c / latency for each concurrency."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-s", type=float, default=0.1)
    parser.add_argument("--engine", choices=("auto", "litellm"), default="auto")
    args = parser.parse_args()
    print(SIMULATOR_BANNER)
    with serve(latency_s=args.latency_s) as url:
        lm = dspy.LM(
            "openai/sim-model", api_base=url, api_key="sk-local-test", cache=False, engine=args.engine
        )
        program = dspy.Predict(TopicQA)
        with dspy.context(lm=lm):
            program(topic="warm-up")  # client and import start-up are not part of the measurement
            print(f"engine={args.engine} latency={args.latency_s * 1000:.0f} ms endpoint={url}")
            print(f"{'concurrency':>11} {'records':>7} {'seconds':>8} {'rec/s':>8} {'ideal':>8} {'ratio':>6}")
            offset = 0
            for c in CONCURRENCY:
                n, seconds = measure(program, c, offset)
                offset += n
                rate, ideal = n / seconds, c / args.latency_s
                print(f"{c:>11} {n:>7} {seconds:>8.2f} {rate:>8.1f} {ideal:>8.1f} {rate / ideal:>6.2f}")


if __name__ == "__main__":
    main()
