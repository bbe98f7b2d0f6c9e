"""``cot``: chain-of-thought solutions, generated (reasoning then answer) or wrapped around a known answer."""

from __future__ import annotations

from typing import Literal

import dspy

from synthdspy.records import Record, Seed
from synthdspy.registry import Params, register_task
from synthdspy.signatures.cot import ExplainKnownAnswer, SolveWithReasoning
from synthdspy.tasks.base import Task, require, sampling_config


class CoTParams(Params):
    """Parameters of the ``cot`` task."""

    mode: Literal["generate", "wrap"] = "generate"


def gold_final_answer(solution: str) -> str:
    """The final answer of a GSM8K-style solution: the text after the last ``#### `` (or the whole text)."""
    return solution.rsplit("####", 1)[-1].strip()


@register_task("cot", CoTParams)
class CoTTask(Task):
    """Step-by-step solutions to questions.

    ``generate``: the LM reasons, then answers. ``wrap``: the LM is given the gold answer and writes
    reasoning that leads to it. The record's ``output`` is ``reasoning`` followed by ``#### answer``;
    a gold solution in the seed (``answer``) is kept in ``metadata.gold_answer`` for the
    ``math_answer`` gate.
    """

    name = "cot"

    def __init__(self, mode: str = "generate") -> None:
        super().__init__()
        self.mode = mode
        self.solve = dspy.Predict(SolveWithReasoning)
        self.explain = dspy.Predict(ExplainKnownAnswer)

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:
        config = sampling_config(rollout)
        (question,) = require(seed, self.name, "question")
        gold = seed.data.get("answer")
        if self.mode == "wrap":
            (gold,) = require(seed, self.name, "answer")
            answer = gold_final_answer(gold)
            reasoning = self.explain(question=question, answer=answer, config=config).reasoning
        else:
            pred = self.solve(question=question, config=config)
            reasoning, answer = pred.reasoning, pred.answer
        metadata = {"mode": self.mode}
        if gold:
            metadata["gold_answer"] = gold
        output = f"{reasoning.strip()}\n#### {str(answer).strip()}"
        return [self.record(seed, rollout, 0, instruction=question, output=output, metadata=metadata)]
