"""Program-of-thought signature of the ``pot_math`` task (Liu et al. 2023, "TinyGSM", section 2):
a math word problem answered by a Python function whose returned value is the answer."""

from __future__ import annotations

import dspy


class WriteSolutionProgram(dspy.Signature):
    """Solve the math word problem by writing a Python program. Define a function `solution()` that
    takes no arguments, computes the answer step by step from the quantities in the problem (one
    well-named variable per quantity, a short comment where a step needs one) and returns the final
    answer as a number. Use only the standard library; do not read input, print, open files or use
    the network. Return the code alone."""

    question: str = dspy.InputField(desc="the math word problem")
    program: str = dspy.OutputField(desc="Python source defining solution() -> the numeric answer")
