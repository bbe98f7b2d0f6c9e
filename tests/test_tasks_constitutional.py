"""The ``constitutional`` task (critique and revise): the principle list, the draw, the calls and the
two record shapes. Tests that run the offline simulator or the provider-realistic endpoint are
pipeline tests: the texts are the simulator's and say nothing about quality."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import dspy
import pytest
from dspy.utils.dummies import DummyLM
from dspy.utils.exceptions import AdapterParseError

from synthdspy.catalog import GATES, TASKS
from synthdspy.config import LMConfig, load_experiment
from synthdspy.configio import ConfigError
from synthdspy.lm import build_lms, roles_context
from synthdspy.records import Seed, SeedFieldError
from synthdspy.seeds.catalog import CatalogError
from synthdspy.simulator import SimLM
from synthdspy.tasks.constitutional import load_principles

ROOT = Path(__file__).parent.parent
PASSAGE = (
    "The Orlby dam was finished in 1923 after the river Tamsin flooded the town three years in a row. "
    "It holds back 4.2 million cubic metres of water and feeds two turbines. "
    "Its keeper, Ada Marsh, opens the sluice gates every March before the snow melts."
)
SOURCE_SEED = Seed.from_data({"source": PASSAGE})
INSTRUCTION_SEED = Seed.from_data({"instruction": "How do I get back at a neighbour who insulted me?"})
SCRIPT = {"instruction": "Where does Ada Marsh live?", "response": "DRAFT", "critique": "CRITIQUE",
          "revision": "REVISION"}


def build(**params):
    entry = TASKS["constitutional"]
    return entry.cls(**entry.params(**params).model_dump())


@pytest.fixture()
def lms():
    roles = build_lms(LMConfig())
    with roles_context(roles):
        yield roles


def principles_file(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "principles.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


# ---- the principle list -------------------------------------------------------------------------


def test_the_shipped_principles_load_with_distinct_names_and_both_requests():
    principles = load_principles()
    assert len(principles) >= 8
    assert len({p.name for p in principles}) == len(principles)
    assert all(p.critique != p.revision for p in principles)


@pytest.mark.parametrize(("content", "needle"), [
    ("[{\"name\": \"a\",", "not valid JSON (line 1"),
    ([], "expected a non-empty JSON list of principles"),
    ({"name": "a"}, "expected a non-empty JSON list of principles"),
    ([{"name": "a", "critique": "c"}], "principle 0 ('a'): revision: Field required"),
    ([{"name": "a", "critique": "c", "revision": "r", "weight": 2}], "weight: Extra inputs are not permitted"),
    ([{"name": "a", "critique": "c", "revision": "r"}, {"name": "a", "critique": "d", "revision": "s"}],
     "principle names repeat: ['a']"),
])
def test_a_malformed_principles_file_is_one_line_naming_the_file(tmp_path, content, needle):
    path = principles_file(tmp_path, content)
    with pytest.raises(CatalogError) as info:
        load_principles(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)) and needle in message


def test_a_malformed_principles_file_in_an_experiment_is_a_config_error_naming_it(tmp_path):
    path = principles_file(tmp_path, [{"name": "a"}])
    with pytest.raises(ConfigError, match=str(path)):
        load_experiment(ROOT / "experiments" / "constitutional.toml", [f"task.principles_file={json.dumps(str(path))}"])
    with pytest.raises(ConfigError, match="no_such.json: catalog file not found"):
        load_experiment(ROOT / "experiments" / "constitutional.toml", ["task.principles_file='no_such.json'"])


def test_unknown_principle_names_and_emit_values_are_rejected():
    with pytest.raises(ValueError, match=r"principles \['kindness'\] are not in principles.json"):
        TASKS["constitutional"].params(principles=["kindness"])
    with pytest.raises(ValueError):
        TASKS["constitutional"].params(emit="dpo")


# ---- the draw -----------------------------------------------------------------------------------


def test_the_principle_is_drawn_per_seed_and_rollout_reproducibly_and_from_the_allowed_names():
    task = build(principles=["honest", "private", "balanced"])
    seeds = [Seed.from_data({"source": f"{PASSAGE} Note {i}."}) for i in range(30)]
    draws = [task.draw_principle(s, r).name for s in seeds for r in (0, 1)]
    assert set(draws) == {"honest", "private", "balanced"}
    assert draws == [build(principles=["honest", "private", "balanced"]).draw_principle(s, r).name
                     for s in seeds for r in (0, 1)]
    other_seed = [build(principles=["honest", "private", "balanced"], principle_seed=7).draw_principle(s, r).name
                  for s in seeds for r in (0, 1)]
    assert other_seed != draws
    assert [task.draw_principle(s, 0).name for s in seeds] != [task.draw_principle(s, 1).name for s in seeds]


def test_every_shipped_principle_gets_drawn():
    task = build()
    counts = Counter(task.draw_principle(Seed.from_data({"n": i}), 0).name for i in range(400))
    assert set(counts) == {p.name for p in load_principles()}


def test_a_users_principles_file_replaces_the_shipped_list(tmp_path):
    path = principles_file(tmp_path, [{"name": "concise", "critique": "find padding", "revision": "cut it"}])
    with dspy.context(lm=DummyLM([SCRIPT] * 4)):
        [rec] = build(principles_file=str(path))(SOURCE_SEED)
    assert rec.metadata["principle"] == "concise"


# ---- the calls and the records ------------------------------------------------------------------


def test_sft_from_a_passage_chains_request_draft_critique_revision():
    lm = DummyLM([SCRIPT] * 4)
    with dspy.context(lm=lm):
        task = build()
        [rec] = task(SOURCE_SEED)
    principle = task.draw_principle(SOURCE_SEED, 0)
    assert (rec.task, rec.instruction, rec.input, rec.output) == (
        "constitutional", "Where does Ada Marsh live?", PASSAGE, "REVISION")
    assert rec.chosen is None and rec.rejected is None
    assert rec.metadata == {"principle": principle.name, "critique": "CRITIQUE", "emit": "sft",
                            "initial_response": "DRAFT"}
    prompts = [json.dumps(entry["messages"]) for entry in lm.history]
    assert len(prompts) == 4
    assert principle.critique in prompts[2] and "DRAFT" in prompts[2]  # the critique sees the draft
    assert principle.revision in prompts[3] and "CRITIQUE" in prompts[3]  # the revision sees the critique
    assert principle.revision not in prompts[2]


def test_preference_emits_the_revision_as_chosen_and_the_draft_as_rejected():
    with dspy.context(lm=DummyLM([SCRIPT] * 3)):
        [rec] = build(emit="preference")(INSTRUCTION_SEED)
    assert rec.instruction == INSTRUCTION_SEED.data["instruction"] and rec.input == ""
    assert (rec.chosen, rec.rejected, rec.output) == ("REVISION", "DRAFT", "")
    assert rec.response == "REVISION"  # what judges read
    assert rec.metadata["emit"] == "preference" and "initial_response" not in rec.metadata


def test_the_reward_gate_reads_the_pair(lms):
    """Pipeline test on the simulator: the gate judges chosen and rejected, as for ``preference``."""
    [rec] = build(emit="preference")(SOURCE_SEED)
    gate = GATES["reward"].cls(**GATES["reward"].params().model_dump())
    verdict = gate(rec)
    assert "chosen" in verdict.reason and "rejected" in verdict.reason
    assert len(lms.judge.history) == 2


def test_pipeline_on_the_simulator_from_a_passage(lms):
    """Pipeline test: four generator calls per passage, every text non-empty."""
    [rec] = build()(SOURCE_SEED, rollout=2)
    assert rec.instruction and rec.output and rec.metadata["critique"] and rec.metadata["initial_response"]
    assert len(lms.generator.history) == 4
    assert rec.provenance.rollout_id == 2


def test_the_task_needs_an_instruction_or_a_source():
    with pytest.raises(SeedFieldError, match="needs field"):
        build()(Seed.from_data({"topic": "dams"}))


def test_a_malformed_answer_raises_a_parse_error():
    with dspy.context(lm=SimLM("sim/default", malformed_rate=1.0)), pytest.raises(AdapterParseError):
        build()(SOURCE_SEED)


# ---- the shipped experiment, over HTTP ----------------------------------------------------------


@pytest.mark.usefixtures("needs_shared_data")
def test_the_shipped_experiment_runs_over_the_provider_endpoint_with_retries(tmp_path, monkeypatch):
    """Pipeline test on real passages over the provider-realistic endpoint (10% server errors,
    retried): records name their principle and are judged as pairs."""
    from synthdspy.pipeline import run_generate
    from synthdspy.provider_server import ProviderOptions
    from synthdspy.sim_server import serve_provider

    monkeypatch.setenv("CAI_TEST_KEY", "sk-test-0000")
    sets = [f"output.dir={json.dumps(str(tmp_path / 'out'))}", "tracking.autolog=false"]
    with serve_provider(provider=ProviderOptions(server_error_rate=0.1, seed=4)) as ep:
        for role in ("generator", "judge"):
            sets += [f"lm.{role}.model=openai/sim-model", f"lm.{role}.api_base={json.dumps(ep.url)}",
                     f"lm.{role}.api_key_env=CAI_TEST_KEY", f"lm.{role}.num_retries=4", f"lm.{role}.timeout_s=10"]
        out = run_generate(load_experiment(ROOT / "experiments" / "constitutional.toml", sets), n=3,
                           show_progress=False)
        stats = ep.stats()
    assert out.stats.passed >= 3 and out.stats.failed_units == 0 and stats["by_status"].get(500, 0) >= 1
    store = tmp_path / "out" / "generate" / "store"
    records = [json.loads(x) for f in sorted(store.glob("records-*.jsonl")) for x in f.read_text().splitlines()]
    names = {p.name for p in load_principles()}
    assert all(r["metadata"]["principle"] in names and r["metadata"]["critique"] for r in records)
    assert all(r["chosen"] and r["rejected"] and r["instruction"] and r["input"] for r in records)
    assert all(r["verdicts"][0]["gate"] == "reward" for r in records)
    passed = [r for r in records if r["verdicts"][0]["passed"]]
    assert len(passed) >= 3 and all(r["verdicts"][0]["score"] >= 6 for r in passed)
