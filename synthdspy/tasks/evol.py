"""``evol``: Evol-Instruct rewrites of instructions into harder variants, optionally answered."""

from __future__ import annotations

import dspy
from pydantic import Field

from synthdspy.records import Record, Seed
from synthdspy.registry import Params, register_task
from synthdspy.signatures.evol import STRATEGIES, EvolveInstruction, Strategy
from synthdspy.signatures.grounded import AnswerFromSource, WriteQuestion
from synthdspy.tasks.base import Task, require
from synthdspy.tasks.common import call_config, seed_context, seed_instruction


class EvolParams(Params):
    """Parameters of the ``evol`` task."""

    num_evolutions: int = Field(2, ge=1, le=20, description="evolved variants per seed (one record each)")
    depth: int = Field(1, ge=1, le=5, description="successive evolution steps per variant")
    strategies: list[Strategy] = Field(default_factory=list, description="strategies to cycle; empty = all five")
    answer: bool = Field(True, description="answer each evolved instruction in a second call")


@register_task("evol", EvolParams)
class EvolTask(Task):
    """Evolve a seed instruction into ``num_evolutions`` harder variants (Xu et al. 2023, "WizardLM:
    Empowering Large Language Models to Follow Complex Instructions", sec. 3.1).

    Strategies (add_constraints, deepen, concretize, increase_reasoning, broaden) are cycled over
    all evolution steps of a seed: step k (k = variant * depth + j) uses ``strategies[k % len]``.
    A variant is ``depth`` successive evolutions of the seed instruction, each applied to the
    previous result (the paper's iterative evolving); ``metadata.strategies`` lists them in order
    and ``metadata.original`` keeps the seed instruction. With ``answer``, a second call answers
    the final instruction into ``output`` (else ``output`` is ``""``).

    Corpus-aware: the seed's ``source``/``input`` is the context the instruction refers to; a seed
    with only a ``source`` first gets a question written from it, which is then evolved.

    Raises:
        KeyError: the seed has neither an instruction nor a source.
    """

    name = "evol"

    def __init__(self, num_evolutions: int = 2, depth: int = 1, strategies: list[str] | None = None,
                 answer: bool = True) -> None:
        super().__init__()
        self.num_evolutions = num_evolutions
        self.depth = depth
        self.strategies = list(strategies or STRATEGIES)
        self.answer = answer
        self.write_question = dspy.Predict(WriteQuestion)
        self.evolve = dspy.Predict(EvolveInstruction)
        self.respond = dspy.Predict(AnswerFromSource)

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:
        original, context = seed_instruction(seed), seed_context(seed)
        if not original:
            (context,) = require(seed, self.name, "source")
            original = self.write_question(source=context, config=call_config(rollout)).question
        records = []
        for variant in range(self.num_evolutions):
            # a distinct rollout id per variant: a strategy repeated by the cycle still samples afresh
            config = call_config(rollout, variant, self.num_evolutions)
            instruction, applied = original, []
            for step in range(self.depth):
                strategy = self.strategies[(variant * self.depth + step) % len(self.strategies)]
                instruction = self.evolve(instruction=instruction, context=context, strategy=strategy,
                                          strategy_guide=STRATEGIES[strategy], config=config).evolved_instruction
                applied.append(strategy)
            output = self.respond(question=instruction, source=context, config=config).answer if self.answer else ""
            records.append(self.record(seed, rollout, variant, instruction=instruction, input=context, output=output,
                                       metadata={"strategies": applied, "original": original}))
        return records
