"""The generation-task interface and the record construction every task shares."""

from __future__ import annotations

from typing import Any

import dspy

from synthdspy.records import Provenance, Record, Seed, SeedFieldError


def sampling_config(rollout: int) -> dict[str, Any]:
    """Per-call LM config for rollout ``rollout``: rollout 0 is the plain call; later rollouts pass a
    ``rollout_id`` so they bypass the cache entry of rollout 0 but replay their own on a re-run."""
    return {"rollout_id": rollout} if rollout else {}


def current_provenance(seed: Seed, rollout: int, program_hash: str) -> Provenance:
    """Provenance of a record generated now under ``dspy.settings.lm`` (``lm=sim/...`` when simulated)."""
    lm = dspy.settings.lm
    return Provenance(
        program_hash=program_hash,
        lm=getattr(lm, "model", "") or "",
        temperature=(getattr(lm, "kwargs", {}) or {}).get("temperature"),
        rollout_id=rollout,
        seed_id=seed.id,
    )


class Task(dspy.Module):
    """A generation task: ``forward(seed, rollout=0) -> list[Record]``.

    Subclasses set ``name`` (the registry name, stored in ``Record.task``) and build records with
    :meth:`record`, whose ids hash (seed id, rollout, task, item index, program hash): re-running
    the same program on the same seed and rollout gives the same ids, which is how resume works.
    """

    name: str = "task"
    program_hash: str = ""

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:  # pragma: no cover - interface
        raise NotImplementedError

    def record(self, seed: Seed, rollout: int, index: int, **fields: Any) -> Record:
        """A record for item ``index`` of ``seed`` with a stable id and current provenance; the
        seed's ``metadata`` (where it came from) is merged into the record's (the task's keys win)."""
        if seed.metadata:
            fields["metadata"] = {**seed.metadata, **(fields.get("metadata") or {})}
        seed_key = f"{seed.id}#{rollout}"
        return Record(
            id=Record.make_id(seed_key, self.name, index, self.program_hash),
            task=self.name,
            provenance=current_provenance(seed, rollout, self.program_hash),
            **fields,
        )


def require(seed: Seed, task: str, *names: str) -> list[Any]:
    """The values of ``names`` in ``seed.data``.

    Raises:
        SeedFieldError: naming the seed, the task and the missing fields, and the fields the seed has;
            or the fields that are present but null or empty.
    """
    missing = [n for n in names if n not in seed.data]
    empty = {n: "null" if seed.data[n] is None else "empty" for n in names
             if n in seed.data and seed.data[n] in (None, "")}
    if missing:
        raise SeedFieldError(
            f"seed {seed.id}: task {task!r} needs field(s) {missing}; the seed has {sorted(seed.data)} "
            "(map your file's columns with [seeds] fields = {...})"
        )
    if empty:
        said = ", ".join(f"{n!r} is {how}" for n, how in empty.items())
        raise SeedFieldError(f"seed {seed.id}: task {task!r} needs a value, but {said}")
    return [seed.data[n] for n in names]
