"""Throughput of exact, MinHash LSH and embedding dedup on the 3,730 real passages.

Prints records per second of :func:`synthdspy.dedup.find_duplicates` with one method at a time,
each as a ratio against the exact-hash baseline measured in the same run, plus how many
duplicates each method finds (the passages repeat articles under several prompt templates, so
there are real near-duplicates). Embedding time includes encoding with all-MiniLM-L6-v2 but not
loading it (it is loaded before the clock starts).

Run: python benchmarks/dedup_throughput.py [--limit N] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from synthdspy.dedup import encode_texts, find_duplicates

PASSAGES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "passages" / "passages.jsonl"

METHODS = {
    "exact": dict(exact=True, minhash=False, embedding=False),
    "minhash_lsh": dict(exact=False, minhash=True, embedding=False),
    "embedding": dict(exact=False, minhash=False, embedding=True),
}


def rate(texts: list[str], repeats: int, **methods: bool) -> tuple[float, int]:
    """(best records/second over ``repeats`` runs, duplicates found)."""
    best, found = 0.0, 0
    for _ in range(repeats):
        start = time.perf_counter()
        found = len(find_duplicates(texts, **methods))
        best = max(best, len(texts) / (time.perf_counter() - start))
    return best, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="use the first N passages only")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cheap method (embedding runs once)")
    args = parser.parse_args()
    texts = [json.loads(line)["text"] for line in PASSAGES.open(encoding="utf-8")][: args.limit]
    encode_texts(texts[:2])  # load the encoder before timing
    print(f"{len(texts)} passages")
    print(f"{'method':<12} {'records/s':>10} {'vs exact':>9} {'duplicates':>10}")
    baseline = None
    for name, methods in METHODS.items():
        repeats = 1 if methods["embedding"] else args.repeats
        per_s, found = rate(texts, repeats, **methods)
        baseline = baseline or per_s
        print(f"{name:<12} {per_s:>10.1f} {per_s / baseline:>9.4f} {found:>10}")


if __name__ == "__main__":
    main()
