"""Source-grounded question and answer steps shared by the preference, GRPO, evol and adversarial tasks."""

from __future__ import annotations

import dspy


class WriteQuestion(dspy.Signature):
    """Read the passage and ask one specific question about it that a careful reader could answer
    from the passage alone. Prefer a question about a concrete fact, figure, name or distinction the
    passage states over a question about its general theme."""

    source: str = dspy.InputField(desc="the source passage")
    question: str = dspy.OutputField(desc="one self-contained question")


class AnswerFromSource(dspy.Signature):
    """Answer the question using the source passage. State the specific details the passage gives
    (names, numbers, conditions, distinctions) and add nothing the passage does not support. When
    the source is empty, answer the question as accurately and completely as you can."""

    question: str = dspy.InputField()
    source: str = dspy.InputField(desc="the source passage or task input; may be empty")
    answer: str = dspy.OutputField(desc="a complete answer in a few sentences")


class AnswerFromMemory(dspy.Signature):
    """Answer the question from general knowledge alone, as a well-read person would, without
    looking anything up. Be direct and confident."""

    question: str = dspy.InputField()
    answer: str = dspy.OutputField(desc="a few sentences")
