"""Imports every task and gate module so that they register, and re-exports the registries."""

from synthdspy.gates import (  # noqa: F401  (registration)
    code_tests,
    cot_check,
    dedup,
    dimension,
    hallucination,
    heuristics,
    judged,
    math_answer,
)
from synthdspy.registry import GATES, TASKS
from synthdspy.tasks import (  # noqa: F401  (registration)
    adversarial,
    cot,
    evol,
    grpo,
    mind,
    multiturn,
    preference,
    pretraining,
    qa,
    rephrase,
    self_instruct,
    textbook,
    tinystories,
    variation,
)

__all__ = ["GATES", "TASKS"]
