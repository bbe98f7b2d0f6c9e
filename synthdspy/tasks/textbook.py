"""``textbook``: lessons from topic seeds with styles and personas (Chen et al. 2024, appendix F)."""

from __future__ import annotations

import dspy

from synthdspy.records import Record, Seed
from synthdspy.registry import Params, register_task
from synthdspy.signatures.textbook import WriteLesson
from synthdspy.tasks.base import Task, require, sampling_config


class TextbookParams(Params):
    """Parameters of the ``textbook`` task (the Topic+Styles+Persona template)."""


def render_lesson(passages: list, quiz) -> str:
    """The lesson as training text: passages, then the question with lettered options and explanation."""
    body = "\n\n".join(p.text.strip() for p in passages)
    letters = "ABCDEFGH"
    options = "\n".join(f"{letters[i]}. {o}" for i, o in enumerate(quiz.options[: len(letters)]))
    return f"{body}\n\nQuestion: {quiz.question}\n{options}\nAnswer: {quiz.answer}\nExplanation: {quiz.explanation}"


@register_task("textbook", TextbookParams)
class TextbookTask(Task):
    """A lesson of 3-5 passages of growing nuance plus one multiple-choice question per topic seed.

    Seed fields: ``topic``, ``subtopics``, ``keywords``, ``style`` (name and description) and
    ``personas`` (candidate readers; the LM picks the most fitting). Output: one record whose
    ``output`` is the rendered lesson; passages, concepts, persona and quiz are kept in metadata.
    """

    name = "textbook"

    def __init__(self) -> None:
        super().__init__()
        self.write = dspy.Predict(WriteLesson)

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:
        topic, subtopics, keywords, style, personas = require(
            seed, self.name, "topic", "subtopics", "keywords", "style", "personas"
        )
        style_text = style if isinstance(style, str) else f"{style['name']}: {style.get('description', '')}"
        pred = self.write(
            topic=topic, subtopics=list(subtopics), keywords=list(keywords), style=style_text,
            personas=list(personas), config=sampling_config(rollout),
        )
        return [
            self.record(
                seed, rollout, 0,
                instruction=f"Write a {style_text.split(':')[0]} lesson on {topic} for: {pred.persona}",
                output=render_lesson(pred.passages, pred.quiz),
                metadata={
                    "topic": topic, "persona": pred.persona, "style": style_text.split(":")[0],
                    "keywords": list(keywords),
                    "passages": [p.model_dump() for p in pred.passages],
                    "quiz": pred.quiz.model_dump(),
                },
            )
        ]
