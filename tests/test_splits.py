"""Validation-set construction: stratification with floors, stages, held-out combinations, OOD, gold."""

from __future__ import annotations

import dataclasses
import json
import random
from collections import Counter

import pytest

from synthdspy.training.documents import Document, SourceError, SourceSpec
from synthdspy.training.splits import HoldoutSpec, ValidationSpec, build_splits, stratified_split, tail_split


def labelled_docs(n: int = 400, seed: int = 0) -> list[Document]:
    """Docs with a skewed Format dimension (2% 'Rare'), a balanced Ambiguity Level and 3 stages."""
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        fmt = "Rare" if i % 50 == 0 else rng.choice(["Q&A Direct", "Q&A Direct", "Structured Prose"])
        amb = ["Low", "Moderate", "High"][i % 3]
        docs.append(
            Document(f"doc {i} {fmt} {amb}", "gen", i, {"Format": fmt, "Ambiguity Level": amb}, stage=i % 3)
        )
    return docs


def test_stratified_split_keeps_rare_values_and_the_target_proportions():
    docs = labelled_docs()
    train, val = stratified_split(docs, 0.1, floor=3, max_value_share=0.5, rng=random.Random(1))
    assert len(train) + len(val) == len(docs)
    assert {d.index for d in train}.isdisjoint(d.index for d in val)
    val_fmt = Counter(d.dimensions["Format"] for d in val)
    # 8 rare docs in total: the floor puts 3 in validation (a plain 10% draw expects 0.8)
    assert val_fmt["Rare"] == 3
    assert Counter(d.dimensions["Format"] for d in train)["Rare"] == 5
    assert 40 <= len(val) <= 46
    common = Counter(d.dimensions["Format"] for d in docs)
    share_pool = common["Q&A Direct"] / len(docs)
    assert abs(val_fmt["Q&A Direct"] / len(val) - share_pool) < 0.12
    assert set(Counter(d.stage for d in val)) == {0, 1, 2}  # every stage appears without a floor for it


def test_the_validation_draw_does_not_depend_on_curriculum_stages():
    docs = labelled_docs()
    restaged = [dataclasses.replace(d, stage=(d.index * 7) % 4) for d in docs]
    draws = [stratified_split(ds, 0.1, floor=3, max_value_share=0.5, rng=random.Random(1))[1]
             for ds in (docs, restaged)]
    assert [d.index for d in draws[0]] == [d.index for d in draws[1]]


def test_every_curriculum_stage_gets_validation_documents_without_changing_the_group_draw():
    docs = [Document(f"text {i}", "h", i, stage=i // 4) for i in range(12)]  # 4 per stage, 1 drawn
    spec = ValidationSpec(fraction=0.1, floor=2, seed=3)
    plain = build_splits(docs, spec, None)
    staged = build_splits(docs, spec, ["Foundations", "Skill Building", "Advanced Integration"])
    assert [d.index for d in staged.evals["val/h"]] == [d.index for d in plain.evals["val/h"]]
    for stage in ("Foundations", "Skill Building", "Advanced Integration"):
        members = staged.evals[f"stage/{stage}"]
        assert len(members) == 2 and len({d.stage for d in members}) == 1
    held = {d.index for name, ds in staged.evals.items() for d in ds}
    assert held.isdisjoint(d.index for d in staged.train)
    assert {d.stage for d in staged.train} == {0, 1, 2}  # every stage keeps training documents


def test_stratified_split_caps_a_value_so_training_keeps_it():
    docs = labelled_docs(100)  # 2 'Rare' docs: floor 5 but at most half of them may leave training
    train, val = stratified_split(docs, 0.1, floor=5, max_value_share=0.5, rng=random.Random(0))
    assert Counter(d.dimensions["Format"] for d in val)["Rare"] == 1
    assert Counter(d.dimensions["Format"] for d in train)["Rare"] == 1


def test_target_distribution_overrides_the_pool_shares():
    docs = labelled_docs()
    target = {"Ambiguity Level": {"Low": 0.8, "Moderate": 0.1, "High": 0.1}}
    _, val = stratified_split(docs, 0.2, floor=0, max_value_share=0.5, rng=random.Random(0), target=target)
    amb = Counter(d.dimensions["Ambiguity Level"] for d in val)
    assert amb["Low"] > 2 * amb["High"]


def test_tail_split_is_nanogpt_slicing_for_one_document():
    text = "".join(chr(97 + i % 26) for i in range(1003))
    train, val = tail_split([Document(text, "s", 0)], 0.1)
    n = len(text)
    assert train[0].text == text[: int(n * 0.9)] and val[0].text == text[int(n * 0.9) :]
    docs = [Document("x" * 40, "s", i) for i in range(10)]
    tr, va = tail_split(docs, 0.25)  # cut at 300 of 400 characters: mid document 7
    assert [d.index for d in tr] == list(range(8)) and [d.index for d in va] == [7, 8, 9]
    assert sum(len(d.text) for d in va) == 100


def test_build_splits_names_holds_out_combinations_and_loads_probes(tmp_path):
    ood = tmp_path / "ood.txt"
    ood.write_text("probe one\n\nprobe two\n", encoding="utf-8")
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"text": "a gold example"}) + "\n", encoding="utf-8")
    spec = ValidationSpec(
        fraction=0.1,
        floor=2,
        holdout=[HoldoutSpec(name="hard", match={"Ambiguity Level": "High", "Format": "Structured Prose"})],
        ood=[SourceSpec(name="odd", path=str(ood))],
        gold=SourceSpec(name="gold", path=str(gold), format="jsonl"),
    )
    docs = labelled_docs() + [Document(f"other {i}", "real", i) for i in range(30)]
    splits = build_splits(docs, spec, ["Foundations", "Skill Building", "Advanced Integration"])
    names = set(splits.evals)
    assert {"val/gen", "val/real", "heldout/hard", "ood/odd", "gold"} <= names
    assert {"stage/Foundations", "stage/Skill Building", "stage/Advanced Integration"} <= names
    held = splits.evals["heldout/hard"]
    assert held and all(
        d.dimensions == {"Ambiguity Level": "High", "Format": "Structured Prose"} for d in held
    )
    train_keys = {(d.group, d.index) for d in splits.train}
    for name, members in splits.evals.items():
        if name.startswith(("val/", "heldout/", "stage/")):
            assert train_keys.isdisjoint((d.group, d.index) for d in members), name
    assert not any(
        d.dimensions.get("Ambiguity Level") == "High" and d.dimensions.get("Format") == "Structured Prose"
        for d in splits.train
    )
    assert [d.text for d in splits.evals["ood/odd"]] == ["probe one", "probe two"]
    assert (
        len(splits.train) + sum(len(splits.evals[n]) for n in names if n.startswith("val/")) + len(held)
        == 430
    )


def test_build_splits_errors_name_the_problem():
    with pytest.raises(SourceError, match="group 'solo'.*tail"):
        build_splits([Document("only one", "solo", 0)], ValidationSpec(), None)
    spec = ValidationSpec(holdout=[HoldoutSpec(name="none", match={"Format": "Poetry"})])
    with pytest.raises(SourceError, match="holdout.none"):
        build_splits(labelled_docs(30), spec, None)
