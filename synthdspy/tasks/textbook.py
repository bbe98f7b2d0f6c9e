"""``textbook``: lessons from topic seeds with the prompt templates of Chen et al. 2024 (section 3.4, appendix F)."""

from __future__ import annotations

from typing import Any, Literal

import dspy

from synthdspy.records import Record, Seed
from synthdspy.registry import Params, register_task
from synthdspy.signatures.textbook import (
    TopicSeed,
    WriteLesson,
    WriteMultiTopicLesson,
    WriteStyledLesson,
    WriteTopicLesson,
)
from synthdspy.tasks.base import Task, require, sampling_config

Template = Literal["topic", "topic_styles", "topic_styles_persona", "multi_topic_styles_persona"]

# template -> (signature, seed fields it needs)
TEMPLATES: dict[str, tuple[type[dspy.Signature], tuple[str, ...]]] = {
    "topic": (WriteTopicLesson, ("topic", "subtopics", "keywords")),
    "topic_styles": (WriteStyledLesson, ("topic", "subtopics", "keywords", "style")),
    "topic_styles_persona": (WriteLesson, ("topic", "subtopics", "keywords", "style", "personas")),
    "multi_topic_styles_persona": (WriteMultiTopicLesson, ("topics", "style", "personas")),
}


class TextbookParams(Params):
    """Parameters of the ``textbook`` task: the prompt ``template`` (Chen et al. 2024, appendix F.1)."""

    template: Template = "topic_styles_persona"


def render_lesson(passages: list, quiz) -> str:
    """The lesson as training text: passages, then the question with lettered options and explanation."""
    body = "\n\n".join(p.text.strip() for p in passages)
    letters = "ABCDEFGH"
    options = "\n".join(f"{letters[i]}. {o}" for i, o in enumerate(quiz.options[: len(letters)]))
    return f"{body}\n\nQuestion: {quiz.question}\n{options}\nAnswer: {quiz.answer}\nExplanation: {quiz.explanation}"


def style_text(style: Any) -> str:
    """A seed's ``style`` ({name, description} or a plain string) as ``"name: description"``."""
    return style if isinstance(style, str) else f"{style['name']}: {style.get('description', '')}"


def candidate_topics(seed: Seed, task: str, topics: Any) -> list[TopicSeed]:
    """The seed's ``topics`` list (from ``TopicSampler`` with ``[seeds] num_topics`` >= 2) as TopicSeeds.

    Raises:
        ValueError: fewer than two topics, or an entry without topic/subtopics/keywords.
    """
    if not isinstance(topics, list) or len(topics) < 2:
        n = len(topics) if isinstance(topics, list) else 0
        raise ValueError(
            f"seed {seed.id}: task {task!r} with template multi_topic_styles_persona needs at least 2 topics in "
            f"'topics' (got {n}); set [seeds] num_topics = 2 or more"
        )
    try:
        return [TopicSeed(topic=t["topic"], subtopics=list(t["subtopics"]), keywords=list(t["keywords"]))
                for t in topics]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"seed {seed.id}: 'topics' entries need topic, subtopics and keywords ({exc!r})") from None


def chosen_topics(used: list[str], offered: list[TopicSeed]) -> list[str]:
    """The offered topic names the LM says it combined (matched case-insensitively), in offered
    order; all offered topics when it named none of them."""
    named = {str(u).strip().lower() for u in used}
    picked = [t.topic for t in offered if t.topic.lower() in named]
    return picked or [t.topic for t in offered]


@register_task("textbook", TextbookParams)
class TextbookTask(Task):
    """A lesson of 3-5 passages of growing nuance plus one multiple-choice question per topic seed.

    ``template`` picks the prompt: ``topic`` (topic, subtopics, keywords), ``topic_styles`` (+ a
    style: textbook narrative, textbook academic, blogpost or wikihow), ``topic_styles_persona``
    (+ candidate ``personas``, the LM picks the most fitting; the default) or
    ``multi_topic_styles_persona`` (several ``topics`` that the LM combines, with style and personas).
    Output: one record whose ``output`` is the rendered lesson; template, topics, persona, style,
    keywords, passages and quiz are kept in metadata (persona/style None where the template has none).
    """

    name = "textbook"

    def __init__(self, template: str = "topic_styles_persona") -> None:
        super().__init__()
        self.template = template
        signature, self.fields = TEMPLATES[template]
        self.write = dspy.Predict(signature)

    def inputs(self, seed: Seed) -> dict[str, Any]:
        """The predictor inputs for ``seed`` under this template.

        Raises:
            KeyError: a seed field the template needs is missing.
            ValueError: see :func:`candidate_topics`.
        """
        data = dict(zip(self.fields, require(seed, self.name, *self.fields), strict=True))
        inputs: dict[str, Any] = {}
        for name in ("topic", "style"):
            if name in data:
                inputs[name] = data[name] if name == "topic" else style_text(data[name])
        for name in ("subtopics", "keywords", "personas"):
            if name in data:
                inputs[name] = [str(x) for x in data[name]]
        if "topics" in data:
            inputs["topics"] = candidate_topics(seed, self.name, data["topics"])
        return inputs

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:
        inputs = self.inputs(seed)
        pred = self.write(**inputs, config=sampling_config(rollout))
        persona = getattr(pred, "persona", None)
        style = inputs["style"].split(":")[0] if "style" in inputs else None
        if "topics" in inputs:
            topics = chosen_topics(pred.topics_used, inputs["topics"])
            keywords = [k for t in inputs["topics"] if t.topic in topics for k in t.keywords]
        else:
            topics, keywords = [inputs["topic"]], inputs["keywords"]
        instruction = f"Write a {style or 'textbook'} lesson on {' and '.join(topics)}"
        if persona:
            instruction += f" for: {persona}"
        return [
            self.record(
                seed, rollout, 0, instruction=instruction, output=render_lesson(pred.passages, pred.quiz),
                metadata={
                    "template": self.template, "topic": topics[0], "topics": topics, "persona": persona,
                    "style": style, "keywords": keywords,
                    "passages": [p.model_dump() for p in pred.passages],
                    "quiz": pred.quiz.model_dump(),
                },
            )
        ]
