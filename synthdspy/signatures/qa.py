"""Question-answer generation signatures."""

from __future__ import annotations

from typing import Literal

import dspy
from pydantic import BaseModel, Field


class QAPair(BaseModel):
    """One question with the answer the passage supports."""

    question: str = Field(description="a self-contained question a reader of the passage could ask")
    answer: str = Field(description="the answer, stated in full sentences, using only the passage")


class GenerateQAPairs(dspy.Signature):
    """Write questions about the passage and answer each one from the passage alone.

    Every answer must be supported by a specific statement in the passage; do not add outside facts.
    Questions should cover different parts of the passage rather than rephrase one fact."""

    source: str = dspy.InputField(desc="the source passage")
    num_questions: int = dspy.InputField(desc="how many question-answer pairs to write")
    difficulty: Literal["easy", "medium", "hard"] = dspy.InputField(
        desc="easy: one fact looked up; medium: combine two statements; hard: inference across the passage"
    )
    pairs: list[QAPair] = dspy.OutputField(desc="exactly num_questions question-answer pairs")


class AnswerInstruction(dspy.Signature):
    """Follow the instruction and write a complete, correct and helpful response."""

    instruction: str = dspy.InputField()
    response: str = dspy.OutputField()
