"""Tokenizers and document sources."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synthdspy.training.documents import SourceError, SourceSpec, load_source, split_text
from synthdspy.training.tokenizer import (
    EOT,
    BpeTokenizer,
    ByteTokenizer,
    TokenizerSpec,
    build_tokenizer,
    load_tokenizer,
    save_tokenizer,
)


def test_byte_tokenizer_round_trips_unicode_and_eot():
    tok = ByteTokenizer()
    ids = tok.encode("héllo ✓")
    assert ids.dtype == np.int32 and len(ids) == len("héllo ✓".encode()) and ids.max() < 256
    assert tok.decode([*ids.tolist(), tok.eot_id, *tok.encode("x").tolist()]) == f"héllo ✓{EOT}x"


def test_char_tokenizer_vocab_from_training_text_with_unk():
    tok = build_tokenizer(TokenizerSpec(kind="char"), ["abca", "cab!"])
    assert tok.chars == ["!", "a", "b", "c"] and tok.vocab_size == 6 and tok.eot_id == 5
    assert tok.encode("cab").tolist() == [3, 1, 2]
    assert tok.encode("z").tolist() == [tok.unk_id]
    assert tok.decode([*tok.encode("abc").tolist(), tok.eot_id]) == "abc" + EOT


def test_bpe_is_trained_locally_and_cached(tmp_path):
    texts = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"] * 50
    spec = TokenizerSpec(kind="bpe", vocab_size=300, cache_dir=str(tmp_path))
    tok = build_tokenizer(spec, texts)
    assert isinstance(tok, BpeTokenizer) and tok.vocab_size <= 300
    assert len(tok.encode("the cat sat")) < len("the cat sat")  # merges learned
    assert tok.decode(tok.encode("the dog, ünïcode")) == "the dog, ünïcode"
    cached = list(tmp_path.glob("bpe-*.json"))
    assert len(cached) == 1
    again = BpeTokenizer.train(texts, 300, tmp_path)
    assert again.encode("the log").tolist() == tok.encode("the log").tolist()
    assert len(list(tmp_path.glob("bpe-*.json"))) == 1


@pytest.mark.parametrize("kind", ["byte", "char", "bpe"])
def test_saved_tokenizer_loads_back_with_the_same_ids(tmp_path, kind):
    texts = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"] * 50
    tok = build_tokenizer(TokenizerSpec(kind=kind, vocab_size=300, cache_dir=str(tmp_path)), texts)
    again = load_tokenizer(save_tokenizer(tok, tmp_path / "tokenizer.json"))
    assert (again.name, again.vocab_size, again.eot_id) == (tok.name, tok.vocab_size, tok.eot_id)
    assert again.encode("the dog sat, zebra").tolist() == tok.encode("the dog sat, zebra").tolist()


def test_a_file_that_is_not_a_saved_tokenizer_is_named(tmp_path):
    bad = tmp_path / "tokenizer.json"
    bad.write_text('{"chars": []}')
    with pytest.raises(ValueError, match=r"tokenizer\.json: not a saved tokenizer"):
        load_tokenizer(bad)


def test_text_splitting_modes():
    text = "para one\nline two\n\n  \n\npara two\n\n\npara three"
    assert split_text(text, SourceSpec(name="s", path="x")) == [
        "para one\nline two",
        "para two",
        "para three",
    ]
    assert split_text(text, SourceSpec(name="s", path="x", split="none")) == [text]
    chunks = split_text("abcdefg", SourceSpec(name="s", path="x", split="chunk", chunk_chars=3))
    assert chunks == ["abc", "def", "g"]
    assert split_text(text, SourceSpec(name="s", path="x", min_chars=9)) == [
        "para one\nline two",
        "para three",
    ]


def test_jsonl_source_template_group_by_and_labels(tmp_path):
    path = tmp_path / "recs.jsonl"
    rows = [
        {"q": "1+1?", "a": "2", "src": "wiki", "dims": {"Ambiguity Level": "Low"}, "d": 0.2},
        {"q": "2+2?", "a": "4", "src": "news", "dims": {"Ambiguity Level": "High"}, "d": 0.9},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    spec = SourceSpec(
        name="math",
        path=str(path),
        format="jsonl",
        template="Q: {q}\nA: {a}",
        group_by="src",
        dimensions_field="dims",
        difficulty_field="d",
    )
    docs = load_source(spec)
    assert [d.text for d in docs] == ["Q: 1+1?\nA: 2", "Q: 2+2?\nA: 4"]
    assert [d.group for d in docs] == ["math/wiki", "math/news"] and docs[0].source == "math"
    assert docs[1].dimensions == {"Ambiguity Level": "High"} and docs[1].difficulty == 0.9


def test_source_errors_name_file_line_and_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"q": "x"}\n{not json}\n', encoding="utf-8")
    good = tmp_path / "good.jsonl"
    good.write_text('{"q": "x"}\n', encoding="utf-8")
    with pytest.raises(SourceError, match=r"good.jsonl: record 1: template .* needs field 'a'"):
        load_source(SourceSpec(name="b", path=str(good), format="jsonl", template="{q} {a}"))
    with pytest.raises(SourceError, match=r"sources.b: .*bad.jsonl: line 2: not valid JSON"):
        load_source(SourceSpec(name="b", path=str(path), format="jsonl", template="{q}"))
    with pytest.raises(SourceError, match="sources.c.path: no file matches"):
        load_source(SourceSpec(name="c", path=str(tmp_path / "*.nothing")))
    with pytest.raises(SourceError, match="names no field"):
        load_source(SourceSpec(name="d", path=str(path), format="jsonl", template="plain"))


def test_real_corpora_load(tmp_path, shared_data):
    wiki = SourceSpec(name="wikitext", path=str(shared_data("../shared/data/wikitext2/*.txt")), min_chars=40, limit=50)
    docs = load_source(wiki)
    assert len(docs) == 50 and all(len(d.text) >= 40 for d in docs)
    passages = load_source(
        SourceSpec(
            name="passages", path="../shared/data/passages/passages.jsonl", format="jsonl", group_by="source"
        )
    )
    assert {d.group for d in passages} == {
        f"passages/{s}" for s in ("wikipedia", "cnn_dailymail", "xsum", "multi_news")
    }
