"""The offline simulator as a DSPy LM: identity, typed outputs, usage, determinism, cache, async,
state and prompt parsing."""

import asyncio
import copy
import pickle
from typing import Literal

import dspy
import pydantic
import pytest
from dspy.utils.exceptions import AdapterParseError
from simulator_helpers import ADAPTERS, SOURCE, memory_cache  # noqa: F401 (autouse fixture)

import synthdspy.simulator as simulator_module
from synthdspy.simulator import SIMULATOR_BANNER, SimLM, SimOptions, parse_prompt, simulator_banner


class Item(pydantic.BaseModel):
    question: str
    answer: str
    difficulty: Literal["easy", "hard"]


class Batch(pydantic.BaseModel):
    title: str
    items: list[Item]
    score: float


class AllTypes(dspy.Signature):
    """Write study material from the passage."""

    passage: str = dspy.InputField()
    n: int = dspy.InputField()
    title: str = dspy.OutputField()
    count: int = dspy.OutputField(ge=2, le=4)
    ratio: float = dspy.OutputField(desc="a share from 0 to 1")
    ok: bool = dspy.OutputField()
    label: Literal["pos", "neg", "mixed"] = dspy.OutputField()
    tags: list[str] = dspy.OutputField()
    items: list[Item] = dspy.OutputField()
    batch: Batch = dspy.OutputField()


def test_identity_banner_and_options():
    lm = SimLM("sim/test")
    assert isinstance(lm, dspy.BaseLM) and lm.model == "sim/test"
    assert simulator_banner() == SIMULATOR_BANNER and "NOT a language model" in SIMULATOR_BANNER
    with pytest.raises(ValueError, match="sim/"):
        SimLM("openai/gpt-4o")
    with pytest.raises(pydantic.ValidationError):
        SimOptions(error_rate=0.7, rate_limit_rate=0.5)
    doc = simulator_module.__doc__
    assert "What it is for" in doc and "What it is NOT" in doc and "training data" in doc


@pytest.mark.parametrize("adapter", ADAPTERS, ids=["chat", "json"])
def test_every_output_type_parses(adapter):
    with dspy.context(lm=SimLM(cache=False), adapter=adapter):
        pred = dspy.ChainOfThought(AllTypes)(passage=SOURCE, n=2)
    assert isinstance(pred.reasoning, str) and pred.reasoning
    assert isinstance(pred.title, str) and pred.title
    assert isinstance(pred.count, int) and 2 <= pred.count <= 4
    assert isinstance(pred.ratio, float) and 0.0 <= pred.ratio <= 1.0
    assert isinstance(pred.ok, bool)
    assert pred.label in ("pos", "neg", "mixed")
    assert isinstance(pred.tags, list) and all(isinstance(t, str) for t in pred.tags)
    assert len(pred["items"]) == 2 and all(isinstance(i, Item) for i in pred["items"])
    assert isinstance(pred.batch, Batch) and all(i.question.endswith("?") for i in pred.batch.items)


def test_plain_prompt_and_usage():
    lm = SimLM(cache=False)
    assert isinstance(lm("Say something about bees and flowers.")[0], str)
    with dspy.context(lm=lm, track_usage=True):
        pred = dspy.Predict("question -> answer")(question="How do bees find flowers?")
    usage = pred.get_lm_usage()["sim/default"]
    assert usage["prompt_tokens"] > 20 and usage["completion_tokens"] > 0
    assert lm.history[-1]["cost"] == 0.0


def test_determinism_and_rollouts():
    lm = SimLM(cache=False, temperature=1.0)
    program = dspy.Predict("passage -> summary")
    with dspy.context(lm=lm):
        first = program(passage=SOURCE, config={"rollout_id": 1}).summary
        again = program(passage=SOURCE, config={"rollout_id": 1}).summary
        others = {program(passage=SOURCE, config={"rollout_id": r}).summary for r in range(2, 8)}
    assert first == again
    assert len(others | {first}) >= 4


def test_cache_replays_identical_calls():
    lm = SimLM(cache=True, temperature=1.0)
    program = dspy.Predict("passage -> summary")
    with dspy.context(lm=lm):
        a = program(passage=SOURCE, config={"rollout_id": 7}).summary
        b = program(passage=SOURCE, config={"rollout_id": 7}).summary
        assert sum(lm.simulator.faults.values()) == 1
        program(passage=SOURCE, config={"rollout_id": 8})
    assert a == b and sum(lm.simulator.faults.values()) == 2
    with dspy.context(lm=SimLM(cache=True, temperature=1.0, seed=99)):
        assert program(passage=SOURCE, config={"rollout_id": 7}).summary != a  # the seed is in the cache key


def test_answers_cached_by_another_simulator_build_are_not_replayed(monkeypatch):
    import synthdspy.simulator.engine as engine

    program = dspy.Predict("passage -> summary")
    old = SimLM(cache=True, temperature=1.0)
    with dspy.context(lm=old):
        program(passage=SOURCE, config={"rollout_id": 11})
    assert old.kwargs["user"] == engine.SIMULATOR_BUILD and "user" not in old.dump_state()
    same = SimLM(cache=True, temperature=1.0)
    with dspy.context(lm=same):
        program(passage=SOURCE, config={"rollout_id": 11})
    assert sum(same.simulator.faults.values()) == 0  # served from the cache
    monkeypatch.setattr(engine, "SIMULATOR_BUILD", "synthdspy-simulator/next")
    upgraded = SimLM(cache=True, temperature=1.0)
    with dspy.context(lm=upgraded):
        program(passage=SOURCE, config={"rollout_id": 11})
    assert sum(upgraded.simulator.faults.values()) == 1  # answered afresh


def test_injected_malformed_answers_are_never_replayed_to_a_clean_run():
    program = dspy.Predict("passage -> summary")
    with dspy.context(lm=SimLM(cache=True, temperature=1.0, malformed_rate=1.0)), pytest.raises(AdapterParseError):
        program(passage=SOURCE, config={"rollout_id": 12})
    clean = SimLM(cache=True, temperature=1.0)
    with dspy.context(lm=clean):
        assert program(passage=SOURCE, config={"rollout_id": 12}).summary


@pytest.mark.parametrize("adapter", ADAPTERS, ids=["chat", "json"])
def test_an_empty_last_input_does_not_leak_the_adapter_format_into_answers(adapter):
    with dspy.context(lm=SimLM(cache=False), adapter=adapter):
        answer = dspy.Predict("question, source -> answer")(question="How many clips were sold?", source="").answer
    assert "Respond with" not in answer and "[[ ##" not in answer and "JSON" not in answer
    assert "clips" in answer  # written from the other inputs instead


def test_n_candidates_differ():
    with dspy.context(lm=SimLM(cache=False, temperature=1.0)):
        pred = dspy.Predict("passage -> summary")(passage=SOURCE, config={"n": 4})
    assert len(set(pred.completions.summary)) >= 3


def test_async_call():
    program = dspy.Predict("passage -> title")
    with dspy.context(lm=SimLM(cache=False, latency_s=0.01)):
        pred = asyncio.run(program.acall(passage=SOURCE))
    assert pred.title


def test_parse_prompt_reads_instructions_fields_and_demos():
    demo = dspy.Example(
        passage="p one two",
        n=1,
        title="t",
        count=3,
        ratio=0.5,
        ok=True,
        label="pos",
        tags=["x"],
        items=[],
        batch=Batch(title="b", items=[], score=1.0),
    )
    for adapter in ADAPTERS:
        messages = adapter.format(AllTypes, [demo], {"passage": SOURCE, "n": 2})
        parsed = parse_prompt(messages)
        assert parsed.instructions == "Write study material from the passage."
        assert [f.name for f in parsed.inputs] == ["passage", "n"]
        assert parsed.values == {"passage": SOURCE, "n": 2}
        assert parsed.outputs[4].schema == {"enum": ["pos", "neg", "mixed"]}
        assert parsed.outputs[6].schema["type"] == "array"
        assert parsed.demos[0][1]["count"] == 3


def test_state_round_trip():
    lm = SimLM("sim/x", seed=5, latency_s=0.0, error_rate=0.1, temperature=0.7)
    again = dspy.BaseLM.load_state(lm.dump_state(), allow_custom_lm_class=True)
    assert isinstance(again, SimLM) and again.model == "sim/x"
    assert again.simulator.options == lm.simulator.options and again.kwargs["temperature"] == 0.7
    program = dspy.Predict("passage -> summary")
    answers = []
    for variant in (lm, pickle.loads(pickle.dumps(lm)), copy.deepcopy(lm), lm.copy(rollout_id=3)):
        with dspy.context(lm=variant.copy(cache=False)):
            answers.append(program(passage=SOURCE).summary)
    assert answers[0] == answers[1] == answers[2] != answers[3]
