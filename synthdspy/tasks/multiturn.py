"""``multiturn``: user/assistant conversations grounded in a source, turn by turn or in one call."""

from __future__ import annotations

from typing import Literal

import dspy
from pydantic import Field

from synthdspy.records import Record, Seed
from synthdspy.registry import Params, register_task
from synthdspy.signatures.conversation import (
    FollowUpQuestion,
    OpenConversation,
    ReplyInConversation,
    Turn,
    WriteConversation,
)
from synthdspy.tasks.base import Task, require
from synthdspy.tasks.common import call_config, seed_context, seed_instruction


class MultiTurnParams(Params):
    """Parameters of the ``multiturn`` task."""

    mode: Literal["turn_by_turn", "single_call"] = "turn_by_turn"
    num_turns: int = Field(3, ge=1, le=20, description="user/assistant exchanges per conversation")


@register_task("multiturn", MultiTurnParams)
class MultiTurnTask(Task):
    """One conversation of ``num_turns`` user/assistant exchanges per seed, in ``record.turns``.

    ``turn_by_turn`` makes two calls per exchange, the user message then the assistant reply, each
    conditioned on every real message before it (2 x ``num_turns`` calls, sequential within a
    conversation; the generate loop runs conversations concurrently). ``single_call`` writes the
    whole conversation in one call as a typed list of exchanges (cheaper; weaker on long ones).

    ``record.turns`` is ``[{"role": "user"|"assistant", "content": ...}, ...]``; ``instruction``
    and ``output`` hold the first user message and the first reply, ``input`` the source.
    Corpus-aware: a seed's ``instruction``/``question`` is the first user message; otherwise the
    first question is written from ``source``.

    Raises:
        KeyError: the seed has neither a source nor an instruction.
        ValueError: ``single_call`` returned fewer exchanges than ``num_turns``.
    """

    name = "multiturn"

    def __init__(self, mode: str = "turn_by_turn", num_turns: int = 3) -> None:
        super().__init__()
        self.mode = mode
        self.num_turns = num_turns
        self.open = dspy.Predict(OpenConversation)
        self.follow_up = dspy.Predict(FollowUpQuestion)
        self.reply = dspy.Predict(ReplyInConversation)
        self.write_all = dspy.Predict(WriteConversation)

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:
        opening, context = seed_instruction(seed), seed_context(seed)
        if not opening:
            (context,) = require(seed, self.name, "source")
        turns = (self._single_call(seed, opening, context, rollout) if self.mode == "single_call"
                 else self._turn_by_turn(opening, context, rollout))
        rows = [t.model_dump() for t in turns]
        return [self.record(seed, rollout, 0, instruction=rows[0]["content"], input=context,
                            output=rows[1]["content"], turns=rows,
                            metadata={"mode": self.mode, "num_turns": self.num_turns})]

    def _turn_by_turn(self, opening: str, context: str, rollout: int) -> list[Turn]:
        config = call_config(rollout)
        turns: list[Turn] = []
        for i in range(self.num_turns):
            if i == 0:
                user = opening or self.open(source=context, config=config).question
            else:
                user = self.follow_up(source=context, conversation=turns, config=config).question
            turns.append(Turn(role="user", content=user))
            turns.append(Turn(role="assistant", content=self.reply(source=context, conversation=turns,
                                                                   config=config).reply))
        return turns

    def _single_call(self, seed: Seed, opening: str, context: str, rollout: int) -> list[Turn]:
        pred = self.write_all(source=context, opening=opening, num_exchanges=self.num_turns,
                              config=call_config(rollout))
        exchanges = pred.exchanges[: self.num_turns]
        if len(exchanges) < self.num_turns:
            raise ValueError(
                f"seed {seed.id}: multiturn single_call asked for {self.num_turns} exchanges, "
                f"the LM wrote {len(exchanges)}"
            )
        if opening:
            exchanges[0] = exchanges[0].model_copy(update={"user": opening})
        turns: list[Turn] = []
        for ex in exchanges:
            turns += [Turn(role="user", content=ex.user), Turn(role="assistant", content=ex.assistant)]
        return turns
