"""Helpers shared by the peer-catalog tasks: per-call sampling settings and corpus-aware seed reading."""

from __future__ import annotations

import random
from typing import Any

import dspy

from synthdspy.records import Seed

DEFAULT_TEMPERATURE = 0.7
MAX_TEMPERATURE = 2.0


def base_temperature() -> float:
    """The current generator LM's temperature (``dspy.settings.lm``), or 0.7 when it sets none."""
    lm = dspy.settings.lm
    value = (getattr(lm, "kwargs", {}) or {}).get("temperature")
    return DEFAULT_TEMPERATURE if value is None else float(value)


def call_config(rollout: int, index: int = 0, stride: int = 1, temperature: float | None = None) -> dict[str, Any]:
    """Per-call LM config for sub-call ``index`` (of ``stride``) in unit rollout ``rollout``.

    Calls with identical prompts inside one unit (GRPO rollouts, repeated injections) need distinct
    cache entries, so the call gets ``rollout_id = rollout * stride + index`` (omitted when 0, the
    plain call, as in :func:`synthdspy.tasks.base.sampling_config`). ``temperature`` (clipped to
    [0, :func:`max_temperature`]) overrides the LM's own for this call only; reasoning models,
    which take no temperature, get none.
    """
    config: dict[str, Any] = {}
    rollout_id = rollout * stride + index
    if rollout_id:
        config["rollout_id"] = rollout_id
    lm = dspy.settings.lm
    if temperature is not None and not getattr(lm, "fixed_temperature", False):
        config["temperature"] = round(min(max_temperature(), max(0.0, temperature)), 4)
    return config


def max_temperature() -> float:
    """The highest temperature the current LM's provider accepts (``max_temperature`` set by
    :func:`synthdspy.lm.build_role`: 1.0 for Anthropic), else 2.0."""
    return float(getattr(dspy.settings.lm, "max_temperature", MAX_TEMPERATURE))


def seed_instruction(seed: Seed) -> str:
    """The instruction a seed already carries (``instruction`` or ``question``), else ``""``."""
    return str(seed.data.get("instruction") or seed.data.get("question") or "").strip()


def seed_context(seed: Seed) -> str:
    """The text a record is grounded in: the seed's ``source`` chunk, else its ``input``, else ``""``."""
    return str(seed.data.get("source") or seed.data.get("input") or "").strip()


def unit_rng(*parts: object) -> random.Random:
    """A ``random.Random`` seeded by the string ``"/".join(parts)`` (stable across processes)."""
    return random.Random("/".join(str(p) for p in parts))
