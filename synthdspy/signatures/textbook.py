"""Textbook-style lesson generation (Chen et al. 2024, appendix F: Topic+Styles+Persona template)."""

from __future__ import annotations

import dspy
from pydantic import BaseModel, Field


class LessonPassage(BaseModel):
    """One passage of a lesson and the concepts it introduces."""

    text: str = Field(description="the passage, a paragraph or two")
    new_concepts: list[str] = Field(description="the concepts this passage teaches that earlier ones did not")


class MultipleChoiceQuestion(BaseModel):
    """A multiple-choice question that checks the lesson."""

    question: str
    options: list[str] = Field(description="four answer options")
    answer: str = Field(description="the correct option, copied exactly from options")
    explanation: str = Field(description="step-by-step explanation of why the answer is correct")


class WriteLesson(dspy.Signature):
    """Write a short lesson on the topic for the chosen reader, in the given style.

    First choose, from the candidate personas, the reader this lesson suits best. Then write 3 to 5
    passages that build on each other, each more nuanced than the last, weaving in the subtopics and
    keywords. List what each passage newly teaches. Finish with one multiple-choice question that
    tests the lesson, with its correct option and a step-by-step explanation."""

    topic: str = dspy.InputField()
    subtopics: list[str] = dspy.InputField()
    keywords: list[str] = dspy.InputField(desc="terms the lesson should use")
    style: str = dspy.InputField(desc="the writing style and what it means")
    personas: list[str] = dspy.InputField(desc="candidate readers; pick the most fitting one")
    persona: str = dspy.OutputField(desc="the chosen reader, copied from personas")
    passages: list[LessonPassage] = dspy.OutputField(desc="3 to 5 passages of growing nuance")
    quiz: MultipleChoiceQuestion = dspy.OutputField()
