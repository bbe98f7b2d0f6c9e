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
    pairwise,
    pii,
    self_curation,
    toxicity,
)
from synthdspy.plugins import load_plugins
from synthdspy.registry import GATES, TASKS
from synthdspy.tasks import (  # noqa: F401  (registration)
    adversarial,
    backtranslation,
    constitutional,
    cot,
    custom,
    entigraph,
    evol,
    grpo,
    mind,
    multiturn,
    pot_math,
    preference,
    pretraining,
    qa,
    rephrase,
    self_instruct,
    skill_mix,
    textbook,
    tinystories,
    variation,
)

load_plugins()  # third-party tasks and gates (entry points), after the built-ins

__all__ = ["GATES", "TASKS"]
