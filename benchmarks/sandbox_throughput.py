"""Throughput of the code_tests sandbox: bubblewrap against the unsandboxed path, same solutions.

Runs a batch of small correct solutions (each with 3-4 tests) through
:func:`synthdspy.gates.sandbox.run_python` twice per repeat: inside bubblewrap (what the gate does)
and with ``unsandboxed=True`` (the gate's ``allow_unsandboxed`` fallback: the same harness and
solution processes, without bubblewrap). The implementation from before bubblewrap is not kept in
the package, so the unsandboxed path is the baseline: the ratio is the cost of bubblewrap itself,
not of the two-process harness. Prints records per second of each (best of ``--repeats``) and
their ratio; every record must pass, or the run stops.

Run: python benchmarks/sandbox_throughput.py [--records 48] [--workers 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from synthdspy.gates.sandbox import SandboxUnavailable, require_bubblewrap, run_python

PROBLEMS = [
    ("def add(a, b):\n    return a + b\n", "assert add(1, 2) == 3\nassert add(-1, 1) == 0\nassert add(0, 0) == 0\n"),
    ("def rev(s):\n    return s[::-1]\n", "assert rev('abc') == 'cba'\nassert rev('') == ''\nassert rev('a') == 'a'\n"),
    ("def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
     "assert fib(0) == 0\nassert fib(10) == 55\nassert fib(20) == 6765\n"),
    ("def is_prime(n):\n    return n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1))\n",
     "assert is_prime(2)\nassert not is_prime(9)\nassert is_prime(97)\nassert not is_prime(1)\n"),
    ("from math import gcd as g\ndef gcd(a, b):\n    return g(a, b)\n",
     "assert gcd(12, 18) == 6\nassert gcd(7, 5) == 1\nassert gcd(0, 4) == 4\n"),
    ("def flatten(xs):\n    return [y for x in xs for y in x]\n",
     "assert flatten([[1], [2, 3]]) == [1, 2, 3]\nassert flatten([]) == []\nassert flatten([[], [4]]) == [4]\n"),
    ("from collections import Counter\ndef words(s):\n    return Counter(s.split())\n",
     "assert words('a b a') == {'a': 2, 'b': 1}\nassert words('') == {}\nassert words('x') == {'x': 1}\n"),
    ("def max_sub(xs):\n    best = cur = xs[0]\n    for x in xs[1:]:\n        cur = max(x, cur + x)\n"
     "        best = max(best, cur)\n    return best\n",
     "assert max_sub([-2, 1, -3, 4, -1, 2, 1, -5, 4]) == 6\nassert max_sub([-1]) == -1\nassert max_sub([2, 3]) == 5\n"),
    ("def sort_in_place(xs):\n    xs.sort()\n",
     "a = [3, 1, 2]\nsort_in_place(a)\nassert a == [1, 2, 3]\nb = []\nsort_in_place(b)\nassert b == []\n"),
    ("class Stack:\n    def __init__(self):\n        self.items = []\n    def push(self, x):\n"
     "        self.items.append(x)\n    def pop(self):\n        return self.items.pop()\n",
     "def test_stack():\n    s = Stack()\n    s.push(1)\n    s.push(2)\n    assert s.pop() == 2\n"
     "    assert s.pop() == 1\n"),
    ("def two_sum(xs, t):\n    seen = {}\n    for i, x in enumerate(xs):\n        if t - x in seen:\n"
     "            return (seen[t - x], i)\n        seen[x] = i\n",
     "assert two_sum([2, 7, 11], 9) == (0, 1)\nassert two_sum([3, 3], 6) == (0, 1)\nassert two_sum([1], 5) is None\n"),
    ("def squares(n):\n    for i in range(n):\n        yield i * i\n",
     "assert list(squares(4)) == [0, 1, 4, 9]\nassert sum(squares(3)) == 5\nassert list(squares(0)) == []\n"),
]


def rate(batch: list[tuple[str, str]], unsandboxed: bool, workers: int, repeats: int) -> float:
    """Best records/second over ``repeats`` runs of ``batch`` with ``workers`` threads."""
    def one(problem: tuple[str, str]) -> None:
        result = run_python(*problem, unsandboxed=unsandboxed)
        if result.status != "passed":
            raise RuntimeError(f"a correct solution did not pass ({'unsandboxed' if unsandboxed else 'bwrap'}): "
                               f"{result}")

    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one, batch))
        best = max(best, len(batch) / (time.perf_counter() - start))
    return best


def main() -> None:
    """Time both modes on the same batch and print records/s and their ratio; exits with one line
    when bubblewrap does not work or a correct solution fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=48, help="solutions per batch (the problems, cycled)")
    parser.add_argument("--workers", type=int, default=1, help="records run at once (threads)")
    parser.add_argument("--repeats", type=int, default=3, help="batches per mode; the best is kept")
    args = parser.parse_args()
    batch = [PROBLEMS[i % len(PROBLEMS)] for i in range(args.records)]
    try:
        require_bubblewrap()
        rate(batch[:2], False, 1, 1)  # warm-up: the bubblewrap check and the page cache
        baseline = rate(batch, True, args.workers, args.repeats)
        sandboxed = rate(batch, False, args.workers, args.repeats)
    except (SandboxUnavailable, RuntimeError) as exc:
        raise SystemExit(f"sandbox_throughput: {exc}") from None
    print(f"{args.records} small correct solutions, {args.workers} at a time, best of {args.repeats}")
    print(f"  unsandboxed (allow_unsandboxed, the baseline): {baseline:7.1f} records/s")
    print(f"  bubblewrap (the gate's default):               {sandboxed:7.1f} records/s")
    print(f"  ratio bubblewrap / unsandboxed:                {sandboxed / baseline:7.2f}")


if __name__ == "__main__":
    main()
