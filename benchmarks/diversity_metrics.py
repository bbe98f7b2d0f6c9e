"""Throughput of the offline diversity metrics on the 3,730 real passages.

Prints samples per second of each metric on all passages (the homogenization metrics compare
their default cap of 300 sampled passages, so their rate is per sampled passage), and, as the
baseline measured in the same run, the `diversity` package (Shaib et al.) on the same subset
where it implements the metric, or the direct O(n^3) kernel for the Vendi score.

Run: python benchmarks/diversity_metrics.py [--baseline-texts 400]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from synthdspy.metrics.diversity import embedding, lexical

PASSAGES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "passages" / "passages.jsonl"


def package_function(module: str, name: str) -> Callable[..., float]:
    """A function of the `diversity` package, loaded by path (its __init__ needs spacy)."""
    root = importlib.util.find_spec("diversity")
    path = Path(next(iter(root.submodule_search_locations))) / f"{module}.py"
    spec = importlib.util.spec_from_file_location(f"_diversity_{module}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return getattr(mod, name)


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def direct_vendi(x: np.ndarray) -> float:
    eig = np.linalg.eigvalsh(x @ x.T / len(x))
    eig = eig[eig > 1e-12]
    return float(np.exp(-np.sum(eig * np.log(eig))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--baseline-texts", type=int, default=400, help="subset size for the package baseline"
    )
    args = parser.parse_args()
    texts = [json.loads(line)["text"] for line in PASSAGES.open(encoding="utf-8")]
    subset = texts[: args.baseline_texts]
    cap = lexical.DEFAULT_MAX_PAIRWISE_TEXTS
    quiet = {"verbose": False}
    cases: list[tuple[str, Callable[[list[str]], object], int, Callable[[list[str]], object] | None]] = [
        ("context_length", lexical.context_length, len(texts), None),
        (
            "self_repetition",
            lexical.self_repetition_score,
            len(texts),
            lambda t: package_function("self_repetition", "self_repetition_score")(t, **quiet),
        ),
        (
            "ngram_diversity",
            lexical.ngram_diversity_score,
            len(texts),
            package_function("ngram_diversity", "ngram_diversity_score"),
        ),
        (
            "compression_ratio",
            lexical.compression_ratio,
            len(texts),
            package_function("compression", "compression_ratio"),
        ),
        (
            "homogenization_rougel",
            lexical.homogenization_rougel,
            cap,
            lambda t: package_function("homogenization", "homogenization_score")(t[:60], "rougel", **quiet),
        ),
        ("homogenization_bleu", lexical.homogenization_bleu, cap, None),
    ]
    print(f"{len(texts)} passages; baseline subset {len(subset)} (rouge-L baseline: 60)")
    print(f"{'metric':24} {'ours samples/s':>15} {'baseline samples/s':>19} {'ratio':>8}")
    for name, ours, n_ours, baseline in cases:
        _, seconds = timed(lambda ours=ours: ours(texts))
        rate = n_ours / seconds
        if baseline is None:
            print(f"{name:24} {rate:15.1f} {'-':>19} {'-':>8}")
            continue
        n_base = 60 if name == "homogenization_rougel" else len(subset)
        _, base_seconds = timed(lambda baseline=baseline: baseline(subset))
        # the rouge-L rate is per compared text at quadratic cost: compare at equal size
        if name == "homogenization_rougel":
            _, ours_small = timed(lambda: lexical.homogenization_rougel(subset[:60]))
            ratio = base_seconds / ours_small
        else:
            _, ours_sub = timed(lambda ours=ours: ours(subset))
            ratio = base_seconds / ours_sub
        print(f"{name:24} {rate:15.1f} {n_base / base_seconds:19.1f} {ratio:7.1f}x")
    vectors, embed_seconds = timed(lambda: embedding.embed_texts(texts))
    print(f"{'embed (MiniLM, CPU)':24} {len(texts) / embed_seconds:15.1f} {'-':>19} {'-':>8}")
    _, km = timed(lambda: embedding.kmeans_cluster_score(vectors))
    print(f"{'kmeans_score':24} {len(texts) / km:15.1f} {'-':>19} {'-':>8}")
    _, vendi = timed(lambda: embedding.vendi_score(vectors))
    _, direct = timed(lambda: direct_vendi(vectors))
    print(f"{'vendi_score':24} {len(texts) / vendi:15.1f} {len(texts) / direct:19.1f} {direct / vendi:7.1f}x")


if __name__ == "__main__":
    main()
