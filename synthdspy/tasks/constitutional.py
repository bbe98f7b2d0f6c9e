"""``constitutional``: critique-and-revise (Bai et al. 2022, "Constitutional AI", section 3.1).

A response to an instruction is critiqued against one principle drawn from an editable list
(``synthdspy/data/principles.json``, or the user's ``principles_file``) and then revised. The
revision is the training target: an SFT record, or the chosen side of a preference pair whose
rejected side is the original response (the paper's SL-CAI data and, as a pair, the input of its
preference stage).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import dspy
from pydantic import BaseModel, ConfigDict, Field, model_validator

from synthdspy.records import Record, Seed
from synthdspy.registry import Params, register_task
from synthdspy.seeds.catalog import CatalogError, _load_list
from synthdspy.signatures.constitutional import CritiqueResponse, DraftResponse, ReviseResponse, WriteUserRequest
from synthdspy.tasks.base import Task, require
from synthdspy.tasks.common import call_config, seed_context, seed_instruction, unit_rng


class Principle(BaseModel):
    """One principle: its ``name``, what a ``critique`` looks for and how a ``revision`` fixes it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1)
    critique: str = Field(min_length=1)
    revision: str = Field(min_length=1)


def load_principles(path: str | Path | None = None) -> list[Principle]:
    """The principles in ``path`` (default: the shipped ``principles.json``), a non-empty JSON list of
    ``{"name", "critique", "revision"}`` objects with distinct names.

    Raises:
        CatalogError: one line naming the file (and the entry) when it is missing, not JSON, not a
            non-empty list, has an invalid entry or repeats a name.
    """
    principles = _load_list(path, "principles.json", Principle, "principle")
    names = [p.name for p in principles]
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise CatalogError(f"{path or 'principles.json'}: principle names repeat: {repeated}")
    return principles


class ConstitutionalParams(Params):
    """Parameters of the ``constitutional`` task."""

    emit: Literal["sft", "preference"] = Field(
        "sft", description="sft: output = revision; preference: chosen = revision, rejected = original response")
    principles_file: str | None = Field(None, description="JSON list of principles; default the shipped list")
    principles: list[str] = Field(default_factory=list, description="names to draw from; empty = all in the file")
    principle_seed: int = Field(0, description="sampling seed of the principle drawn per (seed, rollout)")

    @model_validator(mode="after")
    def _check_principles(self) -> ConstitutionalParams:
        known = [p.name for p in load_principles(self.principles_file)]
        unknown = [n for n in self.principles if n not in known]
        if unknown:
            raise ValueError(f"principles {unknown} are not in {self.principles_file or 'principles.json'} "
                             f"(it has {known})")
        return self


@register_task("constitutional", ConstitutionalParams)
class ConstitutionalTask(Task):
    """A response, its critique against a sampled principle, and a revision (Bai et al. 2022, sec. 3.1).

    Per (seed, rollout) one principle is drawn from ``principles`` (all in the file when empty) with a
    generator seeded by ``principle_seed``, the seed id and the rollout, so a re-run draws the same.
    Calls: draft a response, critique it against the principle's critique request, revise it with
    the principle's revision request (a seed with only a ``source`` first gets a user request written
    from the passage, stored in ``record.instruction``; the passage goes to ``record.input``).
    ``emit = "sft"``: ``output`` is the revision and ``metadata.initial_response`` the draft;
    ``"preference"``: ``chosen`` is the revision and ``rejected`` the draft, the fields the ``reward``
    gate and the exports read. ``metadata``: ``principle`` (its name), ``critique``, ``emit``.

    Raises:
        SeedFieldError: the seed has neither an instruction/question nor a source.
        CatalogError: at construction, the principles file is malformed.
    """

    name = "constitutional"

    def __init__(self, emit: str = "sft", principles_file: str | None = None, principles: list[str] | None = None,
                 principle_seed: int = 0) -> None:
        super().__init__()
        catalog = load_principles(principles_file)
        self.principles = [p for p in catalog if not principles or p.name in principles]
        self.emit, self.principle_seed = emit, principle_seed
        self.write_request = dspy.Predict(WriteUserRequest)
        self.draft = dspy.Predict(DraftResponse)
        self.critique = dspy.Predict(CritiqueResponse)
        self.revise = dspy.Predict(ReviseResponse)

    def draw_principle(self, seed: Seed, rollout: int) -> Principle:
        """The principle of unit (``seed``, ``rollout``): the same on every run with the same ``principle_seed``."""
        return unit_rng(self.principle_seed, seed.id, rollout).choice(self.principles)

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:
        instruction, context = seed_instruction(seed), seed_context(seed)
        config = call_config(rollout)
        if not instruction:
            (context,) = require(seed, self.name, "source")
            instruction = self.write_request(source=context, config=config).instruction.strip()
        principle = self.draw_principle(seed, rollout)
        response = self.draft(instruction=instruction, context=context, config=config).response.strip()
        critique = self.critique(instruction=instruction, context=context, response=response,
                                 principle=principle.critique, config=config).critique.strip()
        revision = self.revise(instruction=instruction, context=context, response=response, critique=critique,
                               guidance=principle.revision, config=config).revision.strip()
        metadata = {"principle": principle.name, "critique": critique, "emit": self.emit}
        if self.emit == "preference":
            return [self.record(seed, rollout, 0, instruction=instruction, input=context, chosen=revision,
                                rejected=response, metadata=metadata)]
        metadata["initial_response"] = response
        return [self.record(seed, rollout, 0, instruction=instruction, input=context, output=revision,
                            metadata=metadata)]
