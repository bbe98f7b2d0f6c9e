"""Seeded choices that depend only on (seed id, rollout): how tasks spread a list of options over seeds.

Draws are reproducible in any order and across processes (no shared RNG state), so a resumed run
makes the same choices and DSPy's cache replays the same calls.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

from synthdspy.records import content_hash

T = TypeVar("T")


def seeded_rng(*parts: object) -> random.Random:
    """A ``random.Random`` seeded from ``parts`` (for example a task name, a seed id and a rollout)."""
    return random.Random(content_hash(*parts))


def rotate(options: Sequence[T], seed_id: str, rollout: int) -> T:
    """The option for (``seed_id``, ``rollout``): a per-seed offset, then one step per rollout.

    Rollout 0 spreads the options over seeds by a hash of the seed id; rollouts 1, 2, ... of one
    seed walk through the remaining options in order, so ``len(options)`` rollouts of a seed use
    every option exactly once.

    Raises:
        ValueError: ``options`` is empty.
    """
    if not options:
        raise ValueError("rotate: no options to choose from")
    offset = int(content_hash("rotate", seed_id), 16)
    return options[(offset + rollout) % len(options)]
