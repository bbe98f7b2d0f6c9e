"""Judge signatures for dimension-controlled data (strategy seed, sections A.3-A.4 and B.2): a yes/no
check for step-by-step reasoning, and a classifier of a text's value on one information dimension."""

from __future__ import annotations

from typing import Literal

import dspy

from synthdspy.seeds.catalog import Dimension


class JudgeStepByStep(dspy.Signature):
    """Decide whether the text shows explicit step-by-step reasoning: the steps are written out,
    each follows clearly from the ones before, and intermediate results are shown on the way from
    the premises to the conclusion, not only the conclusion itself."""

    text: str = dspy.InputField()
    step_by_step: bool = dspy.OutputField(desc="true only if the reasoning is laid out in explicit steps")
    reason: str = dspy.OutputField(desc="one or two sentences pointing at what decided it")


class ClassifyDimension(dspy.Signature):
    """Classify the text on one information dimension: choose the value whose meaning fits it best.

    Judge this dimension alone; the text's other properties (topic, length, other dimensions) do
    not count."""

    text: str = dspy.InputField()
    dimension: str = dspy.InputField(desc="the dimension's name and what it describes")
    values: str = dspy.InputField(desc="the possible values, one per line: name, meaning, how such a text reads")
    label: str = dspy.OutputField(desc="the value that fits the text, copied exactly")
    reason: str = dspy.OutputField(desc="one or two sentences of evidence from the text")


def classify_signature(dimension: Dimension) -> type[dspy.Signature]:
    """:class:`ClassifyDimension` with ``label`` typed as a ``Literal`` of ``dimension``'s value
    names, so the adapter constrains and validates the answer."""
    labels = Literal[tuple(v.name for v in dimension.values)]  # type: ignore[valid-type]
    return ClassifyDimension.with_updated_fields("label", type_=labels)
