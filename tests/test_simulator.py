"""The offline simulator as a DSPy LM: typed outputs, determinism, knobs, judging, faults, cache."""

import asyncio
import copy
import json
import pickle
import statistics
from pathlib import Path
from typing import Literal

import dspy
import pydantic
import pytest
from dspy.clients.cache import Cache
from dspy.utils.exceptions import AdapterParseError, LMRateLimitError, LMServerError

import synthdspy.simulator as simulator_module
from synthdspy.metrics.diversity.cluster_agent import ClusterAgentConfig, run_cluster_agent
from synthdspy.signatures.diversity import (
    ClusterSamples,
    CondenseCriteria,
    MergeMetadata,
    MergeMetrics,
    ProposeCriteria,
    ProposedCluster,
    VerifyClusters,
)
from synthdspy.signatures.judges import JudgeQuality
from synthdspy.signatures.textbook import WriteLesson
from synthdspy.simulator import (
    SIMULATOR_BANNER,
    SimCall,
    SimLM,
    SimOptions,
    SimulatedRateLimitError,
    SimulatedServerError,
    Simulator,
    debris,
    detect_knobs,
    judge_features,
    overlap,
    parse_prompt,
    repetition,
    similarity,
    simulator_banner,
    split_sentences,
)
from synthdspy.tasks.textbook import render_lesson

SOURCE = (
    "Honeybees communicate the location of flowers through a waggle dance. The angle of the dance shows "
    "the direction relative to the sun. The duration of the waggle run encodes the distance to the food. "
    "Foragers that watch the dance fly out and search the indicated area. Colonies with many dancers find "
    "new patches faster. Scientists decoded the dance by moving feeders and filming the hive. Weather "
    "changes how often bees dance. Young workers rarely forage before they are three weeks old."
)
ADAPTERS = [dspy.ChatAdapter(use_json_adapter_fallback=False), dspy.JSONAdapter()]


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


@pytest.fixture(autouse=True)
def memory_cache(monkeypatch):
    """A fresh in-memory DSPy cache per test: no disk writes, no hits from earlier runs."""
    monkeypatch.setattr(
        dspy, "cache", Cache(enable_disk_cache=False, enable_memory_cache=True, disk_cache_dir=None)
    )


def summaries(instructions: str, n: int = 20, demos=None, **inputs) -> list[str]:
    signature = dspy.Signature("passage, keywords: list[str], persona -> summary", instructions)
    program = dspy.Predict(signature)
    program.demos = demos or []
    values = {"passage": SOURCE, "keywords": ["pollen", "nectar"], "persona": "a beekeeper", **inputs}
    with dspy.context(lm=SimLM(cache=False, temperature=1.0), adapter=ADAPTERS[0]):
        return [program(**values, config={"rollout_id": r}).summary for r in range(n)]


def distinct_bigram_ratio(texts: list[str]) -> float:
    grams = [tuple(w[i : i + 2]) for t in texts for w in [t.lower().split()] for i in range(len(w) - 1)]
    return len(set(grams)) / len(grams)


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


def test_grounding_instruction_raises_overlap():
    plain = statistics.mean(overlap(s, SOURCE) for s in summaries("Write a summary."))
    grounded = statistics.mean(
        overlap(s, SOURCE) for s in summaries("Write a summary grounded only in the source.")
    )
    assert grounded > plain + 0.15


def test_diversity_instruction_raises_distinct_bigrams():
    plain = distinct_bigram_ratio(summaries("Write a summary."))
    diverse = distinct_bigram_ratio(summaries("Write diverse summaries; vary the angle."))
    assert diverse > 1.5 * plain


def test_keywords_and_persona_used_when_asked():
    def uses(texts, word):
        return statistics.mean(word in t for t in texts)

    plain = summaries("Write a summary.")
    asked = summaries("Write a summary that uses every keyword, in the voice of the persona.")
    assert uses(asked, "pollen") == 1.0 and uses(asked, "nectar") == 1.0
    assert uses(plain, "nectar") < 0.6
    assert uses(asked, "beekeeper") == 1.0 and uses(plain, "beekeeper") == 0.0


def test_step_by_step_adds_steps():
    with dspy.context(lm=SimLM(cache=False)):
        cot = dspy.ChainOfThought("passage -> answer")
        stepwise = cot.predict.signature.with_instructions("Reason step by step from the passage.")
        terse = dspy.Predict(cot.predict.signature)(passage=SOURCE).reasoning
        steps = dspy.Predict(stepwise)(passage=SOURCE).reasoning
        inline = dspy.Predict(dspy.Signature("passage -> answer", "Explain step by step."))(
            passage=SOURCE
        ).answer
    assert sum(line[:2] in ("1.", "2.", "3.") for line in steps.splitlines()) == 3
    assert "\n" not in terse
    assert inline.startswith("Step 1:") and "Step 2:" in inline


def test_grounded_demos_raise_quality():
    demo_passage = "Cats sleep most of the day. They hunt at dusk. Kittens play to learn hunting skills."
    good = dspy.Example(
        passage=demo_passage, keywords=[], persona="-", summary=demo_passage + " Cats hunt at dusk."
    )
    bad = dspy.Example(
        passage=demo_passage, keywords=[], persona="-", summary="Life is good. Music is fun always."
    )
    none = statistics.mean(overlap(s, SOURCE) for s in summaries("Write a summary.", n=40))
    with_good = statistics.mean(overlap(s, SOURCE) for s in summaries("Write a summary.", n=40, demos=[good]))
    with_bad = statistics.mean(overlap(s, SOURCE) for s in summaries("Write a summary.", n=40, demos=[bad]))
    assert with_good > none + 0.05 and with_good > with_bad + 0.05


class Grade(dspy.Signature):
    """Grade how well the answer is supported by the source."""

    source: str = dspy.InputField()
    answer: str = dspy.InputField()
    score: int = dspy.OutputField(desc="1 to 10")
    supported: bool = dspy.OutputField()
    verdict: Literal["pass", "fail"] = dspy.OutputField()
    rationale: str = dspy.OutputField()


@pytest.mark.parametrize("adapter", ADAPTERS, ids=["chat", "json"])
def test_judge_scores_follow_measured_quality(adapter):
    grounded = (
        "Because the angle of the dance shows the direction relative to the sun, foragers search that area."
    )
    ungrounded = "Penguins enjoy cold oceans and long winters."
    with dspy.context(lm=SimLM(cache=False), adapter=adapter):
        good = dspy.Predict(Grade)(source=SOURCE, answer=grounded)
        bad = dspy.Predict(Grade)(source=SOURCE, answer=ungrounded)
    assert good.score > bad.score and bad.score >= 1 and good.score <= 10
    assert (good.supported, bad.supported) == (True, False)
    assert (good.verdict, bad.verdict) == ("pass", "fail")
    assert "0.00 of its content words" in bad.rationale
    assert judge_features(grounded, SOURCE)["quality"] > judge_features(ungrounded, SOURCE)["quality"]


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


def _simple_messages(i: int) -> list[dict]:
    return dspy.ChatAdapter().format(dspy.Signature("question -> answer"), [], {"question": f"question {i}?"})


@pytest.mark.parametrize("rate_name", ["error_rate", "rate_limit_rate", "malformed_rate"])
def test_injection_rates_roughly_as_configured(rate_name):
    sim = Simulator(SimOptions(seed=3, **{rate_name: 0.2}))
    outcomes = {"error_rate": 0, "rate_limit_rate": 0, "malformed_rate": 0}
    for i in range(300):
        try:
            reply = sim.complete(SimCall(_simple_messages(i)))
            outcomes["malformed_rate"] += "[[ ## answer ## ]]" not in reply.text
        except SimulatedRateLimitError:
            outcomes["rate_limit_rate"] += 1
        except SimulatedServerError:
            outcomes["error_rate"] += 1
    assert abs(outcomes[rate_name] / 300 - 0.2) < 0.07
    assert sum(outcomes.values()) == outcomes[rate_name]


def test_failed_request_succeeds_on_retry():
    sim = Simulator(SimOptions(error_rate=0.5))
    call = SimCall(_simple_messages(0))
    for _ in range(30):
        try:
            sim.complete(call)
            break
        except SimulatedServerError:
            continue
    assert sim.faults["ok"] == 1


def test_dspy_retries_injected_transient_errors():
    lm = SimLM(cache=False, rate_limit_rate=0.3, error_rate=0.2, num_retries=12)
    with dspy.context(lm=lm):
        preds = [dspy.Predict("question -> answer")(question=f"q{i}?") for i in range(12)]
    assert all(p.answer for p in preds)
    assert lm.simulator.faults["rate_limit"] + lm.simulator.faults["server_error"] > 0
    for rate, error in (("rate_limit_rate", LMRateLimitError), ("error_rate", LMServerError)):
        with dspy.context(lm=SimLM(cache=False, num_retries=1, **{rate: 1.0})), pytest.raises(error):
            dspy.Predict("question -> answer")(question="q?")


@pytest.mark.parametrize("adapter", ADAPTERS, ids=["chat", "json"])
def test_malformed_answers_make_the_adapter_raise(adapter):
    with (
        dspy.context(lm=SimLM(cache=False, malformed_rate=1.0), adapter=adapter),
        pytest.raises(AdapterParseError),
    ):
        dspy.Predict("passage -> title, summary")(passage=SOURCE)


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


class Solve(dspy.Signature):
    """Solve the problem step by step."""

    question: str = dspy.InputField()
    answer: str = dspy.OutputField(desc="worked solution, then the final answer after '####'")
    counts: dict[str, int] = dspy.OutputField()


@pytest.mark.parametrize("adapter", ADAPTERS, ids=["chat", "json"])
def test_math_answers_show_checkable_arithmetic(adapter):
    with dspy.context(lm=SimLM(cache=False), adapter=adapter):
        pred = dspy.Predict(Solve)(question="Ann has 12 pens and buys 3 boxes of 4 pens. How many pens now?")
    *steps, final = pred.answer.splitlines()
    assert final.startswith("#### ") and final[5:].lstrip("-").isdigit()
    arithmetic = [line.split(": ", 1)[1].rstrip(".") for line in steps if line.startswith("Step")]
    assert arithmetic and all(eval(expr.replace("=", "==")) for expr in arithmetic)  # noqa: S307
    assert arithmetic[-1].endswith(f"= {final[5:]}")
    assert pred.counts and all(isinstance(v, int) for v in pred.counts.values())


class Propose(dspy.Signature):
    """Write a better instruction for the assistant from the feedback."""

    current_instruction: str = dspy.InputField()
    examples_with_feedback: str = dspy.InputField()
    new_instruction: str = dspy.OutputField()


def test_instruction_proposals_follow_feedback():
    def grounding_share(feedback: str) -> float:
        with dspy.context(lm=SimLM(cache=False, temperature=1.0)):
            program = dspy.Predict(Propose)
            texts = [
                program(
                    current_instruction="Summarize the text.",
                    examples_with_feedback=feedback,
                    config={"rollout_id": r},
                ).new_instruction
                for r in range(60)
            ]
        assert all(t.startswith("Summarize the text.") for t in texts)
        return statistics.mean(detect_knobs(t)["grounding"] for t in texts)

    assert grounding_share("Many answers were unsupported by the source.") > grounding_share("Fine.") + 0.15


def test_repetitive_example_outputs_hint_at_diversity():
    def diversity_share(examples: str) -> float:
        with dspy.context(lm=SimLM(cache=False, temperature=1.0)):
            program = dspy.Predict(Propose)
            texts = [
                program(current_instruction="Summarize.", examples_with_feedback=examples, config={"rollout_id": r})
                for r in range(60)
            ]
        return statistics.mean(detect_knobs(t.new_instruction)["diversity"] for t in texts)

    varied = " ".join(f"Example {i}: bees number {i * 7} found flower patch {i * 13} near hive {i}." for i in range(30))
    repeated = " ".join(["Example: the bees found flowers near the hive again today."] * 30)
    assert repetition(varied) < 0.3 <= repetition(repeated)
    assert diversity_share(repeated) > diversity_share(varied) + 0.15


def test_optimizer_gets_a_real_signal():
    passages = [
        SOURCE,
        "The river flooded the valley in spring. Farmers moved their cattle to the hills. "
        "The water receded after three weeks. Engineers later built a levee along the bank.",
    ]
    data = [
        dspy.Example(passage=f"{p} Note {i}.").with_inputs("passage") for i, p in enumerate(passages * 10)
    ]

    def metric(example, pred, trace=None):
        return overlap(pred.summary, example.passage)

    program = dspy.Predict(dspy.Signature("passage -> summary", "Summarize the text."))
    evaluate = dspy.Evaluate(devset=data[10:], metric=metric, display_progress=False)
    with dspy.context(lm=SimLM(cache=False, temperature=1.0)):
        before = evaluate(program).score
        optimizer = dspy.MIPROv2(
            metric=metric, auto=None, num_candidates=6, num_threads=1, verbose=False, seed=0
        )
        best = optimizer.compile(
            program,
            trainset=data[:10],
            valset=data[10:],
            num_trials=8,
            max_bootstrapped_demos=1,
            max_labeled_demos=0,
            minibatch=False,
        )
        after = evaluate(best).score
    assert after > before + 10


TOPICS = [
    ("Civil Engineering", ["Bridges", "Building foundations", "Roads and transportation"],
     ["truss", "beam", "concrete", "surveying"]),
    ("Classical Mechanics", ["Newton's laws of motion", "Work and energy", "Rotational motion"],
     ["force", "inertia", "torque", "friction"]),
    ("Marine Biology", ["Coral reefs", "Plankton", "Deep-sea vents"], ["symbiosis", "salinity", "bloom"]),
    ("Music Theory", ["Scales", "Chords and harmony", "Rhythm and meter"], ["interval", "cadence", "tempo"]),
    ("Microeconomics", ["Supply and demand", "Market structures", "Elasticity"], ["price", "monopoly", "margin"]),
    ("Volcanology", ["Magma formation", "Eruption styles", "Volcanic hazards"], ["lava", "ash", "caldera"]),
    ("Cryptography", ["Symmetric ciphers", "Public-key systems", "Hash functions"], ["key", "nonce", "collision"]),
    ("Nutrition", ["Macronutrients", "Vitamins and minerals", "Digestion"], ["protein", "fiber", "enzyme"]),
]
PERSONAS = [
    "A retired bridge inspector in Ohio who restores old steel trusses as a hobby.",
    "A kindergarten teacher in Finland who designs play-based lessons.",
    "A PhD candidate in astrophysics in Chile who spends nights at a mountain observatory.",
]
STYLE = "textbook academic: A formal textbook section with precise definitions and worked examples."
DIVERSE = "Vary the angle, opening and structure."


def lessons(extra: str = "", adapter=ADAPTERS[0], topics=TOPICS) -> list[tuple[dict, dspy.Prediction]]:
    """(inputs, prediction) of WriteLesson for each topic, its instructions plus `extra`."""
    signature = WriteLesson.with_instructions(f"{WriteLesson.instructions} {extra}".strip())
    out = []
    with dspy.context(lm=SimLM(cache=False, temperature=0.8), adapter=adapter):
        for rollout, (topic, subtopics, keywords) in enumerate(topics):
            inputs = dict(topic=topic, subtopics=subtopics, keywords=keywords, style=STYLE, personas=PERSONAS)
            out.append((inputs, dspy.Predict(signature)(**inputs, config={"rollout_id": rollout})))
    return out


@pytest.mark.parametrize("adapter", ADAPTERS, ids=["chat", "json"])
def test_textbook_lesson_is_composed_from_the_inputs(adapter):
    made = lessons(adapter=adapter, topics=TOPICS[:4])
    first, last = ([len(pred.passages[i].text.split()) for _, pred in made] for i in (0, -1))
    assert statistics.mean(last) > statistics.mean(first)  # later passages grow
    for inputs, pred in made:
        assert pred.persona in PERSONAS  # copied from the personas input, not written
        assert 3 <= len(pred.passages) <= 5
        items = {x.lower() for x in inputs["subtopics"] + inputs["keywords"]}
        texts = [p.text for p in pred.passages]
        for text in texts:
            assert debris(text) == 0.0 and "[" not in text and "Step 1" not in text
            assert inputs["topic"].lower() in text.lower() or any(x in text.lower() for x in items)
        assert all({c.lower() for c in p.new_concepts} <= items for p in pred.passages)
        assert sum(k in " ".join(texts).lower() for k in inputs["keywords"]) == len(inputs["keywords"])
        quiz = pred.quiz
        assert quiz.answer in quiz.options and len(set(quiz.options)) == len(quiz.options) == 4
        assert all(len(o.split()) <= 6 and "Step" not in o for o in quiz.options)
        assert quiz.question.endswith("?") and "Step" not in quiz.question
        assert not any(o.lower() in quiz.question.lower() for o in quiz.options)  # no option restates it
        assert quiz.explanation.startswith("1. ") and quiz.answer in quiz.explanation.splitlines()[-1]


def test_fitting_persona_is_the_one_sharing_most_words():
    picked = [pred.persona for _, pred in lessons(topics=TOPICS[:1] * 6)]
    assert set(picked) == {PERSONAS[0]}  # its "bridge" matches Civil Engineering's "Bridges"
    unfit = lessons("Choose any persona at random.", topics=TOPICS[1:2] * 12)  # no shared words: a draw
    assert len({pred.persona for _, pred in unfit}) >= 2


def old_garbage_record() -> str:
    """The shape of the garbage lessons the simulator used to write (see the brief's sample):
    every passage a "Step N:" list of pasted JSON lists and keyword filler, repeated."""
    subtopics, personas = json.dumps(TOPICS[0][1]), json.dumps(PERSONAS)
    steps = [f"Speaking as textbook academic: A formal textbook section: {subtopics}", personas, subtopics]
    steps += [f"This also involves {k}." for k in TOPICS[0][2]]
    passage = "\n".join(f"Step {i}: {s}" for i, s in enumerate(steps, 1))
    passage += "\nTherefore, the answer follows from these steps."
    return "\n\n".join([passage] * 3) + f"\n\nQuestion: What is bridges?\nA. {passage}\nAnswer: {passage}"


def test_judge_scores_garbage_low_and_a_clean_lesson_higher():
    inputs, pred = lessons(DIVERSE, topics=TOPICS[:1])[0]
    clean = render_lesson(pred.passages, pred.quiz)
    instruction = f"Write a textbook academic lesson on Civil Engineering for: {pred.persona}"
    judge = dspy.Predict(JudgeQuality)
    with dspy.context(lm=SimLM(cache=False, temperature=0.0)):
        bad, good = (
            judge(rubric="Correct, clear, useful.", instruction=instruction, source="", response=r).score
            for r in (old_garbage_record(), clean)
        )
    assert bad <= 5 and good >= bad + 3 and good <= 10
    garbage = judge_features(old_garbage_record(), None, instruction)
    assert garbage["repetition"] > 0.5 and garbage["debris"] > 0.2
    assert judge_features(clean, None, instruction)["repetition"] < 0.1


def test_judge_penalties_measure_repetition_debris_and_reasoning_only_when_asked():
    varied = "Bees dance to share routes. Foragers read the angle. Weather changes how often they dance."
    assert repetition(varied) < 0.1 and repetition(" ".join([varied] * 3)) > 0.6
    assert debris('Intro line.\n["a", "b"]') == 0.5 and debris(varied) == 0.0
    terse = "Bees dance to show where flowers are, and other bees follow the dance to find food quickly."
    because = terse.replace(", and", " because")
    plain = judge_features(because, None, "Describe the bee dance.")["quality"]
    asked = judge_features(because, None, "Explain step by step why bees dance.")["quality"]
    unasked = judge_features(terse, None, "Explain step by step why bees dance.")["quality"]
    assert asked > unasked and abs(plain - judge_features(terse, None, "Describe the bee dance.")["quality"]) < 0.05


def test_diversity_instruction_raises_lesson_diversity():
    def texts(extra):
        return [" ".join(p.text for p in pred.passages) for _, pred in lessons(extra)]

    plain, diverse = texts(""), texts(DIVERSE)
    assert distinct_bigram_ratio(diverse) > 1.15 * distinct_bigram_ratio(plain)
    assert statistics.mean(map(repetition, diverse)) < statistics.mean(map(repetition, plain)) - 0.1


# ---- grouping requests: the cluster-agent's criteria, clustering and verification steps ----------

TEMPLATE = (
    "Dear {name}, thank you for your order of {item}. Your package leaves our warehouse today and "
    "should arrive by {day}. Best regards, the shop team."
)
NEAR_DUPLICATES = [
    TEMPLATE.format(name=n, item=i, day=d)
    for n, i, d in zip(
        ["Ann", "Bo", "Cy", "Di", "Ed", "Flo", "Gus", "Hal", "Ida", "Jo"],
        ["socks", "a lamp", "tea", "two mugs", "a kettle", "paint", "a rug", "soap", "pens", "a clock"],
        ["Monday", "Tuesday", "Friday", "Monday", "Sunday", "Friday", "Tuesday", "Monday", "Sunday", "Friday"],
        strict=True,
    )
]
DIVERSE_TEXTS = [
    "Honeybees tell nestmates where flowers are by dancing; the angle of the waggle run points the way.",
    "The Treaty of Westphalia in 1648 ended the Thirty Years' War and reshaped European borders.",
    "def mean(xs):\n    return sum(xs) / len(xs)\n\nprint(mean([1, 2, 3]))",
    "Whisk two eggs with sugar until pale, fold in the flour, and bake for twenty minutes.",
    "Hey! Can't make it tonight, my car broke down again. Rain check for Saturday?",
    "Photosynthesis converts light, water and carbon dioxide into glucose and oxygen in chloroplasts.",
    "1. Open the valve\n2. Bleed the radiator\n3. Close the valve once water appears",
    "The striker scored twice in the second half, sealing a comeback that stunned the home crowd.",
    "Interest rates rose by a quarter point as the central bank tried to cool persistent inflation.",
    "Glaciers in the Alps have lost more than half of their volume since the nineteenth century.",
]
CRITERIA_TEXT = (
    "1. topic (metadata): the subject\n2. format (metadata): the form\n"
    "3. length (metric): 1 short to 5 long\n4. repetitiveness (metric): 1 none to 5 mostly repeated"
)


def indexed(texts: list[str]) -> dict[int, str]:
    return {i: t for i, t in enumerate(texts, 1)}


def cluster(samples: dict[int, str], adapter, rollout_id: int = 0):
    with dspy.context(lm=SimLM(), adapter=adapter):
        program = dspy.Predict(ClusterSamples)
        return program(criteria=CRITERIA_TEXT, samples=samples, config={"rollout_id": rollout_id}).clusters


def test_similarity_sees_topics_templates_and_form():
    assert similarity(NEAR_DUPLICATES[0], NEAR_DUPLICATES[1]) >= 0.5
    unrelated = [similarity(a, b) for n, a in enumerate(DIVERSE_TEXTS) for b in DIVERSE_TEXTS[n + 1 :]]
    assert max(unrelated) < 0.3
    io_a = "Sure.\nInput: a cat\nOutput: un chat\nInput: a dog\nOutput: un chien"
    io_b = "Here you go.\nInput: the sea\nOutput: la mer"
    assert similarity(io_a, io_b) >= 0.3 > similarity(io_a, DIVERSE_TEXTS[0])
    assert similarity("", "") == 1.0 and similarity("", DIVERSE_TEXTS[0]) == 0.0


@pytest.mark.parametrize("adapter", ADAPTERS, ids=["chat", "json"])
def test_clustering_partitions_samples_by_similarity(adapter):
    counts = {}
    for label, texts in (("dup", NEAR_DUPLICATES), ("diverse", DIVERSE_TEXTS)):
        clusters = cluster(indexed(texts), adapter)
        members = sorted(i for c in clusters for i in c.sample_indices)
        assert members == list(range(1, 11)), f"{label}: not a partition of 1..10: {members}"
        assert len({c.cluster_id for c in clusters}) == len(clusters)
        for c in clusters:
            assert set(c.metadata) == {"topic", "format"}
            assert [s.metric for s in c.metric_scores] == ["length", "repetitiveness"]
            assert all(1 <= s.score <= 5 for s in c.metric_scores)
        counts[label] = len(clusters)
        if label == "dup":
            biggest = max(clusters, key=lambda c: len(c.sample_indices))
            reason = biggest.uniqueness_reasoning
            assert "share words: dear, thank, order" in reason and "similarity" in reason, reason
    assert counts["dup"] <= 2 and counts["diverse"] >= 8, counts


def test_clustering_length_scores_follow_the_texts():
    short = ["Yes.", "No.", "Maybe.", "Sure.", "Fine."]
    long = [("The committee reviewed " + " ".join(f"item{i}{j}" for j in range(150))) for i in range(5)]
    clusters = cluster(indexed(short + long), ADAPTERS[0])
    for c in clusters:
        length = next(s.score for s in c.metric_scores if s.metric == "length")
        assert length <= 2 if max(c.sample_indices) <= 5 else length >= 4, (c.sample_indices, length)


@pytest.mark.parametrize("adapter", ADAPTERS, ids=["chat", "json"])
def test_verification_rejects_a_wrong_merge(adapter):
    samples = indexed(NEAR_DUPLICATES[:5] + DIVERSE_TEXTS[:5])
    proposed = [
        ProposedCluster(cluster_id=1, sample_indices=[1, 2, 3], uniqueness_reasoning="order notes"),
        ProposedCluster(cluster_id=2, sample_indices=[6, 7, 9], uniqueness_reasoning="all history"),
        ProposedCluster(cluster_id=3, sample_indices=[10], uniqueness_reasoning="a recipe"),
        ProposedCluster(cluster_id=4, sample_indices=[4, 8], uniqueness_reasoning="mixed"),
        ProposedCluster(cluster_id=5, sample_indices=[5, 11], uniqueness_reasoning="out of range"),
    ]
    with dspy.context(lm=SimLM(), adapter=adapter):
        verdicts = dspy.Predict(VerifyClusters)(samples=samples, clusters=proposed).verdicts
    by_id = {v.cluster_id: v for v in verdicts}
    assert {i: v.valid for i, v in by_id.items()} == {1: True, 2: False, 3: True, 4: False, 5: False}
    assert "similarity" in by_id[2].reasoning and "11" in by_id[5].reasoning


@pytest.mark.parametrize("adapter", ADAPTERS, ids=["chat", "json"])
def test_criteria_are_proposed_merged_to_k_and_condensed(adapter):
    with dspy.context(lm=SimLM(), adapter=adapter):
        proposed = dspy.Predict(ProposeCriteria)(samples=indexed(DIVERSE_TEXTS[:5]))
        proposals = {"topic": ["a", "b", "c"], "subject_area": ["d"], "tone": ["e"], "novelty": ["f", "g"]}
        meta = dspy.Predict(MergeMetadata)(proposals=proposals, k=4).merged
        few = dspy.Predict(MergeMetadata)(proposals={"topic": ["a"]}, k=3).merged
        metrics = dspy.Predict(MergeMetrics)(proposals={"length": ["a"], "verbosity": ["b"]}, k=2).merged
        condensed = dspy.Predict(CondenseCriteria)(metadata=meta, metrics=metrics).criteria
    for items in (proposed.metadata, proposed.metrics):
        names = [c.name for c in items]
        assert 3 <= len(names) <= 5 and len(set(names)) == len(names)
    assert "1" in proposed.metrics[0].definition and "5" in proposed.metrics[0].definition
    assert [c.name for c in meta][:2] == ["topic", "novelty"]  # topic + subject_area grouped, then by count
    assert len(meta) == 4 and len(few) == 3 and len({c.name for c in few}) == 3
    assert len(metrics) == 2 and metrics[0].name == "length" and "verbosity" not in [m.name for m in metrics]
    assert [(c.name, c.kind) for c in condensed] == [(c.name, "metadata") for c in meta] + [
        (c.name, "metric") for c in metrics
    ]
    assert all(len(split_sentences(c.definition)) == 1 for c in condensed)


def test_cluster_agent_scores_templated_corpus_below_varied_passages():
    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "passages" / "passages.jsonl"
    if not path.exists():
        pytest.skip("needs ../shared/data")
    lines = path.read_text(encoding="utf-8").splitlines()
    varied = [json.loads(line)["text"] for line in lines[::120][:30]]
    templated = [
        t.format(x=x)
        for x in ("tea", "rice", "salt", "wool", "iron", "corn", "silk", "milk", "coal", "wine")
        for t in (TEMPLATE.replace("{item}", "{x}").replace("{name}", "Sam").replace("{day}", "Monday"),
                  "Q: What is the price of {x} today? A: The price of {x} rose slightly today.",
                  "Input: buy {x}\nOutput: Added {x} to your basket.")
    ]
    config = ClusterAgentConfig(criteria_rounds=3, cluster_rounds=8, chunk_rounds=8, n_resamples=200,
                                num_threads=2, min_rounds=2)
    results = {name: run_cluster_agent(texts, lm=SimLM(), config=config)
               for name, texts in (("templated", templated), ("varied", varied))}
    for result in results.values():
        assert result.rounds_scored >= 7, result.skipped
    assert results["templated"].score < 2.0 < 8.0 < results["varied"].score, {
        k: r.score for k, r in results.items()
    }


class Utterance(pydantic.BaseModel):
    speaker: str
    content: str


class Converse(dspy.Signature):
    content: str = dspy.InputField()
    roles: list[str] = dspy.InputField()
    turns: list[Utterance] = dspy.OutputField()


def conversations(instructions: str, n: int = 12) -> list[list[Utterance]]:
    program = dspy.Predict(Converse.with_instructions(instructions))
    with dspy.context(lm=SimLM(cache=False, temperature=1.0), adapter=ADAPTERS[1]):
        return [program(content=SOURCE, roles=["Guide", "Visitor"], config={"rollout_id": r}).turns for r in range(n)]


def test_conversation_turns_alternate_and_carry_the_source_in_order():
    faithful = conversations("Turn the content into a conversation. Stay faithful to the content.")
    sentences = split_sentences(SOURCE)
    for turns in faithful:
        assert [t.speaker for t in turns] == ["Guide", "Visitor"] * (len(turns) // 2)
        carried = [i for i, s in enumerate(sentences) if any(s[:-1].lower() in t.content.lower() for t in turns)]
        assert carried == sorted(carried) and len(carried) >= len(sentences) // 2
    loose = conversations("Turn the content into a conversation.")
    text = [" ".join(t.content for t in turns) for turns in faithful]
    assert statistics.mean(map(lambda t: overlap(t, SOURCE), text)) > statistics.mean(
        overlap(" ".join(t.content for t in turns), SOURCE) for turns in loose) + 0.2


def test_reasoning_knob_links_turns_with_reasoning_markers():
    def marked(instructions: str) -> float:
        texts = [" ".join(t.content for t in turns) for turns in conversations(instructions)]
        return statistics.mean(judge_features(t, SOURCE)["reasoning"] for t in texts)

    assert marked("Turn the content into a conversation; explain each step.") == 1.0
    assert marked("Turn the content into a conversation.") < 0.5


def test_requirements_are_realized_and_described_options_classified_by_them():
    write = dspy.Predict(dspy.Signature("subject, targets -> text", "Write a text that meets every target."))
    targets = ("# Format\nTarget value: Recipe\nHow to write it: List the ingredients, then number the cooking steps."
               "\n\n# Tone\nTarget value: Playful\nHow to write it: Joke with the reader and use exclamations.")
    classify = dspy.Predict(dspy.Signature({
        "text": dspy.InputField(), "values": dspy.InputField(),
        "label": dspy.OutputField(), }, "Classify the text's format.").with_updated_fields(
        "label", type_=Literal["Recipe", "Essay", "Poem"]))
    values = ("- Recipe: ingredients and steps. A text of this value: List the ingredients, then number the "
              "cooking steps.\n- Essay: an argued piece. A text of this value: State a thesis and defend it "
              "over several paragraphs.\n- Poem: verse. A text of this value: Write short lines with rhythm "
              "and rhyme.")
    hits = []
    with dspy.context(lm=SimLM(cache=False, temperature=1.0)):
        for r in range(12):
            text = write(subject="Bread baking", targets=targets, config={"rollout_id": r}).text
            realized = "number the cooking steps" in text
            with dspy.context(lm=SimLM(cache=False, temperature=0.0)):
                label = classify(text=text, values=values).label
            hits.append((realized, label == "Recipe"))
    assert sum(r for r, _ in hits) >= 8  # each requirement is followed with probability grounding_p
    assert all(ok for realized, ok in hits if realized)


def test_object_items_of_a_list_input_are_written_about_by_name():
    from synthdspy.signatures.textbook import TopicSeed, WriteMultiTopicLesson

    topics = [TopicSeed(topic="Botany", subtopics=["Photosynthesis", "Pollination"], keywords=["stomata", "auxin"]),
              TopicSeed(topic="Volcanoes", subtopics=["Magma", "Eruptions"], keywords=["lava", "caldera"])]
    with dspy.context(lm=SimLM(cache=False, temperature=1.0)):
        pred = dspy.Predict(WriteMultiTopicLesson)(topics=topics, style="textbook", personas=["a student"])
    text = " ".join(p.text for p in pred.passages)
    assert debris(text) == 0.0 and '["' not in text and "subtopics" not in text
    assert {"Botany", "Volcanoes"} & set(pred.topics_used)
    assert any(k in text for k in ("stomata", "auxin", "lava", "caldera"))
