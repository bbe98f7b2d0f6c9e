"""The ``pretraining`` and ``variation`` tasks and the ``builtin:dimensions`` seed source, on the simulator."""

from __future__ import annotations

import json
from collections import Counter

import dspy
import pytest
from dspy.utils.exceptions import AdapterParseError
from pydantic import ValidationError

from synthdspy.config import SeedsConfig
from synthdspy.records import Record, Seed
from synthdspy.seeds.catalog import load_dimensions
from synthdspy.seeds.loading import load_seeds
from synthdspy.seeds.source import experiment_seeds
from synthdspy.simulator import SimLM
from synthdspy.tasks.pretraining import PretrainingParams, PretrainingTask, word_cap
from synthdspy.tasks.variation import VariationParams, VariationTask

CATALOG = {d.name: d for d in load_dimensions()}


def last_prompt(lm: SimLM) -> str:
    return "\n".join(str(m["content"]) for m in lm.history[-1]["messages"])


def dimension_seeds(n: int, sampling_seed: int = 0) -> list[Seed]:
    return experiment_seeds(SeedsConfig(source="builtin:dimensions", sampling_seed=sampling_seed), n)


def test_word_cap_is_65_percent_of_the_sequence_length():
    assert word_cap(1024) == 665
    assert word_cap(100) == 65


def test_builtin_dimensions_seeds_carry_valid_values_details_and_a_topic():
    seeds = dimension_seeds(12)
    assert seeds == dimension_seeds(12), "same sampling seed, same draws"
    assert seeds != dimension_seeds(12, sampling_seed=1)
    assert len({s.id for s in seeds}) == 12
    for seed in seeds:
        dims = seed.data["dimensions"]
        assert list(dims) == list(CATALOG)
        for name, value in dims.items():
            assert value in {v.name for v in CATALOG[name].values}
        assert [(d["dimension"], d["value"]) for d in seed.data["dimension_details"]] == list(dims.items())
        assert seed.data["topic"] and seed.data["keywords"]


def test_prompt_carries_every_target_value_and_the_word_cap():
    seed = dimension_seeds(1)[0]
    lm = SimLM("sim/default")
    with dspy.context(lm=lm):
        (record,) = PretrainingTask(max_seq_len=2000)(seed)
    prompt = last_prompt(lm)
    for row in seed.data["dimension_details"]:
        assert row["instructions"] in prompt and row["meaning"] in prompt
    assert str(word_cap(2000)) in prompt and seed.data["topic"] in prompt
    assert record.dimensions == seed.data["dimensions"]
    assert record.output and record.metadata["max_words"] == word_cap(2000)
    assert record.metadata["word_count"] == len(record.output.split())


def test_share_overrides_redraw_only_the_named_dimensions():
    seeds = dimension_seeds(200)
    task = PretrainingTask(shares={"Style": {"Critical": 1.0}})
    drawn = [task.dimensions_for(s) for s in seeds]
    assert all(d["Style"] == "Critical" for d in drawn)
    for seed, dims in zip(seeds, drawn, strict=True):
        assert {k: v for k, v in dims.items() if k != "Style"} == {
            k: v for k, v in seed.data["dimensions"].items() if k != "Style"
        }
    half = PretrainingTask(shares={"Style": {"Critical": 1, "Empathetic/Personal": 1}})
    counts = Counter(half.dimensions_for(s)["Style"] for s in seeds)
    assert set(counts) == {"Critical", "Empathetic/Personal"}
    assert 0.38 < counts["Critical"] / 200 < 0.62


def test_seed_without_dimensions_gets_a_full_deterministic_draw():
    seed = Seed.from_data({"instruction": "Why do dogs bark?"})
    task = PretrainingTask()
    dims = task.dimensions_for(seed)
    assert list(dims) == list(CATALOG) and dims == PretrainingTask().dimensions_for(seed)
    partial = Seed.from_data({"topic": "Tides", "dimensions": {"Style": "Critical"}})
    assert task.dimensions_for(partial)["Style"] == "Critical"


def test_bad_shares_and_bad_seeds_fail_clearly():
    with pytest.raises(ValidationError, match="Stlye"):
        PretrainingParams.model_validate({"shares": {"Stlye": {"Critical": 1.0}}})
    with pytest.raises(ValidationError, match="Sarcastic"):
        PretrainingParams.model_validate({"shares": {"Style": {"Sarcastic": 1.0}}})
    task = PretrainingTask()
    with pytest.raises(KeyError, match="needs 'topic' or 'instruction'"):
        task(Seed.from_data({"source": "x"}))
    with pytest.raises(ValueError, match="unknown dimension"):
        task.dimensions_for(Seed.from_data({"topic": "t", "dimensions": {"Mood": "Happy"}}))
    with dspy.context(lm=SimLM("sim/default")), pytest.raises(KeyError, match="no value 'Sarcastic'"):
        task(Seed(id="s1", data={"topic": "t", "dimensions": {"Style": "Sarcastic"}}))


def test_pretraining_malformed_answer_raises():
    with dspy.context(lm=SimLM("sim/default", malformed_rate=1.0, cache=False)), pytest.raises(AdapterParseError):
        PretrainingTask()(dimension_seeds(1)[0])


# ------------------------------------------------------------------------------------- variation


def stored_records(tmp_path, n: int = 4):
    """A previous run's records.jsonl: pretraining records with their dimensions."""
    with dspy.context(lm=SimLM("sim/default")):
        task = PretrainingTask()
        records = [r for s in dimension_seeds(n) for r in task(s)]
    path = tmp_path / "records.jsonl"
    path.write_text("".join(r.model_dump_json() + "\n" for r in records))
    return records, path


def test_variation_of_stored_records_changes_one_dimension_and_keeps_the_rest(tmp_path):
    records, path = stored_records(tmp_path)
    seeds = load_seeds(path)
    task = VariationTask(dimension="Style")
    with dspy.context(lm=SimLM("sim/default")):
        out = [r for s in seeds for r in task(s)]
    assert len(out) == len(records)
    for orig, new in zip(records, out, strict=True):
        assert new.metadata["original_id"] == orig.id
        assert new.metadata["original_value"] == orig.dimensions["Style"] != new.dimensions["Style"]
        assert new.dimensions == {**orig.dimensions, "Style": new.metadata["target_value"]}
        assert new.input == orig.output and new.instruction == orig.instruction and new.output


def test_variation_targets_spread_over_other_values_and_a_fixed_target_is_used():
    seed = Seed(id="p1", data={"source": "Tides rise twice a day.", "dimensions": {"Style": "Critical"}})
    task = VariationTask(dimension="Style")
    targets = {task.pick_target("Critical", seed, r) for r in range(30)}
    assert targets == {v.name for v in CATALOG["Style"].values} - {"Critical"}
    fixed = VariationTask(dimension="Style", target="Critical")
    assert fixed(seed) == [], "a seed already at the target has nothing to vary"
    passage = Seed(id="p2", data={"source": "Tides rise twice a day because of the moon."})
    with dspy.context(lm=SimLM("sim/default")):
        (rec,) = fixed(passage)
    assert rec.dimensions == {"Style": "Critical"} and rec.metadata["original_value"] is None
    assert rec.input == passage.data["source"]


def test_variation_reads_dimensions_from_json_strings_and_rejects_bad_params():
    seed = Seed(id="r", data={"output": "Text.", "dimensions": json.dumps({"Format": "Q&A Direct"})})
    with dspy.context(lm=SimLM("sim/default")):
        (rec,) = VariationTask(dimension="Format", target="Structured Prose")(seed)
    assert rec.dimensions == {"Format": "Structured Prose"}
    with pytest.raises(ValidationError, match="unknown dimension"):
        VariationParams(dimension="Mood")
    with pytest.raises(ValidationError, match="not a value of 'Style'"):
        VariationParams(dimension="Style", target="Sarcastic")
    with pytest.raises(KeyError, match="needs 'output'"):
        VariationTask()(Seed(id="x", data={"topic": "t"}))


def test_variation_malformed_answer_raises():
    seed = Seed(id="m", data={"source": "A passage about tides and the moon."})
    with dspy.context(lm=SimLM("sim/default", malformed_rate=1.0, cache=False)), pytest.raises(AdapterParseError):
        VariationTask()(seed)


def test_record_ids_are_stable_across_task_objects():
    seed = dimension_seeds(1)[0]
    with dspy.context(lm=SimLM("sim/default")):
        a = PretrainingTask()(seed)[0]
        b = PretrainingTask()(seed)[0]
    assert isinstance(a, Record) and a.id == b.id and a.output == b.output
