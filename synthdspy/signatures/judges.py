"""Judge signatures used by gates and by the compile objective."""

from __future__ import annotations

import dspy


class JudgeGrounding(dspy.Signature):
    """Decide whether every claim in the response is supported by the source. A claim that adds
    facts the source does not state, or contradicts it, makes the response unsupported."""

    source: str = dspy.InputField(desc="the source passage")
    instruction: str = dspy.InputField(desc="what the response was asked to do")
    response: str = dspy.InputField(desc="the text to check")
    supported: bool = dspy.OutputField(desc="true only if every claim is supported by the source")
    reason: str = dspy.OutputField(desc="one or two sentences naming the unsupported claim, if any")


class JudgeQuality(dspy.Signature):
    """Score the response against the rubric on a 1-10 scale, where 10 is excellent training data and
    1 is unusable. Judge correctness, faithfulness to any source, completeness and clarity."""

    rubric: str = dspy.InputField(desc="what a good response looks like for this task")
    instruction: str = dspy.InputField()
    source: str = dspy.InputField(desc="the source passage, or empty if none")
    response: str = dspy.InputField()
    score: int = dspy.OutputField(desc="an integer from 1 to 10")
    rationale: str = dspy.OutputField(desc="why this score, in one or two sentences")
