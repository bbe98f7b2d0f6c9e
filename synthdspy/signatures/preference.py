"""Preference-pair signatures: a strong (chosen) and a deliberately weaker (rejected) answer.

The rejected answer is weaker by one named degradation pattern, never by invented facts, so the
pair teaches depth and precision rather than hallucination avoidance (that is what
``adversarial_preference`` is for).
"""

from __future__ import annotations

from typing import Literal

import dspy

Degradation = Literal["omit_key_detail", "vague_language", "miss_distinction"]

DEGRADATIONS: dict[str, str] = {
    "omit_key_detail": "leave out the single most important specific detail the source provides",
    "vague_language": "use general, vague wording wherever the source is concrete (no figures, names or dates)",
    "miss_distinction": "blur or ignore a distinction the source makes explicitly",
}


class WritePreferencePair(dspy.Signature):
    """From the source passage, write one question it answers, then two answers. The chosen answer
    is thorough and precise and cites the passage's specific details. The rejected answer is still
    correct but weaker in exactly one way, the given degradation; it must not invent facts."""

    source: str = dspy.InputField(desc="the source passage")
    degradation: Degradation = dspy.InputField(desc="how the rejected answer falls short")
    degradation_guide: str = dspy.InputField(desc="what that degradation means")
    question: str = dspy.OutputField(desc="one question the passage answers")
    chosen: str = dspy.OutputField(desc="the better answer")
    rejected: str = dspy.OutputField(desc="the weaker answer, degraded only in the given way")


class AnswerAsPair(dspy.Signature):
    """Write two answers to the question. The chosen answer is thorough, precise and specific,
    faithful to the source when one is given. The rejected answer is still correct but weaker in
    exactly one way, the given degradation; it must not invent facts."""

    question: str = dspy.InputField()
    source: str = dspy.InputField(desc="the source passage or task input; may be empty")
    degradation: Degradation = dspy.InputField(desc="how the rejected answer falls short")
    degradation_guide: str = dspy.InputField(desc="what that degradation means")
    chosen: str = dspy.OutputField(desc="the better answer")
    rejected: str = dspy.OutputField(desc="the weaker answer, degraded only in the given way")


class WriteWeakerAnswer(dspy.Signature):
    """Write a plausible but noticeably weaker answer to the question: correct as far as it goes,
    but falling short in exactly one way, the given degradation. Do not invent facts."""

    question: str = dspy.InputField()
    source: str = dspy.InputField(desc="the source passage or task input; may be empty")
    degradation: Degradation = dspy.InputField(desc="how the answer falls short")
    degradation_guide: str = dspy.InputField(desc="what that degradation means")
    answer: str = dspy.OutputField(desc="the weaker answer")
