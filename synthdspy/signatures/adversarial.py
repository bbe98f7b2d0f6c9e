"""Adversarial corruption signatures: answers (or questions) that fail in one controlled way.

They make labelled negatives for testing gates: each corruption corresponds to a failure class a
hallucination judge should name (see :mod:`synthdspy.tasks.adversarial`). Parametric drift has no
signature here: it is an answer written without the source (``AnswerFromMemory``).
"""

from __future__ import annotations

from typing import Literal

import dspy

Corruption = Literal["contradicts_source", "domain_mismatch", "instruction_quality"]

CORRUPTIONS: dict[str, str] = {
    "contradicts_source": "state the opposite of, or a wrong value for, one specific fact in the source, "
    "confidently and as if it were what the source says",
    "domain_mismatch": "answer in the vocabulary and framing of an unrelated field (for example finance, "
    "sports or cooking), as if the subject belonged to that field",
    "instruction_quality": "stay vague and hedging, talk around the question and never answer it directly",
}


class CorruptAnswer(dspy.Signature):
    """Write a deliberately flawed answer to the question for a test set of bad examples. The answer
    must read fluently and plausibly, and be flawed in exactly the way the corruption describes."""

    question: str = dspy.InputField()
    source: str = dspy.InputField(desc="the source passage the flawed answer is about")
    corruption: Corruption = dspy.InputField(desc="the kind of flaw")
    corruption_guide: str = dspy.InputField(desc="what that flaw looks like")
    answer: str = dspy.OutputField(desc="the flawed answer, a few sentences")


class WriteVagueQuestion(dspy.Signature):
    """Write a deliberately poor question about the text for a test set of bad examples: vague and
    underspecified, so that it could be read several ways and has no single clear answer."""

    source: str = dspy.InputField(desc="the text the question is loosely about")
    question: str = dspy.OutputField(desc="one vague question")
