"""Imports every task and gate module so that they register, and re-exports the registries."""

from synthdspy.gates import code_tests, dedup, heuristics, judged, math_answer  # noqa: F401  (registration)
from synthdspy.registry import GATES, TASKS
from synthdspy.tasks import cot, qa, textbook  # noqa: F401  (registration)

__all__ = ["GATES", "TASKS"]
