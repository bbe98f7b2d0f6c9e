"""``pretraining``: texts controlled by orthogonal information dimensions (strategy seed, section B.1).

Each text is written against one value of every dimension in the catalog
(``synthdspy/data/dimensions.json``), a subject (a topic draw or an instruction) and a length cap
of ``0.65 x max_seq_len`` words, the cap the strategy seed's generation prompt sets so a text fits
a training sequence.
"""

from __future__ import annotations

import json
from typing import Any

import dspy
from pydantic import Field, model_validator

from synthdspy.records import Record, Seed, SeedFieldError, content_hash
from synthdspy.registry import Params, register_task
from synthdspy.seeds.catalog import DimensionSampler
from synthdspy.signatures.pretraining import WritePretrainingText
from synthdspy.tasks.base import Task, sampling_config

WORDS_PER_TOKEN = 0.65


def word_cap(max_seq_len: int) -> int:
    """The length cap in words for a training sequence of ``max_seq_len`` tokens:
    ``floor(0.65 x max_seq_len)`` (strategy seed, core generation prompt); 665 for 1024 tokens."""
    return int(WORDS_PER_TOKEN * max_seq_len)


class PretrainingParams(Params):
    """Parameters of the ``pretraining`` task.

    ``shares`` replaces the catalog's target mixture of some dimensions, e.g.
    ``shares = { Style = { Critical = 0.5, "Neutral/Objective" = 0.5 } }`` (weights are normalised;
    values left out get 0). It is a mixture ratio that tuning may change.
    """

    max_seq_len: int = Field(1024, ge=16, description="training sequence length in tokens; cap = 0.65 x this, in words")
    shares: dict[str, dict[str, float]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_shares(self) -> PretrainingParams:
        DimensionSampler(shares=self.shares or None)  # raises ValueError naming the bad dimension or value
        return self


def render_targets(details: list[dict[str, str]]) -> str:
    """The prompt block for a draw's ``details`` (rows of :meth:`DimensionSampler.details`): one
    Markdown section per dimension with its description, value, meaning, instructions and goal."""
    return "\n\n".join(
        f"# {d['dimension']}\nDimension: {d['description']}\nTarget value: {d['value']}\n"
        f"Meaning: {d['meaning']}\nHow to write it: {d['instructions']}\nTraining goal: {d['training_goal']}"
        for d in details
    )


def seed_dimensions(seed: Seed, task: str) -> dict[str, str]:
    """The seed's ``dimensions`` field as {dimension: value} ({} when absent); a JSON string (as in a
    Parquet export) is decoded.

    Raises:
        ValueError: the field is neither a mapping of strings nor JSON for one.
    """
    given: Any = seed.data.get("dimensions") or {}
    if isinstance(given, str):
        try:
            given = json.loads(given)
        except json.JSONDecodeError:
            given = None
    if not isinstance(given, dict) or not all(isinstance(v, str) for v in given.values()):
        raise ValueError(f"seed {seed.id}: task {task!r}: field 'dimensions' must map dimension names to value names")
    return dict(given)


def subject_of(seed: Seed, task: str) -> str:
    """What to write about: the seed's ``instruction``, else its ``topic`` with subtopics and keywords.

    Raises:
        SeedFieldError: the seed has neither, naming the fields it has.
    """
    if seed.data.get("instruction"):
        return str(seed.data["instruction"])
    if not seed.data.get("topic"):
        raise SeedFieldError(
            f"seed {seed.id}: task {task!r} needs 'topic' or 'instruction'; the seed has {sorted(seed.data)}"
        )
    parts = [str(seed.data["topic"])]
    for name in ("subtopics", "keywords"):
        if seed.data.get(name):
            parts.append(f"{name}: {', '.join(map(str, seed.data[name]))}")
    return "; ".join(parts)


@register_task("pretraining", PretrainingParams)
class PretrainingTask(Task):
    """A pre-training text written against one value of every information dimension, plus a subject.

    One record per seed.

    Dimensions come from the seed's ``dimensions`` (``builtin:dimensions`` seeds, or a file column);
    dimensions the seed lacks, and every dimension named in ``shares``, are drawn from the catalog
    mixture (with the ``shares`` overrides) by a hash of the seed id, so a re-run draws the same.
    ``record.instruction`` is the subject, ``record.output`` the text (the training data),
    ``record.dimensions`` the targets; metadata has ``max_words``, ``word_count`` and ``within_length``.
    """

    name = "pretraining"

    def __init__(self, max_seq_len: int = 1024, shares: dict[str, dict[str, float]] | None = None) -> None:
        super().__init__()
        self.max_words = word_cap(max_seq_len)
        self.sampler = DimensionSampler(shares=shares or None)
        self.overridden = sorted(shares or {})
        self.write = dspy.Predict(WritePretrainingText)

    def dimensions_for(self, seed: Seed) -> dict[str, str]:
        """The target value of every catalog dimension for ``seed``, in catalog order.

        Raises:
            ValueError: the seed names a dimension the catalog does not have.
        """
        given = seed_dimensions(seed, self.name)
        unknown = set(given) - set(self.sampler.shares)
        if unknown:
            raise ValueError(
                f"seed {seed.id}: unknown dimension(s) {sorted(unknown)}; known: {list(self.sampler.shares)}"
            )
        drawn = self.sampler.draw(int(content_hash("pretraining-dimensions", seed.id), 16))
        chosen = {**drawn, **given, **{d: drawn[d] for d in self.overridden}}
        return {d: chosen[d] for d in self.sampler.shares}

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:
        subject = subject_of(seed, self.name)
        dims = self.dimensions_for(seed)
        try:
            targets = render_targets(self.sampler.details(dims))
        except KeyError as exc:
            raise SeedFieldError(f"seed {seed.id}: {exc.args[0]}") from None
        text = self.write(
            dimension_targets=targets, subject=subject, max_words=self.max_words, config=sampling_config(rollout)
        ).text.strip()
        words = len(text.split())
        return [
            self.record(
                seed, rollout, 0, instruction=subject, output=text, dimensions=dims,
                metadata={"max_words": self.max_words, "word_count": words, "within_length": words <= self.max_words,
                          "shares_overridden": self.overridden},
            )
        ]
