"""Streams: sampling proportions, curriculum pacing, repeat caps, resume state, split isolation."""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pytest

from synthdspy.training.config import TrainConfig
from synthdspy.training.curriculum import StrictSchedule
from synthdspy.training.data import prepare
from synthdspy.training.documents import Document
from synthdspy.training.streams import MixtureStream, StreamExhausted, build_cells, make_eval_set, pack
from synthdspy.training.tokenizer import ByteTokenizer

TOK = ByteTokenizer()


def docs_for(group: str, n: int, stages: int = 1, length: int = 300) -> list[Document]:
    return [Document(f"{group}-{i} " + "x" * length, group, i, stage=i % stages) for i in range(n)]


def stream(cells, weights, stage_weights=lambda step: [1.0], seed=0, batch=32, groups=None):
    groups = groups or {c.group: 1.0 for c in cells}
    return MixtureStream(cells, weights, groups, stage_weights, block_size=16, batch_size=batch, seed=seed)


def test_observed_proportions_match_mixture_weights():
    docs = docs_for("a", 20) + docs_for("b", 200) + docs_for("c", 5)
    cells = build_cells(docs, TOK, 16, {})
    s = stream(cells, {"a": 0.6, "b": 0.3, "c": 0.1})
    for step in range(300):
        s.batch(step)
    observed = {c.source: n / s.rows.sum() for c, n in zip(s.cells, s.rows, strict=True)}
    for source, w in {"a": 0.6, "b": 0.3, "c": 0.1}.items():
        assert abs(observed[source] - w) < 0.02, (source, observed)


def test_group_weights_split_a_source_and_stage_schedule_is_followed():
    docs = docs_for("p/x", 30, stages=3) + docs_for("p/y", 30, stages=3)
    cells = build_cells(docs, TOK, 16, {})
    assert {c.source for c in cells} == {"p"} and len(cells) == 6
    strict = StrictSchedule([0.5, 0.25, 0.25], 100)
    s = stream(cells, {"p": 1.0}, strict.weights, groups={"p/x": 3.0, "p/y": 1.0})
    stages_seen = []
    for step in range(100):
        before = s.rows.copy()
        s.batch(step)
        drawn = s.rows - before
        stages_seen.append({c.stage for c, n in zip(s.cells, drawn, strict=True) if n})
    assert all(st == {0} for st in stages_seen[:50])
    assert all(st == {1} for st in stages_seen[50:75])
    assert all(st == {2} for st in stages_seen[75:])
    by_group = Counter()
    for c, n in zip(s.cells, s.rows, strict=True):
        by_group[c.group] += n
    assert abs(by_group["p/x"] / sum(by_group.values()) - 0.75) < 0.03


def test_max_repeats_caps_a_small_source_then_exhausts():
    docs = docs_for("big", 50) + docs_for("small", 2, length=100)
    cells = build_cells(docs, TOK, 16, {"small": 1.0})
    small = next(c for c in cells if c.source == "small")
    s = stream(cells, {"big": 0.5, "small": 0.5})
    for step in range(200):
        s.batch(step)
    assert small.served <= small.budget + 16 * 32  # at most one batch past its budget
    assert small.served >= small.budget  # it was used up, after which only "big" is sampled
    only_small = stream(
        build_cells(docs_for("small", 2, length=100), TOK, 16, {"small": 1.0}), {"small": 1.0}
    )
    with pytest.raises(StreamExhausted):
        for step in range(100):
            only_small.batch(step)


def test_state_dict_resumes_the_same_batches():
    cells = build_cells(docs_for("a", 10) + docs_for("b", 10), TOK, 16, {})
    s1 = stream(cells, {"a": 1, "b": 1}, seed=3)
    for step in range(5):
        s1.batch(step)
    state = json.loads(json.dumps(s1.state_dict()))
    expected = [s1.batch(step)[0] for step in range(5, 8)]
    s2 = stream(build_cells(docs_for("a", 10) + docs_for("b", 10), TOK, 16, {}), {"a": 1, "b": 1}, seed=99)
    s2.load_state_dict(state)
    for step, want in zip(range(5, 8), expected, strict=True):
        assert np.array_equal(s2.batch(step)[0].numpy(), want.numpy())


def test_pack_repeats_short_data_and_eval_windows_are_fixed():
    arr = pack([Document("ab", "g", 0)], TOK, 10)
    assert len(arr) >= 10 and TOK.decode(arr[:5]) == "ab<|endoftext|>ab"
    docs = docs_for("v", 40)
    e1 = make_eval_set("val/v", docs, TOK, 16, 8)
    e2 = make_eval_set("val/v", docs, TOK, 16, 8)
    assert e1.x.shape == (8, 16) and np.array_equal(e1.x.numpy(), e2.x.numpy())
    assert np.array_equal(e1.x[:, 1:].numpy(), e1.y[:, :-1].numpy())
    small = make_eval_set("val/small", docs[:2], TOK, 16, 1000)  # every non-overlapping window
    assert small.x.shape[0] == (len(pack(docs[:2], TOK, 17)) - 1) // 16


def test_tokens_per_byte_counts_a_short_split_once(caplog):
    short = [Document("x" * 99, "g", 0)]  # 99 bytes: shorter than one window of 128 + 1
    with caplog.at_level("WARNING"):
        ev = make_eval_set("val/short", short, TOK, 128, 8)
    assert ev.tokens_per_byte == pytest.approx(1.0)  # byte tokenizer: one token per byte
    assert "less than one window" in caplog.text
    long = make_eval_set("val/long", [Document("x" * 999, "g", 0)], TOK, 128, 8)
    assert long.tokens_per_byte == pytest.approx(1.0)


def test_validation_and_heldout_documents_never_reach_training_batches(tmp_path):
    rows = []
    for i in range(300):
        amb = ["Low", "Moderate", "High"][i % 3]
        rows.append(
            {"text": f"<doc{i:04d}> " + "lorem ipsum " * (i % 7 + 1), "dims": {"Ambiguity Level": amb}}
        )
    path = tmp_path / "gen.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    cfg = TrainConfig.model_validate(
        {
            "sources": [{"name": "gen", "path": str(path), "format": "jsonl", "dimensions_field": "dims"}],
            "model": {"block_size": 32},
            "trainer": {"max_steps": 50, "batch_size": 16},
            "curriculum": {"difficulty": {"by": "dimensions"}, "schedule": {"kind": "linear", "c0": 0.3}},
            "validation": {
                "fraction": 0.1,
                "holdout": [{"name": "mod", "match": {"Ambiguity Level": "Moderate"}}],
            },
        }
    )
    data = prepare(cfg)
    train_ids = {int(re.search(r"doc(\d+)", d.text).group(1)) for d in data.splits.train}
    held_ids = {int(re.search(r"doc(\d+)", d.text).group(1)) for d in data.splits.evals["heldout/mod"]}
    val_ids = {int(re.search(r"doc(\d+)", d.text).group(1)) for d in data.splits.evals["val/gen"]}
    assert len(held_ids) == 100 and val_ids and train_ids.isdisjoint(val_ids | held_ids)
    s = data.stream(cfg)
    seen: set[int] = set()
    for step in range(cfg.total_steps):
        x, y = s.batch(step)
        for row in np.concatenate([x.numpy(), y.numpy()[:, -1:]], axis=1):
            seen.update(int(m) for m in re.findall(r"<doc(\d{4})>", data.tokenizer.decode(row)))
    assert seen and seen <= train_ids
    assert seen.isdisjoint(val_ids | held_ids)
