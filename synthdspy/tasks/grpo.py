"""``grpo``: a group of sampled responses to one prompt, optionally judge-scored, for GRPO training."""

from __future__ import annotations

from typing import Annotated

import dspy
from pydantic import Field

from synthdspy.gates.judged import DEFAULT_RUBRIC, RewardGate
from synthdspy.records import Record, Seed
from synthdspy.registry import Params, register_task
from synthdspy.signatures.grounded import AnswerFromSource, WriteQuestion
from synthdspy.tasks.base import Task, require
from synthdspy.tasks.common import base_temperature, call_config, seed_context, seed_instruction


class GRPOParams(Params):
    """Parameters of the ``grpo`` task."""

    num_responses: int = Field(4, ge=2, le=64)
    temperatures: list[Annotated[float, Field(ge=0, le=2)]] = Field(
        default_factory=list, description="one temperature per rollout, cycled; empty = use the spread"
    )
    temperature_spread: float = Field(0.0, ge=0, le=2, description="width of the even spread around the base")
    score_responses: bool = Field(False, description="judge each response into reward_scores (judge LM)")
    rubric: str = DEFAULT_RUBRIC


def rollout_temperatures(n: int, base: float, explicit: list[float], spread: float) -> list[float]:
    """The sampling temperature of each of ``n`` rollouts.

    ``explicit`` non-empty: its values in order, cycled when shorter than ``n``. Otherwise an even
    spread of width ``spread`` centred on ``base``: ``t_i = base + spread * (i / (n - 1) - 1/2)``
    for i = 0..n-1 (so ``t_0 = base - spread/2`` and ``t_{n-1} = base + spread/2``; all equal to
    ``base`` when ``spread`` is 0). Values are clipped to [0, 2], rounded to 4 decimals. The
    priority order (explicit list, then spread around the base) follows the peer tool's GRPO task.
    """
    if explicit:
        values = [explicit[i % len(explicit)] for i in range(n)]
    elif n == 1:
        values = [base]
    else:
        values = [base + spread * (i / (n - 1) - 0.5) for i in range(n)]
    return [round(min(2.0, max(0.0, t)), 4) for t in values]


@register_task("grpo", GRPOParams)
class GRPOTask(Task):
    """``num_responses`` sampled responses to one prompt, one record with ``responses`` (and
    ``reward_scores`` when ``score_responses``).

    Temperatures come from :func:`rollout_temperatures` around the generator's temperature and are
    kept in ``metadata.temperatures``. With one temperature for every rollout and a provider that
    takes ``n`` (OpenAI, vLLM, the simulator; not Anthropic or Ollama: ``supports_n`` set by
    :func:`synthdspy.lm.build_role` from LiteLLM's parameter table), the rollouts are the ``n``
    choices of one request (``metadata.sampling = "n"``); otherwise each is a separate call with its
    own ``rollout_id`` so equal temperatures still sample afresh. Scores are the judge's 1-10 rubric scores
    (:meth:`RewardGate.score`, under the judge LM role); the scorer is frozen (never tuned by
    compile, like the gates).

    Corpus-aware: a seed with an ``instruction``/``question`` is the prompt (its ``source`` or
    ``input`` is the context); a seed with only a ``source`` first gets one question written from it.

    Raises:
        KeyError: the seed has neither an instruction nor a source.
    """

    name = "grpo"

    def __init__(self, num_responses: int = 4, temperatures: list[float] | None = None,
                 temperature_spread: float = 0.0, score_responses: bool = False,
                 rubric: str = DEFAULT_RUBRIC) -> None:
        super().__init__()
        self.num_responses = num_responses
        self.temperatures = list(temperatures or [])
        self.temperature_spread = temperature_spread
        self.score_responses = score_responses
        self.write_question = dspy.Predict(WriteQuestion)
        self.respond = dspy.Predict(AnswerFromSource)
        self.scorer = RewardGate(rubric=rubric)
        self.scorer._compiled = True  # DSPy's marker for a frozen sub-module: optimizers skip it

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:
        prompt, context = seed_instruction(seed), seed_context(seed)
        if not prompt:
            (context,) = require(seed, self.name, "source")
            prompt = self.write_question(source=context, config=call_config(rollout)).question
        temps = rollout_temperatures(self.num_responses, base_temperature(), self.temperatures,
                                     self.temperature_spread)
        responses: list[str] = []
        batched = len(temps) > 1 and len(set(temps)) == 1 and getattr(dspy.settings.lm, "supports_n", False)
        if batched:  # one request for every rollout: the prompt is sent and billed once
            config = {**call_config(rollout, 0, self.num_responses, temperature=temps[0]), "n": len(temps)}
            pred = self.respond(question=prompt, source=context, config=config)
            responses = [c.answer for c in pred.completions][: len(temps)]
        responses += [  # separate calls: distinct temperatures, a provider without n, or choices short of n
            self.respond(question=prompt, source=context,
                         config=call_config(rollout, i, self.num_responses, temperature=t)).answer
            for i, t in enumerate(temps) if i >= len(responses)
        ]
        scores = [self.scorer.score(prompt, context, r)[0] for r in responses] if self.score_responses else None
        metadata: dict = {"temperatures": temps, "sampling": "n" if batched else "separate"}
        if seed.data.get("answer"):
            metadata["gold_answer"] = seed.data["answer"]
        return [self.record(seed, rollout, 0, instruction=prompt, input=context, responses=responses,
                            reward_scores=scores, metadata=metadata)]
