"""Embedding metrics (Vendi, k-means), the sentence encoder, and perplexity on a tiny local GPT-2."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synthdspy.metrics.diversity import embedding, perplexity


def test_vendi_score_bounds() -> None:
    assert embedding.vendi_score(np.tile([[1.0, 0.0, 0.0]], (5, 1))) == pytest.approx(1.0)
    assert embedding.vendi_score(np.eye(4)) == pytest.approx(4.0)
    two_kinds = np.array([[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 3)
    assert embedding.vendi_score(two_kinds) == pytest.approx(2.0)


def test_vendi_matches_kernel_definition() -> None:
    x = np.random.default_rng(0).normal(size=(30, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    eig = np.linalg.eigvalsh(x @ x.T / len(x))
    eig = eig[eig > 1e-12]
    assert embedding.vendi_score(x) == pytest.approx(math.exp(-np.sum(eig * np.log(eig))), rel=1e-9)


def test_kmeans_score_separates_tight_from_spread() -> None:
    rng = np.random.default_rng(0)
    centers = np.eye(16)[:3]
    tight = centers[rng.integers(0, 3, 60)] + rng.normal(scale=0.01, size=(60, 16))
    spread = rng.normal(size=(60, 16))
    for x in (tight, spread):
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert embedding.kmeans_cluster_score(tight, n_clusters=3) < 0.01
    assert embedding.kmeans_cluster_score(spread, n_clusters=3) > 0.5
    assert embedding.default_n_clusters(252) == 25 and embedding.default_n_clusters(5) == 2


def test_sentence_encoder_ranks_paraphrases_closer() -> None:
    vecs = embedding.embed_texts(
        ["A dog runs in the park.", "A puppy is running in a park.", "Tax law changed."]
    )
    assert vecs.shape == (3, 384)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.3
    assert embedding.vendi_score(vecs) < 3


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> str:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny_gpt2")
    words = ["<unk>", "the", "cat", "sat", "on", "mat", "dog", "ran", "far", "away"]
    raw = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>").save_pretrained(path)
    torch.manual_seed(0)
    GPT2LMHeadModel(
        GPT2Config(vocab_size=len(words), n_positions=32, n_embd=16, n_layer=1, n_head=2)
    ).save_pretrained(path)
    return str(path)


def test_perplexity_matches_manual_cross_entropy(tiny_gpt2: str) -> None:
    import torch

    model, tokenizer = perplexity.load_causal_lm(tiny_gpt2)
    texts = ["the cat sat on the mat", "dog ran far away"]
    nll, count = 0.0, 0
    for text in texts:
        ids = tokenizer(text, return_tensors="pt")["input_ids"]
        logits = model(ids).logits[0, :-1]
        nll += float(torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="sum"))
        count += ids.shape[1] - 1
    value = perplexity.perplexity(texts, tiny_gpt2)
    assert value == pytest.approx(math.exp(nll / count), rel=1e-5)
    assert 1 < value < 2 * 10  # a random model is near uniform over 10 words
    assert perplexity.perplexity_gap(texts, tiny_gpt2, tiny_gpt2) == pytest.approx(0.0)


def test_perplexity_errors(tiny_gpt2: str, tmp_path: object) -> None:
    with pytest.raises(FileNotFoundError, match="config.json"):
        perplexity.perplexity(["x"], str(tmp_path))
    with pytest.raises(ValueError, match="two tokens"):
        perplexity.perplexity(["cat"], tiny_gpt2)
