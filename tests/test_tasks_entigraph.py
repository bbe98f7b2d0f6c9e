"""The ``entigraph`` task: entity-group sampling, records and failures. Pipeline tests: the LM is the
offline simulator (or a scripted entity list), so nothing here says the analyses are any good."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import dspy
import pytest
from dspy.utils.exceptions import AdapterParseError

from synthdspy.catalog import TASKS
from synthdspy.config import load_experiment
from synthdspy.provider_server import ProviderOptions
from synthdspy.records import Seed, SeedFieldError
from synthdspy.sim_server import serve_provider
from synthdspy.simulator import SimLM
from synthdspy.tasks.entigraph import EntiGraphTask, clean_entities, relation_instruction, sample_groups

ROOT = Path(__file__).parent.parent
PASSAGE = (
    "The Orlby dam was finished in 1923 after the river Tamsin flooded the town three years in a row. "
    "It holds back 4.2 million cubic metres of water and feeds two turbines. "
    "Its keeper, Ada Marsh, opens the sluice gates every March before the snow melts."
)
ENTITIES = ["Orlby dam", "river Tamsin", "1923", "turbines", "Ada Marsh", "sluice gates"]
SEED = Seed.from_data({"source": PASSAGE})


def scripted(task: EntiGraphTask, entities: list[str]) -> EntiGraphTask:
    """``task`` with its extraction step answering ``entities`` (the analyses still call the LM)."""
    task.extract = lambda **_: dspy.Prediction(entities=entities)
    return task


def test_clean_entities_strips_dedups_case_insensitively_and_caps():
    names = ["  Ada  Marsh ", "", "ada marsh", "Orlby dam", "River", "Orlby Dam", "1923"]
    assert clean_entities(names, 10) == ["Ada Marsh", "Orlby dam", "River", "1923"]
    assert clean_entities(names, 2) == ["Ada Marsh", "Orlby dam"]


def test_groups_are_deterministic_and_rollouts_cover_new_groups_until_exhausted():
    key = ("entigraph", 0, "seed-a", "pair")
    all_pairs = set(combinations(ENTITIES, 2))  # 15 pairs
    draws = [sample_groups(ENTITIES, 2, 4, key, r) for r in range(4)]
    assert draws == [sample_groups(ENTITIES, 2, 4, key, r) for r in range(4)]
    seen = [g for d in draws[:3] for g in d]
    assert len(seen) == len(set(seen)) == 12 and set(seen) <= all_pairs  # no repeat before exhaustion
    assert len(set(draws[3])) == 4 and set(draws[3]) - set(seen)  # rollout 3 finishes the 15, then wraps
    other_seed = [sample_groups(ENTITIES, 2, 4, ("entigraph", 1, "seed-a", "pair"), r) for r in range(3)]
    assert other_seed != draws[:3]
    assert sample_groups(ENTITIES[:3], 3, 5, key, 0) == [tuple(ENTITIES[:3])]
    assert sample_groups(ENTITIES[:1], 2, 3, key, 0) == [] and sample_groups(ENTITIES, 2, 0, key, 0) == []


def test_records_keep_the_group_relation_and_passage():
    lm = SimLM("sim/default")
    with dspy.context(lm=lm):
        records = scripted(EntiGraphTask(num_pairs=3, num_triples=2, sampling_seed=7), ENTITIES)(SEED, rollout=1)
    assert len(records) == 5 and len(lm.history) == 5  # one analysis call per group (extraction scripted)
    assert [r.metadata["relation"] for r in records] == ["pair"] * 3 + ["triple"] * 2
    for record in records:
        group = record.metadata["entities"]
        assert len(group) == (2 if record.metadata["relation"] == "pair" else 3)
        assert set(group) <= set(ENTITIES) and record.metadata["all_entities"] == ENTITIES
        assert record.input == PASSAGE and record.output and record.task == "entigraph"
        assert record.instruction == relation_instruction(tuple(group))
        assert record.provenance.rollout_id == 1
    assert len({r.id for r in records}) == 5
    expected = sample_groups(ENTITIES, 2, 3, ("entigraph", 7, SEED.id, "pair"), 1)
    assert [tuple(r.metadata["entities"]) for r in records[:3]] == expected
    shown = "\n".join(str(m["content"]) for m in lm.history[0]["messages"])
    assert all(name in shown for name in records[0].metadata["entities"]) and "Ada Marsh" in shown


def test_entity_lists_that_are_too_short_give_fewer_records():
    with dspy.context(lm=SimLM("sim/default")):
        assert scripted(EntiGraphTask(), ["Orlby dam"])(SEED) == []
        two = scripted(EntiGraphTask(num_pairs=3, num_triples=2), ["Orlby dam", "ORLBY DAM", "Ada Marsh"])(SEED)
    assert [r.metadata["entities"] for r in two] == [["Orlby dam", "Ada Marsh"]]


def test_extraction_is_shared_by_the_rollouts_of_a_passage_on_the_simulator():
    lm = SimLM("sim/default")
    with dspy.context(lm=lm):
        first = EntiGraphTask(num_pairs=1, num_triples=0)(SEED, rollout=0)
        second = EntiGraphTask(num_pairs=1, num_triples=0)(SEED, rollout=1)
    assert first and second and first[0].metadata["all_entities"] == second[0].metadata["all_entities"]
    kinds = ["analysis" if "analysis" in str(h["messages"][0]["content"]) else "extract" for h in lm.history]
    assert kinds == ["extract", "analysis", "extract", "analysis"]
    rollout_ids = [h["kwargs"].get("rollout_id") for h in lm.history]
    assert rollout_ids == [None, None, None, 1]  # one entity list per passage; rollouts sample afresh
    assert first[0].id != second[0].id


def test_missing_source_and_malformed_answers_fail_the_unit():
    with dspy.context(lm=SimLM("sim/default")), pytest.raises(SeedFieldError, match="entigraph.*source"):
        EntiGraphTask()(Seed.from_data({"text": PASSAGE}))
    with dspy.context(lm=SimLM("sim/default", malformed_rate=1.0, cache=False)), pytest.raises(AdapterParseError):
        EntiGraphTask()(SEED)


def test_params_are_checked():
    params = TASKS["entigraph"].params
    assert params().model_dump() == {"max_entities": 12, "num_pairs": 3, "num_triples": 1, "sampling_seed": 0}
    with pytest.raises(ValueError, match="max_entities"):
        params(max_entities=1)


def test_experiment_runs_over_http_against_a_provider_with_server_errors(tmp_path, monkeypatch):
    """Pipeline test through dspy.LM -> LiteLLM -> HTTP: 500s are retried, records keep their groups."""
    from synthdspy.pipeline import run_generate

    monkeypatch.setenv("SYNTHDSPY_TEST_KEY", "sk-test-entigraph-0000")
    with serve_provider(provider=ProviderOptions(server_error_rate=0.15, seed=4)) as ep:
        sets = [f"output.dir={json.dumps(str(tmp_path / 'out'))}", "tracking.autolog=false", "seeds.sampling_seed=3"]
        for role in ("generator", "judge"):
            sets += [f"lm.{role}.model=openai/sim-model", f"lm.{role}.api_base={json.dumps(ep.url)}",
                     f"lm.{role}.api_key_env=SYNTHDSPY_TEST_KEY", f"lm.{role}.num_retries=4"]
        out = run_generate(load_experiment(ROOT / "experiments" / "entigraph.toml", sets), n=6, show_progress=False)
        stats = ep.stats()
    assert out.stats.passed >= 6 and out.stats.failed_units == 0
    assert stats["by_status"].get(500, 0) >= 1
    rows = [json.loads(line) for f in (tmp_path / "out/generate/store").glob("records-*.jsonl")
            for line in f.read_text().splitlines()]
    assert rows
    for row in rows:
        meta = row["metadata"] if isinstance(row["metadata"], dict) else json.loads(row["metadata"])
        assert meta["relation"] in ("pair", "triple") and set(meta["entities"]) <= set(meta["all_entities"])
        assert row["input"] and [v["gate"] for v in (row["verdicts"] if isinstance(row["verdicts"], list)
                                                      else json.loads(row["verdicts"]))] == ["grounding"]
