"""Textbook-style lesson generation (Chen et al. 2024, appendix F): one signature per prompt template.

Templates: Topic (F.1.1), Topic+Styles (F.1.2), Topic+Styles+Persona (F.1.3) and
Multi-Topic+Styles+Persona (F.1.4). All write 3-5 passages of growing nuance, each with the
concepts it newly teaches, then one multiple-choice question with a step-by-step explanation.
"""

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


class TopicSeed(BaseModel):
    """One candidate topic of a multi-topic lesson, with its subtopics and keywords."""

    topic: str
    subtopics: list[str]
    keywords: list[str]


class WriteTopicLesson(dspy.Signature):
    """Write a short textbook lesson for a reader who knows the basics of the topic and wants to learn
    its subtopics.

    Write 3 to 5 passages that build on each other, each more detailed and nuanced than the last,
    guided by the keywords. List what each passage newly teaches. Finish with one multiple-choice
    question on the hardest ideas of the lesson, with its correct option and a step-by-step
    explanation."""

    topic: str = dspy.InputField()
    subtopics: list[str] = dspy.InputField()
    keywords: list[str] = dspy.InputField(desc="terms the lesson should use")
    passages: list[LessonPassage] = dspy.OutputField(desc="3 to 5 passages of growing nuance")
    quiz: MultipleChoiceQuestion = dspy.OutputField()


class WriteStyledLesson(dspy.Signature):
    """Write a short lesson on the topic in the given style, for a reader who knows the basics and
    wants to learn the subtopics.

    Develop each idea in depth before moving on, and connect it to real examples. Write 3 to 5
    passages that build on each other, each more nuanced than the last, guided by the keywords, and
    list what each passage newly teaches. Finish with one multiple-choice question on the hardest
    ideas, with its correct option and a step-by-step explanation."""

    topic: str = dspy.InputField()
    subtopics: list[str] = dspy.InputField()
    keywords: list[str] = dspy.InputField(desc="terms the lesson should use")
    style: str = dspy.InputField(desc="the writing style and what it means")
    passages: list[LessonPassage] = dspy.OutputField(desc="3 to 5 passages of growing nuance")
    quiz: MultipleChoiceQuestion = dspy.OutputField()


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


class WriteMultiTopicLesson(dspy.Signature):
    """Write a short lesson in the given style for the chosen reader, combining several topics.

    First choose, from the candidate personas, the reader this lesson suits best. Then pick the
    topics and subtopics that combine naturally into one lesson; if none combine well, use a single
    topic with all of its subtopics. Write 3 to 5 passages that build on each other, each more
    nuanced than the last, guided by the keywords, and list what each passage newly teaches. Finish
    with one multiple-choice question on the hardest ideas, with its correct option and a
    step-by-step explanation."""

    topics: list[TopicSeed] = dspy.InputField(desc="candidate topics with their subtopics and keywords")
    style: str = dspy.InputField(desc="the writing style and what it means")
    personas: list[str] = dspy.InputField(desc="candidate readers; pick the most fitting one")
    persona: str = dspy.OutputField(desc="the chosen reader, copied from personas")
    topics_used: list[str] = dspy.OutputField(desc="the topics the lesson combines, copied from topics")
    passages: list[LessonPassage] = dspy.OutputField(desc="3 to 5 passages of growing nuance")
    quiz: MultipleChoiceQuestion = dspy.OutputField()
