"""The peer-catalog tasks (preference, grpo, multiturn, evol, adversarial_*) on the offline simulator."""

from __future__ import annotations

import json
from collections import Counter

import dspy
import pytest
from dspy.utils.exceptions import AdapterParseError

from synthdspy.catalog import TASKS
from synthdspy.config import LMConfig
from synthdspy.lm import build_lms, roles_context
from synthdspy.records import Seed
from synthdspy.signatures.conversation import Exchange
from synthdspy.signatures.evol import STRATEGIES
from synthdspy.signatures.preference import DEGRADATIONS
from synthdspy.simulator import SimLM
from synthdspy.tasks.adversarial import EXPECTED_DIAGNOSIS, QA_INJECTIONS, draw_injection
from synthdspy.tasks.common import unit_rng
from synthdspy.tasks.grpo import rollout_temperatures

PASSAGE = (
    "The Orlby dam was finished in 1923 after the river Tamsin flooded the town three years in a row. "
    "It holds back 4.2 million cubic metres of water and feeds two turbines. "
    "Unlike the older weir upstream, the dam was built to control floods rather than to power mills. "
    "Its keeper, Ada Marsh, opens the sluice gates every March before the snow melts."
)
SOURCE_SEED = Seed.from_data({"source": PASSAGE})
INSTRUCTION_SEED = Seed.from_data({"instruction": "Explain why dams have sluice gates.", "input": ""})


def build(name: str, **params):
    entry = TASKS[name]
    return entry.cls(**entry.params(**params).model_dump())


@pytest.fixture()
def lms():
    roles = build_lms(LMConfig())
    with roles_context(roles):
        yield roles


def call_temperatures(lm) -> list[float | None]:
    return [entry["kwargs"].get("temperature", lm.kwargs.get("temperature")) for entry in lm.history]


# ---- preference -----------------------------------------------------------------------------


def test_preference_single_call_from_source(lms):
    [rec] = build("preference")(SOURCE_SEED)
    assert rec.task == "preference" and rec.input == PASSAGE
    assert rec.instruction and rec.chosen and rec.rejected and rec.chosen != rec.rejected
    assert rec.metadata["degradation"] in DEGRADATIONS
    assert len(lms.generator.history) == 1  # one call writes question, chosen and rejected


def test_preference_pattern_is_drawn_per_seed_and_rollout_from_the_allowed_list(lms):
    task = build("preference", degradations=["vague_language", "miss_distinction"])
    seeds = [Seed.from_data({"source": f"{PASSAGE} Note {i}."}) for i in range(12)]
    patterns = [task(s)[0].metadata["degradation"] for s in seeds]
    assert set(patterns) == {"vague_language", "miss_distinction"}
    again = [task(s)[0].metadata["degradation"] for s in seeds]
    assert patterns == again


def test_preference_two_pass_samples_rejected_hotter(lms):
    [rec] = build("preference", mode="two_pass", rejected_temperature_offset=0.3)(SOURCE_SEED)
    assert rec.metadata["rejected_temperature"] == pytest.approx(1.0)  # generator 0.7 + 0.3
    temps = call_temperatures(lms.generator)
    assert len(temps) == 3 and temps[-1] == pytest.approx(1.0) and temps[0] == pytest.approx(0.7)


def test_preference_uses_a_given_instruction_directly(lms):
    [rec] = build("preference")(INSTRUCTION_SEED)
    assert rec.instruction == "Explain why dams have sluice gates." and rec.input == ""
    assert rec.chosen and rec.rejected


def test_preference_needs_source_or_instruction(lms):
    with pytest.raises(KeyError, match="needs field"):
        build("preference")(Seed.from_data({"topic": "dams"}))


# ---- grpo -----------------------------------------------------------------------------------


def test_rollout_temperatures_explicit_list_is_cycled():
    assert rollout_temperatures(5, 0.7, [0.1, 0.9], 0.0) == [0.1, 0.9, 0.1, 0.9, 0.1]


def test_rollout_temperatures_even_spread_around_base():
    temps = rollout_temperatures(5, 0.8, [], 0.4)
    assert temps == pytest.approx([0.6, 0.7, 0.8, 0.9, 1.0])
    assert rollout_temperatures(3, 0.7, [], 0.0) == [0.7, 0.7, 0.7]
    assert rollout_temperatures(3, 1.9, [], 1.0) == pytest.approx([1.4, 1.9, 2.0])  # clipped at 2


def test_grpo_rollouts_sample_separately_at_their_temperatures(lms):
    task = build("grpo", num_responses=4, temperatures=[0.3, 1.1])
    [rec] = task(Seed.from_data({"question": "Tom has 3 apples and buys 4 more. How many?", "answer": "#### 7"}))
    assert len(rec.responses) == 4 and rec.reward_scores is None
    assert rec.metadata["temperatures"] == [0.3, 1.1, 0.3, 1.1]
    assert rec.metadata["gold_answer"] == "#### 7"
    history = lms.generator.history
    assert len(history) == 4
    assert call_temperatures(lms.generator) == [0.3, 1.1, 0.3, 1.1]
    rollout_ids = [entry["kwargs"].get("rollout_id") for entry in history]
    assert len(set(rollout_ids)) == 4  # equal temperatures still get distinct cache entries


def test_grpo_scores_with_the_judge_role_and_keeps_the_scorer_frozen(lms):
    task = build("grpo", num_responses=3, score_responses=True)
    [rec] = task(SOURCE_SEED)
    assert rec.input == PASSAGE and rec.instruction  # a question was written from the source
    assert len(rec.reward_scores) == 3 and all(1 <= s <= 10 for s in rec.reward_scores)
    assert len(lms.judge.history) == 3
    assert not any(name.startswith("scorer") for name, _ in task.named_predictors())


# ---- multiturn ------------------------------------------------------------------------------


def test_multiturn_turn_by_turn_conditions_each_call_on_all_prior_turns(lms):
    [rec] = build("multiturn", num_turns=3)(SOURCE_SEED)
    assert [t["role"] for t in rec.turns] == ["user", "assistant"] * 3
    assert rec.instruction == rec.turns[0]["content"] and rec.output == rec.turns[1]["content"]
    history = lms.generator.history
    assert len(history) == 6  # user then assistant, per exchange
    last_prompt = "\n".join(m["content"] for m in history[-1]["messages"])
    for turn in rec.turns[:-1]:  # every earlier message is in the last reply's prompt (JSON-escaped)
        assert json.dumps(turn["content"])[1:40] in last_prompt


def test_multiturn_single_call_and_given_opening(lms):
    seed = Seed.from_data({"instruction": "Why was the Orlby dam built?", "source": PASSAGE})
    [rec] = build("multiturn", mode="single_call", num_turns=2)(seed)
    assert len(rec.turns) == 4 and rec.turns[0] == {"role": "user", "content": "Why was the Orlby dam built?"}
    assert len(lms.generator.history) == 1


def test_multiturn_single_call_rejects_a_short_conversation(lms):
    task = build("multiturn", mode="single_call", num_turns=4)
    task.write_all = lambda **_: dspy.Prediction(exchanges=[Exchange(user="q", assistant="a")])
    with pytest.raises(ValueError, match="asked for 4 exchanges, the LM wrote 1"):
        task(SOURCE_SEED)


# ---- evol -----------------------------------------------------------------------------------


def test_evol_cycles_strategies_over_variants_and_depth(lms):
    seed = Seed.from_data({"instruction": "Name a fruit.", "input": ""})
    records = build("evol", num_evolutions=3, depth=2)(seed)
    order = list(STRATEGIES)
    assert [r.metadata["strategies"] for r in records] == [order[0:2], order[2:4], [order[4], order[0]]]
    assert all(r.metadata["original"] == "Name a fruit." and r.output for r in records)
    assert len({r.id for r in records}) == 3
    assert len(lms.generator.history) == 3 * 2 + 3  # six evolutions, three answers


def test_evol_without_answers_and_from_a_source(lms):
    records = build("evol", num_evolutions=2, answer=False, strategies=["deepen"])(SOURCE_SEED)
    assert all(r.output == "" and r.input == PASSAGE for r in records)
    assert all(r.metadata["strategies"] == ["deepen"] for r in records)
    assert records[0].instruction != records[0].metadata["original"]


# ---- adversarial ----------------------------------------------------------------------------


def test_draw_injection_rate_and_reproducibility():
    draws = [draw_injection(unit_rng(42, f"s{i}", 0), 0.3, list(QA_INJECTIONS)) for i in range(2000)]
    share = sum(d is not None for d in draws) / len(draws)
    assert 0.26 < share < 0.34
    assert set(Counter(d for d in draws if d)) == set(QA_INJECTIONS)
    assert draws == [draw_injection(unit_rng(42, f"s{i}", 0), 0.3, list(QA_INJECTIONS)) for i in range(2000)]
    assert draws != [draw_injection(unit_rng(7, f"s{i}", 0), 0.3, list(QA_INJECTIONS)) for i in range(2000)]


def test_adversarial_preference_injects_the_chosen_types(lms):
    task = build("adversarial_preference", injection_rate=1.0, injection_types=["parametric_drift"])
    [rec] = task(SOURCE_SEED)
    assert rec.metadata == {"injected_failure": True, "injection_type": "parametric_drift"}
    # the parametric answer is written without the passage
    assert "Ada Marsh" not in json.dumps(lms.generator.history[-1]["messages"])
    assert rec.chosen and rec.rejected and rec.input == PASSAGE


def test_adversarial_preference_clean_pairs_get_an_ordinary_weaker_answer(lms):
    [rec] = build("adversarial_preference", injection_rate=0.0)(SOURCE_SEED)
    assert rec.metadata["injected_failure"] is False and rec.metadata["injection_type"] is None
    assert rec.metadata["degradation"] in DEGRADATIONS


def test_adversarial_preference_labels_are_reproducible_from_the_seed(lms):
    seeds = [Seed.from_data({"source": f"{PASSAGE} Entry {i}."}) for i in range(10)]

    def labels(seed_value: int) -> list:
        task = build("adversarial_preference", injection_rate=0.5, injection_seed=seed_value)
        return [task(s)[0].metadata["injection_type"] for s in seeds]

    assert labels(1) == labels(1)
    assert any(x is not None for x in labels(1)) and any(x is None for x in labels(1))


def test_adversarial_qa_high_temperature_drift(lms):
    task = build("adversarial_qa", num_questions=2, injection_rate=1.0, injection_types=["high_temperature_drift"])
    records = task(SOURCE_SEED)
    assert len(records) == 2
    for rec in records:
        assert rec.metadata["injection_type"] == "high_temperature_drift"
        assert rec.metadata["expected_diagnosis"] == "GENERATOR_TEMPERATURE" and rec.metadata["temperature"] == 1.4
    assert call_temperatures(lms.generator) == [0.7, 1.4, 1.4]


def test_adversarial_qa_all_types_and_clean_labels(lms):
    seeds = [Seed.from_data({"source": f"{PASSAGE} Record {i}."}) for i in range(8)]
    task = build("adversarial_qa", num_questions=3, injection_rate=0.6)
    records = [r for s in seeds for r in task(s)]
    kinds = Counter(r.metadata["injection_type"] for r in records)
    assert None in kinds and len(kinds) >= 4
    for rec in records:
        kind = rec.metadata["injection_type"]
        assert rec.metadata["injected_failure"] is (kind is not None)
        assert rec.metadata["expected_diagnosis"] == (EXPECTED_DIAGNOSIS[kind] if kind else "NONE")
        assert rec.output and rec.instruction and rec.input.startswith(PASSAGE)


def test_adversarial_tasks_need_a_source(lms):
    with pytest.raises(KeyError, match="needs field"):
        build("adversarial_qa")(INSTRUCTION_SEED)
    with pytest.raises(KeyError, match="needs field"):
        build("adversarial_preference")(Seed.from_data({"instruction": "Say hi."}))


# ---- params and malformed answers -----------------------------------------------------------


@pytest.mark.parametrize(("name", "params"), [
    ("grpo", {"num_responses": 1}),
    ("grpo", {"temperatures": [2.5]}),
    ("preference", {"degradations": ["made_up"]}),
    ("evol", {"strategies": ["shorten"]}),
    ("adversarial_qa", {"injection_types": ["contradicts_source", "typo"]}),
    ("adversarial_preference", {"injection_types": ["high_temperature_drift"]}),
    ("multiturn", {"mode": "parallel"}),
])
def test_bad_parameters_are_rejected(name, params):
    with pytest.raises(ValueError):
        TASKS[name].params(**params)


@pytest.mark.parametrize(("name", "params"), [
    ("preference", {}), ("preference", {"mode": "two_pass"}), ("grpo", {}), ("multiturn", {}),
    ("multiturn", {"mode": "single_call"}), ("evol", {}), ("adversarial_preference", {"injection_rate": 1.0}),
    ("adversarial_qa", {"injection_rate": 1.0}),
])
def test_malformed_answers_raise(name, params):
    task = build(name, **params)
    with dspy.context(lm=SimLM("sim/default", malformed_rate=1.0)), pytest.raises(AdapterParseError):
        task(SOURCE_SEED)
