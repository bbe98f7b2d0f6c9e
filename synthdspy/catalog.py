"""Imports every task and gate module so that they register, and re-exports the registries."""

from synthdspy.gates import cot_check, dimension, hallucination, judged, math_answer  # noqa: F401  (registration)
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
