"""The generation-task interface."""

from __future__ import annotations

import dspy

from synthdspy.records import Record, Seed


class Task(dspy.Module):
    """A generation task: ``forward(seed) -> list[Record]``.

    Subclasses set ``name`` (the registry name, stored in ``Record.task``). Records carry ids made
    with :meth:`Record.make_id` from the seed id, the task name, the item index and
    ``program_hash`` (set by the program before generation), so re-generation is idempotent.
    """

    name: str = "task"
    program_hash: str = ""

    def forward(self, seed: Seed) -> list[Record]:  # pragma: no cover - interface
        raise NotImplementedError
