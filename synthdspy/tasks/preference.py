"""``preference``: DPO pairs (question, chosen, rejected) whose rejected answer is weaker by one named pattern."""

from __future__ import annotations

from typing import Literal

import dspy
from pydantic import Field

from synthdspy.records import Record, Seed
from synthdspy.registry import Params, register_task
from synthdspy.signatures.grounded import AnswerFromSource, WriteQuestion
from synthdspy.signatures.preference import (
    DEGRADATIONS,
    AnswerAsPair,
    Degradation,
    WritePreferencePair,
    WriteWeakerAnswer,
)
from synthdspy.tasks.base import Task, require
from synthdspy.tasks.common import base_temperature, call_config, seed_context, seed_instruction, unit_rng


class PreferenceParams(Params):
    """Parameters of the ``preference`` task."""

    mode: Literal["single_call", "two_pass"] = "single_call"
    degradations: list[Degradation] = Field(
        default_factory=list, description="patterns to draw the rejected answer's from; empty = all three"
    )
    rejected_temperature_offset: float = Field(0.3, ge=0, le=1, description="two_pass: added to the base temperature")


@register_task("preference", PreferenceParams)
class PreferenceTask(Task):
    """One preference pair per seed: a question, a strong ``chosen`` and a ``rejected`` answer.

    The rejected answer is weaker by one degradation pattern (omit the key detail, vague where the
    source is concrete, miss a stated distinction), drawn per (seed, rollout) from ``degradations``
    and stored in ``metadata.degradation``. ``single_call`` writes question, chosen and rejected in
    one call; ``two_pass`` writes the chosen answer and then, in a separate call at the generator's
    temperature + ``rejected_temperature_offset`` (capped at 2), the rejected one.

    Corpus-aware: a seed with ``source`` gets a question written from it (stored in
    ``record.input``); a seed with an ``instruction``/``question`` is answered directly.

    Raises:
        KeyError: the seed has neither a source nor an instruction.
    """

    name = "preference"

    def __init__(self, mode: str = "single_call", degradations: list[str] | None = None,
                 rejected_temperature_offset: float = 0.3) -> None:
        super().__init__()
        self.mode = mode
        self.degradations = list(degradations or DEGRADATIONS)
        self.rejected_temperature_offset = rejected_temperature_offset
        self.write_pair = dspy.Predict(WritePreferencePair)
        self.answer_pair = dspy.Predict(AnswerAsPair)
        self.write_question = dspy.Predict(WriteQuestion)
        self.answer = dspy.Predict(AnswerFromSource)
        self.weaken = dspy.Predict(WriteWeakerAnswer)

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:
        question, context = seed_instruction(seed), seed_context(seed)
        if not question:
            (context,) = require(seed, self.name, "source")
        pattern = unit_rng(seed.id, rollout).choice(self.degradations)
        guide = DEGRADATIONS[pattern]
        config = call_config(rollout)
        metadata = {"degradation": pattern, "mode": self.mode}
        if self.mode == "single_call":
            if question:
                pred = self.answer_pair(question=question, source=context, degradation=pattern,
                                        degradation_guide=guide, config=config)
            else:
                pred = self.write_pair(source=context, degradation=pattern, degradation_guide=guide, config=config)
                question = pred.question
            chosen, rejected = pred.chosen, pred.rejected
        else:
            if not question:
                question = self.write_question(source=context, config=config).question
            chosen = self.answer(question=question, source=context, config=config).answer
            hotter = base_temperature() + self.rejected_temperature_offset
            rejected_config = call_config(rollout, temperature=hotter)
            rejected = self.weaken(question=question, source=context, degradation=pattern,
                                   degradation_guide=guide, config=rejected_config).answer
            metadata["rejected_temperature"] = rejected_config["temperature"]
        return [self.record(seed, rollout, 0, instruction=question, input=context, chosen=chosen,
                            rejected=rejected, metadata=metadata)]
