"""The one data model passed between stages: :class:`Record`, :class:`Verdict`, :class:`Provenance`."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def content_hash(*parts: Any, length: int = 16) -> str:
    """Stable hex digest (``length`` chars) of JSON-serialised ``parts`` (keys sorted)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


class Provenance(BaseModel):
    """Where a record came from. ``lm`` starts with ``sim/`` when the offline simulator wrote it."""

    model_config = ConfigDict(extra="allow")

    program_hash: str = ""
    lm: str = ""
    temperature: float | None = None
    rollout_id: int | None = None
    seed_id: str = ""


class Verdict(BaseModel):
    """A gate's decision on one record.

    ``score`` is the gate's own scale (a judge's 1-10, a similarity in [0, 1] ...) or None;
    ``diagnosis`` names a failure class where the gate has one (for example GENERATOR_PARAMETRIC);
    ``details`` holds a gate's structured findings (the ``dimension`` gate's predicted and target
    labels per dimension), empty for gates that have none.
    """

    gate: str
    passed: bool
    score: float | None = None
    reason: str = ""
    diagnosis: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Record(BaseModel):
    """One generated training example, with the verdicts of every gate it went through.

    The ``id`` is a content hash of (seed id and rollout, task, item index, program hash): the key
    for resume and dedup, identical when the same program re-generates the same unit.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    task: str
    instruction: str = ""
    input: str = ""
    output: str = ""
    chosen: str | None = None
    rejected: str | None = None
    responses: list[str] | None = None
    reward_scores: list[float] | None = None
    turns: list[dict[str, str]] | None = None
    dimensions: dict[str, str] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    provenance: Provenance = Field(default_factory=Provenance)
    verdicts: list[Verdict] = Field(default_factory=list)

    @staticmethod
    def make_id(seed_key: str, task: str, index: int, program_hash: str) -> str:
        """The stable record id for item ``index`` of ``task`` on ``seed_key`` (a seed id, or
        ``"<seed id>#<rollout>"`` as tasks write it) under a program."""
        return content_hash(seed_key, task, index, program_hash)

    @property
    def passed(self) -> bool:
        """True when every verdict passed (a record with no verdicts passes)."""
        return all(v.passed for v in self.verdicts)

    @property
    def response(self) -> str:
        """The generated answer a judge scores: ``chosen``, else the first of ``responses``, else the
        conversation's turns, else ``output``."""
        if self.chosen is not None:
            return self.chosen
        if self.responses:
            return self.responses[0]
        if self.turns:
            return "\n".join(f"{t.get('role', '')}: {t.get('content', '')}" for t in self.turns)
        return self.output

    @property
    def text(self) -> str:
        """The record's generated text as one string (what diversity metrics and judges read)."""
        if self.turns:
            return "\n".join(f"{t.get('role', '')}: {t.get('content', '')}" for t in self.turns)
        if self.chosen is not None:
            return f"{self.instruction}\n{self.chosen}".strip()
        if self.responses:
            return f"{self.instruction}\n{self.responses[0]}".strip()
        return f"{self.instruction}\n{self.output}".strip()


class SeedFieldError(KeyError):
    """A seed lacks a field its task needs; the message names the seed, the task, the missing
    field(s) and the fields the seed has. Deterministic: retrying the unit cannot help."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Seed(BaseModel):
    """One unit of input to a generation task: a source chunk, an instruction row or a topic draw.

    ``data`` holds the task's inputs under canonical names (``source``, ``instruction``,
    ``question``, ``answer``, ``topic``, ``subtopics``, ``keywords``, ``style``, ``personas`` ...);
    ``id`` is a content hash of ``data`` unless the seed file provides one. ``metadata`` says where
    the seed came from (a document chunk's file, pages, heading, offsets); tasks copy it into every
    record's ``metadata``.
    """

    id: str
    data: dict[str, Any]
    metadata: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_data(cls, data: dict[str, Any], id: str | None = None) -> Seed:
        """Build a seed, deriving ``id`` from the content when none is given."""
        return cls(id=id or content_hash(data), data=data)
