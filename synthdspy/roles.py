"""Which LM role is active: the role context that gates and programs run under.

This module imports nothing of synthdspy, so that gates (which run their predictors under the
judge) need not import :mod:`synthdspy.lm`, and the chain config -> catalog -> gates -> lm ->
config is not a cycle. The roles object is duck-typed (:class:`Roles`); :class:`synthdspy.lm.LMs`
is the one synthdspy builds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol

import dspy

ROLES_KEY = "synthdspy_roles"
"""The ``dspy.settings`` key holding the active roles (copied by DSPy into its worker threads)."""


class Roles(Protocol):
    """What the role context needs of the LMs: the generator and the judge, and each role's adapter."""

    generator: dspy.BaseLM
    judge: dspy.BaseLM

    def adapter_for(self, role: str) -> dspy.Adapter:
        """The adapter of ``role`` (``[lm.<role>] adapter``)."""
        ...


@contextlib.contextmanager
def roles_context(roles: Roles) -> Iterator[None]:
    """Run DSPy code with the generator as the default LM and ``roles`` reachable by gates.

    DSPy copies these settings into its worker threads, so gates inside ``dspy.Parallel`` or an
    optimizer's evaluation see the same roles.
    """
    with dspy.context(lm=roles.generator, adapter=roles.adapter_for("generator"), **{ROLES_KEY: roles}):
        yield


def current_roles() -> Any:
    """The roles of the enclosing :func:`roles_context` (a :class:`Roles`), or None."""
    return getattr(dspy.settings, ROLES_KEY, None)


@contextlib.contextmanager
def judge_context() -> Iterator[None]:
    """Run the enclosed predictors under the judge role (the current LM when no roles are set)."""
    roles = current_roles()
    if roles is None:
        yield
        return
    with dspy.context(lm=roles.judge, adapter=roles.adapter_for("judge")):
        yield
