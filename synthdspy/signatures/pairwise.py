"""Pairwise-judge signature: which of two responses is better on named criteria (``pairwise`` gate)."""

from __future__ import annotations

from typing import Literal

import dspy

Preference = Literal["A", "B", "tie"]


class ComparePair(dspy.Signature):
    """Two responses answer the same instruction. Weigh them against each numbered criterion and
    decide which one is better overall. Judge substance only: which response comes first, how long
    it is and how confident it sounds are not reasons to prefer it. Answer tie only when neither is
    better on balance."""

    criteria: str = dspy.InputField(desc="numbered criteria, most important first")
    instruction: str = dspy.InputField(desc="what both responses were asked to do, or empty")
    source: str = dspy.InputField(desc="the passage both responses should be faithful to, or empty")
    response_a: str = dspy.InputField(desc="response A")
    response_b: str = dspy.InputField(desc="response B")
    better: Preference = dspy.OutputField(desc="A, B or tie")
    reason: str = dspy.OutputField(desc="one or two sentences naming the criterion that decided")
