"""Hallucination-judge signatures: a faithfulness check, then a diagnosis of why a record failed it.

The failure classes follow the peer tool's hallucination gate: an answer from the model's own
memory instead of the source (GENERATOR_PARAMETRIC), sampling noise from a too-high temperature
(GENERATOR_TEMPERATURE), the wrong field's vocabulary or framing (DOMAIN_MISMATCH), and a question
too vague to answer well (INSTRUCTION_QUALITY).
"""

from __future__ import annotations

from typing import Literal

import dspy

Failure = Literal["GENERATOR_PARAMETRIC", "GENERATOR_TEMPERATURE", "DOMAIN_MISMATCH", "INSTRUCTION_QUALITY"]
Diagnosis = Literal["GENERATOR_PARAMETRIC", "GENERATOR_TEMPERATURE", "DOMAIN_MISMATCH", "INSTRUCTION_QUALITY",
                    "NONE"]


class CheckFaithful(dspy.Signature):
    """Check a question-answer pair against its source passage. It is faithful only if the question
    is clear and specific and every claim in the answer is stated in or directly implied by the
    source: no contradiction of the source, no outside facts, no drift to another subject."""

    source: str = dspy.InputField(desc="the source passage")
    question: str = dspy.InputField()
    answer: str = dspy.InputField(desc="the text to check")
    faithful: bool = dspy.OutputField(desc="true only if the pair passes every part of the check")
    reason: str = dspy.OutputField(desc="one or two sentences naming the problem, if any")


class DiagnoseFailure(dspy.Signature):
    """This question-answer pair failed a faithfulness check against its source. Name the most
    likely cause. GENERATOR_PARAMETRIC: the answer relies on general knowledge or contradicts the
    source, as if written without reading it. GENERATOR_TEMPERATURE: the answer starts on the source
    but wanders into incoherent, erratic or random claims, as from sampling too hot.
    DOMAIN_MISMATCH: the answer frames the subject with the vocabulary of an unrelated field.
    INSTRUCTION_QUALITY: the question itself is vague or underspecified, so the answer cannot be
    precise."""

    source: str = dspy.InputField(desc="the source passage")
    question: str = dspy.InputField()
    answer: str = dspy.InputField(desc="the text that failed the check")
    finding: str = dspy.InputField(desc="what the faithfulness check found")
    diagnosis: Failure = dspy.OutputField(desc="the most likely cause")
    reason: str = dspy.OutputField(desc="one sentence of evidence for that cause")
