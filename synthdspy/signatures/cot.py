"""Chain-of-thought signatures: solve with reasoning, or explain a known answer."""

from __future__ import annotations

import dspy


class SolveWithReasoning(dspy.Signature):
    """Solve the problem. Work through it step by step, one short numbered step per line,
    showing each calculation, then give the final answer alone."""

    question: str = dspy.InputField(desc="the problem to solve")
    reasoning: str = dspy.OutputField(desc="numbered steps that lead to the answer")
    answer: str = dspy.OutputField(desc="the final answer only, e.g. a number without units")


class ExplainKnownAnswer(dspy.Signature):
    """The final answer to the problem is given. Write step-by-step reasoning, one numbered step per
    line, that starts from the facts in the problem and arrives at exactly that answer."""

    question: str = dspy.InputField(desc="the problem")
    answer: str = dspy.InputField(desc="the known final answer")
    reasoning: str = dspy.OutputField(desc="numbered steps ending at the given answer")
