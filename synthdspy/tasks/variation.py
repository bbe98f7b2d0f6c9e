"""``variation``: rewrite a record or passage towards another value of one dimension, keeping its content
(strategy seed, section B.3: variation prompts)."""

from __future__ import annotations

import dspy
from pydantic import Field, model_validator

from synthdspy.records import Record, Seed, SeedFieldError
from synthdspy.registry import Params, register_task
from synthdspy.seeds.catalog import Dimension, load_dimensions
from synthdspy.signatures.pretraining import RewriteToDimensionValue
from synthdspy.tasks.base import Task, sampling_config
from synthdspy.tasks.pretraining import seed_dimensions
from synthdspy.tasks.rotation import seeded_rng

ANY_OTHER = "any"


def catalog_dimension(name: str) -> Dimension:
    """The shipped catalog's dimension called ``name``.

    Raises:
        ValueError: no such dimension, listing the known ones.
    """
    dims = {d.name: d for d in load_dimensions()}
    if name not in dims:
        raise ValueError(f"unknown dimension {name!r}; known: {', '.join(dims)}")
    return dims[name]


class VariationParams(Params):
    """Parameters of the ``variation`` task: the dimension to change and the value to reach
    (``any``: a value other than the record's own, drawn per seed and rollout)."""

    dimension: str = "Style"
    target: str = Field(ANY_OTHER, description="a value of `dimension`, or 'any' for any other value")

    @model_validator(mode="after")
    def _check(self) -> VariationParams:
        values = [v.name for v in catalog_dimension(self.dimension).values]
        if self.target != ANY_OTHER and self.target not in values:
            raise ValueError(f"target {self.target!r} is not a value of {self.dimension!r}; values: {values}")
        return self


@register_task("variation", VariationParams)
class VariationTask(Task):
    """A record or passage rewritten to another value of one dimension, its content kept.

    Seeds: records (a previous run's ``records.jsonl``: ``output``, ``instruction``,
    ``dimensions``) or passages (``source``); the rewrite moves ``dimension`` to ``target``.

    The rewritten text is ``record.output``, the original text ``record.input`` (so the ``grounding``
    gate checks that the content survived), ``record.dimensions`` the original dimensions with the
    changed one updated, and metadata ``original_id`` (the seed id: the record's or passage's id),
    ``dimension``, ``original_value`` (None when the seed has no value) and ``target_value``.
    A seed already at ``target`` has nothing to vary and gives no record.
    """

    name = "variation"

    def __init__(self, dimension: str = "Style", target: str = ANY_OTHER) -> None:
        super().__init__()
        self.dimension = catalog_dimension(dimension)
        self.target = target
        self.rewrite = dspy.Predict(RewriteToDimensionValue)

    def pick_target(self, current: str | None, seed: Seed, rollout: int) -> str:
        """``target``, or for ``any`` a value other than ``current`` drawn by (seed id, rollout)."""
        if self.target != ANY_OTHER:
            return self.target
        others = [v.name for v in self.dimension.values if v.name != current]
        return seeded_rng("variation", self.dimension.name, seed.id, rollout).choice(others)

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:
        text = seed.data.get("output") or seed.data.get("source")
        if not text:
            raise SeedFieldError(
                f"seed {seed.id}: task {self.name!r} needs 'output' (a record) or 'source' (a passage); "
                f"the seed has {sorted(seed.data)}"
            )
        dims = seed_dimensions(seed, self.name)
        current = dims.get(self.dimension.name)
        target = self.pick_target(current, seed, rollout)
        if target == current:
            return []
        value = next(v for v in self.dimension.values if v.name == target)
        pred = self.rewrite(
            text=str(text),
            dimension=f"{self.dimension.name}: {self.dimension.description}",
            current_value=current or "unknown",
            target_value=f"{value.name}: {value.meaning} How to write it: {value.instructions}",
            config=sampling_config(rollout),
        )
        return [
            self.record(
                seed, rollout, 0, instruction=str(seed.data.get("instruction") or ""), input=str(text),
                output=pred.rewritten.strip(), dimensions={**dims, self.dimension.name: target},
                metadata={"original_id": seed.id, "dimension": self.dimension.name,
                          "original_value": current, "target_value": target},
            )
        ]
