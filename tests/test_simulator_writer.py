"""What the simulator writes under its instruction knobs (grounding, diversity, keywords, persona,
steps, demos), for math, conversations, requirements and object list items."""

import statistics
from typing import Literal

import dspy
import pydantic
import pytest
from simulator_helpers import ADAPTERS, SOURCE, distinct_bigram_ratio, memory_cache  # noqa: F401 (autouse fixture)

from synthdspy.simulator import SimLM, debris, judge_features, overlap, split_sentences


def summaries(instructions: str, n: int = 20, demos=None, **inputs) -> list[str]:
    signature = dspy.Signature("passage, keywords: list[str], persona -> summary", instructions)
    program = dspy.Predict(signature)
    program.demos = demos or []
    values = {"passage": SOURCE, "keywords": ["pollen", "nectar"], "persona": "a beekeeper", **inputs}
    with dspy.context(lm=SimLM(cache=False, temperature=1.0), adapter=ADAPTERS[0]):
        return [program(**values, config={"rollout_id": r}).summary for r in range(n)]


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
