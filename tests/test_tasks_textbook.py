"""The ``textbook`` task's four prompt templates (Chen et al. 2024, appendix F), on the simulator."""

from __future__ import annotations

import dspy
import pytest
from dspy.utils.exceptions import AdapterParseError
from pydantic import ValidationError

from synthdspy.records import Seed
from synthdspy.seeds.catalog import TopicSampler
from synthdspy.signatures.textbook import TopicSeed
from synthdspy.simulator import SimLM
from synthdspy.tasks.textbook import TEMPLATES, TextbookParams, TextbookTask, chosen_topics


def topic_seed(n_topics: int = 1) -> Seed:
    return TopicSampler(seed=3, n_topics=n_topics, n_personas=3).draw(0)


@pytest.mark.parametrize("template", list(TEMPLATES))
def test_each_template_shows_its_inputs_and_renders_a_lesson(template):
    seed = topic_seed(n_topics=3)
    lm = SimLM("sim/default")
    with dspy.context(lm=lm):
        (record,) = TextbookTask(template=template)(seed)
    prompt = "\n".join(str(m["content"]) for m in lm.history[-1]["messages"])
    style_shown = seed.data["style"]["description"] in prompt
    personas_shown = all(p in prompt for p in seed.data["personas"])
    other_topics_shown = all(t["topic"] in prompt for t in seed.data["topics"][1:])
    assert style_shown == (template != "topic")
    assert personas_shown == template.endswith("persona")
    assert other_topics_shown == (template == "multi_topic_styles_persona")
    assert "\nQuestion: " in record.output and "\nAnswer: " in record.output
    meta = record.metadata
    assert meta["template"] == template and meta["passages"] and meta["quiz"]["options"]
    assert (meta["persona"] is not None) == template.endswith("persona")
    assert (meta["style"] is None) == (template == "topic")
    assert set(meta["topics"]) <= {t["topic"] for t in seed.data["topics"]}


def test_default_template_keeps_the_original_instruction_format():
    seed = topic_seed()
    with dspy.context(lm=SimLM("sim/default")):
        (record,) = TextbookTask()(seed)
    style = seed.data["style"]["name"]
    assert record.instruction == f"Write a {style} lesson on {seed.data['topic']} for: {record.metadata['persona']}"
    assert TextbookParams().template == "topic_styles_persona"


def test_multi_topic_template_needs_several_topics_and_unknown_templates_fail():
    with pytest.raises(ValueError, match="num_topics"):
        TextbookTask(template="multi_topic_styles_persona")(topic_seed(n_topics=1))
    with pytest.raises(KeyError, match="personas"):
        TextbookTask()(Seed(id="s", data={"topic": "t", "subtopics": ["a"], "keywords": ["k"], "style": "x"}))
    with pytest.raises(ValidationError):
        TextbookParams(template="multi_topic")


def test_chosen_topics_keeps_offered_names_only():
    offered = [TopicSeed(topic=t, subtopics=["s"], keywords=["k"]) for t in ("Tides", "Optics", "Rome")]
    assert chosen_topics(["rome", " Tides "], offered) == ["Tides", "Rome"]
    assert chosen_topics(["Something else"], offered) == ["Tides", "Optics", "Rome"]


def test_textbook_malformed_answer_raises():
    with dspy.context(lm=SimLM("sim/default", malformed_rate=1.0, cache=False)), pytest.raises(AdapterParseError):
        TextbookTask(template="multi_topic_styles_persona")(topic_seed(n_topics=2))
