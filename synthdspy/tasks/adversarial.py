"""Adversarial tasks: labelled, deliberately corrupted examples for testing and calibrating gates.

``adversarial_preference`` makes DPO pairs whose rejected answer is corrupted in a known way;
``adversarial_qa`` makes QA pairs of which a controlled share is corrupted, each labelled with the
diagnosis a hallucination judge should give (the peer tool's injection types and mapping).
Injection draws are reproducible: ``random.Random(f"{injection_seed}/{seed.id}/{rollout}")``.
"""

from __future__ import annotations

import random
from typing import Literal, get_args

import dspy
from pydantic import Field

from synthdspy.records import Record, Seed
from synthdspy.registry import Params, register_task
from synthdspy.signatures.adversarial import CORRUPTIONS, CorruptAnswer, WriteVagueQuestion
from synthdspy.signatures.grounded import AnswerFromMemory, AnswerFromSource, WriteQuestion
from synthdspy.signatures.preference import DEGRADATIONS, WriteWeakerAnswer
from synthdspy.signatures.qa import GenerateQAPairs
from synthdspy.tasks.base import Task, require
from synthdspy.tasks.common import call_config, seed_context, seed_instruction, unit_rng

PreferenceInjection = Literal["contradicts_source", "parametric_drift", "domain_mismatch", "instruction_quality"]
QAInjection = Literal[
    "contradicts_source", "parametric_drift", "high_temperature_drift", "domain_mismatch", "instruction_quality"
]
PREFERENCE_INJECTIONS: tuple[str, ...] = get_args(PreferenceInjection)
QA_INJECTIONS: tuple[str, ...] = get_args(QAInjection)

EXPECTED_DIAGNOSIS: dict[str, str] = {
    "contradicts_source": "GENERATOR_PARAMETRIC",
    "parametric_drift": "GENERATOR_PARAMETRIC",
    "high_temperature_drift": "GENERATOR_TEMPERATURE",
    "domain_mismatch": "DOMAIN_MISMATCH",
    "instruction_quality": "INSTRUCTION_QUALITY",
}
"""Injection type -> the hallucination gate's expected diagnosis (peer tool's adversarial_qa table)."""


def draw_injection(rng: random.Random, rate: float, types: list[str]) -> str | None:
    """One injection draw: a type from ``types`` with probability ``rate``, else None.

    Always consumes one ``rng.random()``, plus one ``rng.choice`` when injecting, so a sequence of
    draws from the same seeded ``rng`` is reproducible.
    """
    return rng.choice(types) if rng.random() < rate else None


class AdversarialPreferenceParams(Params):
    """Parameters of the ``adversarial_preference`` task."""

    injection_rate: float = Field(0.3, ge=0, le=1)
    injection_types: list[PreferenceInjection] = Field(default_factory=list, description="empty = all four")
    injection_seed: int = 42


@register_task("adversarial_preference", AdversarialPreferenceParams)
class AdversarialPreferenceTask(Task):
    """Preference pairs with a faithful ``chosen`` and, at ``injection_rate``, an adversarially
    corrupted ``rejected`` answer.

    Corruptions: contradicts_source (contradicts a stated fact), parametric_drift (answered from
    general knowledge without the source), domain_mismatch (another field's vocabulary and framing),
    instruction_quality (vague, hedging, never answers). A pair that is not injected gets an
    ordinary weaker rejected answer (a ``preference`` degradation pattern, in
    ``metadata.degradation``). ``metadata.injected_failure`` (bool) and ``metadata.injection_type``
    (None when not injected) label every record.

    Corpus-aware: needs a ``source`` (or ``input``) to corrupt against; the question is the seed's
    ``instruction``/``question`` or is written from the source.

    Raises:
        KeyError: the seed has no source.
    """

    name = "adversarial_preference"

    def __init__(self, injection_rate: float = 0.3, injection_types: list[str] | None = None,
                 injection_seed: int = 42) -> None:
        super().__init__()
        self.injection_rate = injection_rate
        self.injection_types = list(injection_types or PREFERENCE_INJECTIONS)
        self.injection_seed = injection_seed
        self.write_question = dspy.Predict(WriteQuestion)
        self.answer = dspy.Predict(AnswerFromSource)
        self.from_memory = dspy.Predict(AnswerFromMemory)
        self.corrupt = dspy.Predict(CorruptAnswer)
        self.weaken = dspy.Predict(WriteWeakerAnswer)

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:
        question, context = seed_instruction(seed), seed_context(seed)
        if not context:
            (context,) = require(seed, self.name, "source")
        config = call_config(rollout)
        rng = unit_rng(self.injection_seed, seed.id, rollout)
        injection = draw_injection(rng, self.injection_rate, self.injection_types)
        if not question:
            question = self.write_question(source=context, config=config).question
        chosen = self.answer(question=question, source=context, config=config).answer
        metadata: dict = {"injected_failure": injection is not None, "injection_type": injection}
        if injection == "parametric_drift":
            rejected = self.from_memory(question=question, config=config).answer
        elif injection is not None:
            rejected = self.corrupt(question=question, source=context, corruption=injection,
                                    corruption_guide=CORRUPTIONS[injection], config=config).answer
        else:
            pattern = rng.choice(list(DEGRADATIONS))
            metadata["degradation"] = pattern
            rejected = self.weaken(question=question, source=context, degradation=pattern,
                                   degradation_guide=DEGRADATIONS[pattern], config=config).answer
        return [self.record(seed, rollout, 0, instruction=question, input=context, chosen=chosen,
                            rejected=rejected, metadata=metadata)]


class AdversarialQAParams(Params):
    """Parameters of the ``adversarial_qa`` task."""

    num_questions: int = Field(3, ge=1, le=20)
    difficulty: Literal["easy", "medium", "hard"] = "medium"
    injection_rate: float = Field(0.4, ge=0, le=1)
    injection_types: list[QAInjection] = Field(default_factory=list, description="empty = all five")
    injection_seed: int = 42
    temperature: float = Field(0.7, ge=0, le=2, description="temperature of faithful calls")
    drift_temperature: float = Field(1.4, ge=0, le=2, description="temperature of high_temperature_drift")


@register_task("adversarial_qa", AdversarialQAParams)
class AdversarialQATask(Task):
    """QA pairs from a source passage, a controlled share of them corrupted, each labelled.

    Faithful pairs are written at ``temperature`` (0.7). Each pair is injected with probability
    ``injection_rate`` with one of: contradicts_source and domain_mismatch (the answer is rewritten
    with that flaw), parametric_drift (answered without the source), high_temperature_drift (the
    faithful answer prompt at ``drift_temperature``, 1.4), instruction_quality (a deliberately vague
    question, then an answer to it). Labels: ``metadata.injected_failure``,
    ``metadata.injection_type`` (None when clean) and ``metadata.expected_diagnosis``
    (:data:`EXPECTED_DIAGNOSIS`, ``"NONE"`` when clean), for scoring the ``hallucination`` gate.

    Raises:
        KeyError: the seed has no ``source``.
    """

    name = "adversarial_qa"

    def __init__(self, num_questions: int = 3, difficulty: str = "medium", injection_rate: float = 0.4,
                 injection_types: list[str] | None = None, injection_seed: int = 42, temperature: float = 0.7,
                 drift_temperature: float = 1.4) -> None:
        super().__init__()
        self.num_questions = num_questions
        self.difficulty = difficulty
        self.injection_rate = injection_rate
        self.injection_types = list(injection_types or QA_INJECTIONS)
        self.injection_seed = injection_seed
        self.temperature = temperature
        self.drift_temperature = drift_temperature
        self.generate = dspy.Predict(GenerateQAPairs)
        self.answer = dspy.Predict(AnswerFromSource)
        self.from_memory = dspy.Predict(AnswerFromMemory)
        self.corrupt = dspy.Predict(CorruptAnswer)
        self.vague_question = dspy.Predict(WriteVagueQuestion)

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:
        (source,) = require(seed, self.name, "source")
        rng = unit_rng(self.injection_seed, seed.id, rollout)
        pairs = self.generate(source=source, num_questions=self.num_questions, difficulty=self.difficulty,
                              config=call_config(rollout, temperature=self.temperature)).pairs[: self.num_questions]
        records = []
        for i, pair in enumerate(pairs):
            injection = draw_injection(rng, self.injection_rate, self.injection_types)
            question, answer, temperature = self._inject(injection, source, pair.question, pair.answer, rollout, i)
            metadata = {
                "difficulty": self.difficulty, "temperature": temperature,
                **({"note": f"drift temperature {self.drift_temperature:g} clipped to the provider's maximum "
                            f"{temperature:g}"} if temperature < self.drift_temperature
                   and injection == "high_temperature_drift" else {}),
                "injected_failure": injection is not None, "injection_type": injection,
                "expected_diagnosis": EXPECTED_DIAGNOSIS[injection] if injection else "NONE",
            }
            records.append(self.record(seed, rollout, i, instruction=question, input=source, output=answer,
                                       metadata=metadata))
        return records

    def _inject(self, injection: str | None, source: str, question: str, answer: str, rollout: int,
                index: int) -> tuple[str, str, float]:
        """(question, answer, temperature of the answer call) for one pair under ``injection``."""
        config = call_config(rollout, index, self.num_questions, temperature=self.temperature)
        if injection is None:
            return question, answer, self.temperature
        if injection == "parametric_drift":
            return question, self.from_memory(question=question, config=config).answer, self.temperature
        if injection == "high_temperature_drift":
            hot = call_config(rollout, index, self.num_questions, temperature=self.drift_temperature)
            used = hot.get("temperature", self.drift_temperature)
            return question, self.answer(question=question, source=source, config=hot).answer, used
        if injection == "instruction_quality":
            vague = self.vague_question(source=source, config=config).question
            return vague, self.answer(question=vague, source=source, config=config).answer, self.temperature
        corrupted = self.corrupt(question=question, source=source, corruption=injection,
                                 corruption_guide=CORRUPTIONS[injection], config=config).answer
        return question, corrupted, self.temperature
