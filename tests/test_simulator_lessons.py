"""Textbook lessons composed by the simulator from a topic, subtopics, keywords, style and personas;
the judge on a clean lesson and the old garbage shape; the diversity knob on lessons."""

import json
import statistics

import dspy
import pytest
from simulator_helpers import ADAPTERS, distinct_bigram_ratio, memory_cache  # noqa: F401 (autouse fixture)

from synthdspy.signatures.judges import JudgeQuality
from synthdspy.signatures.textbook import WriteLesson
from synthdspy.simulator import SimLM, debris, judge_features, repetition
from synthdspy.tasks.textbook import render_lesson

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


def test_diversity_instruction_raises_lesson_diversity():
    def texts(extra):
        return [" ".join(p.text for p in pred.passages) for _, pred in lessons(extra)]

    plain, diverse = texts(""), texts(DIVERSE)
    assert distinct_bigram_ratio(diverse) > 1.15 * distinct_bigram_ratio(plain)
    assert statistics.mean(map(repetition, diverse)) < statistics.mean(map(repetition, plain)) - 0.1
