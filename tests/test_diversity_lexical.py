"""Lexical baselines: agreement with the `diversity` package (Shaib et al.) and our own checks."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
from nltk.translate.bleu_score import corpus_bleu
from rouge_score import rouge_scorer

from synthdspy.metrics.diversity import lexical

PREDICTIONS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "self_instruct" / "predictions"


def diversity_module(name: str) -> ModuleType:
    """One module of the `diversity` package, loaded by path: its __init__ imports spacy, absent here."""
    spec_root = importlib.util.find_spec("diversity")
    assert spec_root is not None and spec_root.submodule_search_locations
    path = Path(next(iter(spec_root.submodule_search_locations))) / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_diversity_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def texts() -> list[str]:
    path = PREDICTIONS / "text-davinci-003_predictions.jsonl"
    if path.exists():
        return [json.loads(line)["response"].strip() for line in path.open()][:40]
    return [
        f"sample {i} says that the {w} jumps over the lazy dog number {i % 7}"
        for i, w in enumerate(["quick fox", "slow cat", "brown bear", "red bird"] * 10)
    ]


def test_self_repetition_equals_package(texts: list[str]) -> None:
    ref = diversity_module("self_repetition").self_repetition_score(texts, verbose=False)
    assert lexical.self_repetition_score(texts) == pytest.approx(ref, rel=1e-12)


def test_compression_ratio_close_to_package(texts: list[str]) -> None:
    ref = diversity_module("compression").compression_ratio(texts)
    assert lexical.compression_ratio(texts) == pytest.approx(ref, rel=0.01)


def test_ngram_diversity_equals_package_on_one_document(texts: list[str]) -> None:
    doc = [" ".join(" ".join(texts).split())]
    ref = diversity_module("ngram_diversity").ngram_diversity_score(doc)
    assert lexical.ngram_diversity_score(doc) == pytest.approx(ref, abs=1e-3)
    # across documents the package also counts n-grams spanning two documents: close, not equal
    many = diversity_module("ngram_diversity").ngram_diversity_score(texts)
    assert lexical.ngram_diversity_score(texts) == pytest.approx(many, rel=0.03)


def test_ngram_diversity_ignores_document_order(texts: list[str]) -> None:
    assert lexical.ngram_diversity_score(texts) == pytest.approx(lexical.ngram_diversity_score(texts[::-1]))


def test_homogenization_rougel_equals_package(texts: list[str]) -> None:
    ref = diversity_module("homogenization").homogenization_score(texts[:25], "rougel", verbose=False)
    assert lexical.homogenization_rougel(texts[:25]) == pytest.approx(ref, abs=6e-4)  # package rounds to 3


def test_lcs_matches_rouge_score() -> None:
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    a = ["the", "cat", "sat", "on", "the", "mat", "today"]
    b = ["a", "cat", "was", "on", "a", "mat", "the", "day"]
    expected = scorer.score(" ".join(a), " ".join(b))["rougeL"].fmeasure
    assert 2 * lexical.lcs_length(a, b) / (len(a) + len(b)) == pytest.approx(expected)
    assert lexical.lcs_length(list("ABCBDAB"), list("BDCABA")) == 4
    assert lexical.lcs_length([], ["x"]) == 0


def test_homogenization_bleu_equals_nltk_corpus_bleu(texts: list[str]) -> None:
    sample = texts[:15]
    tokens = [lexical.bleu_tokenize(t) for t in sample]
    expected = 0.0
    for i, ref in enumerate(tokens):
        hyps = [t for j, t in enumerate(tokens) if j != i]
        expected += corpus_bleu([[ref]] * len(hyps), hyps)
    assert lexical.homogenization_bleu(sample) == pytest.approx(expected / len(sample), abs=1e-9)


def test_homogenization_orders_identical_above_distinct() -> None:
    same = ["the cat sat on the mat"] * 5
    distinct = [
        "apples grow on trees",
        "rivers flow to seas",
        "stars burn hot gas",
        "dogs chase cats",
        "x y z",
    ]
    assert lexical.homogenization_rougel(same) == pytest.approx(1.0)
    assert lexical.homogenization_bleu(same) == pytest.approx(1.0)
    assert lexical.homogenization_rougel(distinct) < 0.2
    assert lexical.homogenization_bleu(distinct) == 0.0


def test_context_length_and_errors() -> None:
    assert lexical.context_length(["a b c", "d"]) == 2.0
    assert lexical.context_length(["abc"], tokenize=list) == 3.0
    with pytest.raises(ValueError, match="empty"):
        lexical.compression_ratio([])
    with pytest.raises(ValueError, match="two texts"):
        lexical.homogenization_rougel(["only one"])


def test_pairwise_cap_samples_reproducibly(texts: list[str]) -> None:
    a = lexical.homogenization_rougel(texts, max_texts=10, seed=3)
    assert a == lexical.homogenization_rougel(texts, max_texts=10, seed=3)
    assert a != lexical.homogenization_rougel(texts, max_texts=10, seed=4)
