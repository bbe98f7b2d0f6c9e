"""``headline``: one headline per passage, registered from outside the synthdspy package."""

from __future__ import annotations

import dspy
from pydantic import Field

from synthdspy.records import Record, Seed
from synthdspy.registry import Params, register_task
from synthdspy.tasks.base import Task, require, sampling_config


class WriteHeadline(dspy.Signature):
    """Write a short, factual headline for the passage."""

    passage: str = dspy.InputField()
    headline: str = dspy.OutputField(desc="at most a dozen words, no quotes")


class HeadlineParams(Params):
    """Parameters of the ``headline`` task."""

    prefix: str = Field("", description="text put before every instruction")


@register_task("headline", HeadlineParams)
class HeadlineTask(Task):
    """A headline for a source passage (a plugin task, one record per seed)."""

    name = "headline"

    def __init__(self, prefix: str = "") -> None:
        super().__init__()
        self.prefix = prefix
        self.write = dspy.Predict(WriteHeadline)

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:
        (source,) = require(seed, self.name, "source")
        pred = self.write(passage=source, config=sampling_config(rollout))
        instruction = f"{self.prefix}Write a headline for the passage."
        return [self.record(seed, rollout, 0, instruction=instruction, input=source, output=pred.headline)]
