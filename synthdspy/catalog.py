"""Imports every task and gate module so that they register, and re-exports the registries."""

from synthdspy.gates import hallucination, judged, math_answer  # noqa: F401  (registration)
from synthdspy.registry import GATES, TASKS
from synthdspy.tasks import adversarial, cot, evol, grpo, multiturn, preference, qa, textbook  # noqa: F401

__all__ = ["GATES", "TASKS"]
