"""Evol-Instruct signature (Xu et al. 2023, "WizardLM", sec. 3.1: in-depth and in-breadth evolving)."""

from __future__ import annotations

from typing import Literal

import dspy

Strategy = Literal["add_constraints", "deepen", "concretize", "increase_reasoning", "broaden"]

STRATEGIES: dict[str, str] = {
    "add_constraints": "add two or three specific requirements, limits or edge cases the response must respect",
    "deepen": "ask for the depth of understanding a domain expert would bring, not a surface answer",
    "concretize": "replace general references with specific, concrete cases, names or numbers",
    "increase_reasoning": "make it need several explicit reasoning steps to answer",
    "broaden": "widen it to cover related sub-topics or a neighbouring, less common case",
}


class EvolveInstruction(dspy.Signature):
    """Rewrite the instruction into a harder but still reasonable and answerable one, using the
    given evolution strategy. Keep it self-contained and stay on the same subject; when context is
    given, the new instruction must still be answerable from it. Do not answer it."""

    instruction: str = dspy.InputField(desc="the instruction to evolve")
    context: str = dspy.InputField(desc="the source passage or task input it refers to; may be empty")
    strategy: Strategy = dspy.InputField()
    strategy_guide: str = dspy.InputField(desc="what the strategy asks for")
    evolved_instruction: str = dspy.OutputField(desc="the rewritten instruction")
