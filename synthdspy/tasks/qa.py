"""``qa``: question-answer pairs from a source passage, or an answer to a given instruction."""

from __future__ import annotations

from typing import Literal

import dspy
from pydantic import Field

from synthdspy.records import Record, Seed
from synthdspy.registry import Params, register_task
from synthdspy.signatures.qa import AnswerInstruction, GenerateQAPairs
from synthdspy.tasks.base import Task, require, sampling_config


class QAParams(Params):
    """Parameters of the ``qa`` task."""

    num_questions: int = Field(3, ge=1, le=20)
    difficulty: Literal["easy", "medium", "hard"] = "medium"


@register_task("qa", QAParams)
class QATask(Task):
    """Question-answer pairs grounded in a source passage; one record per pair.

    Corpus-aware: a seed with ``source`` gets ``num_questions`` pairs written from it, and the
    passage is stored in ``record.input`` for grounding gates. A seed that already has an
    ``instruction`` (or ``question``) is answered directly, one record.
    """

    name = "qa"

    def __init__(self, num_questions: int = 3, difficulty: str = "medium") -> None:
        super().__init__()
        self.num_questions = num_questions
        self.difficulty = difficulty
        self.generate = dspy.Predict(GenerateQAPairs)
        self.answer = dspy.Predict(AnswerInstruction)

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:
        config = sampling_config(rollout)
        instruction = seed.data.get("instruction") or seed.data.get("question")
        if instruction and not seed.data.get("source"):
            pred = self.answer(instruction=instruction, config=config)
            return [self.record(seed, rollout, 0, instruction=instruction, output=pred.response)]
        (source,) = require(seed, self.name, "source")
        pred = self.generate(
            source=source, num_questions=self.num_questions, difficulty=self.difficulty, config=config
        )
        return [
            self.record(
                seed, rollout, i, instruction=p.question, input=source, output=p.answer,
                metadata={"difficulty": self.difficulty},
            )
            for i, p in enumerate(pred.pairs[: self.num_questions])
        ]
