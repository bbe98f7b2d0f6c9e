"""``skill_mix``: an instruction and answer that must exercise k sampled skills (Yu et al. 2023,
"Skill-Mix"; its instruction-tuning form: Kaur et al. 2024, "Instruct-SkillMix").

Diversity comes from the prompt: each unit draws k skills from an editable list (the shipped
``synthdspy/data/skills.json``, 36 skills of language, reasoning and rhetoric, or the user's own
``skills_file``), so a list of n skills gives C(n, k) distinct combinations, most of which no
single training text shows together.
"""

from __future__ import annotations

import json
from pathlib import Path

import dspy
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from synthdspy.records import Record, Seed
from synthdspy.registry import Params, register_task
from synthdspy.signatures.catalog_knowledge import WriteSkillMixExample
from synthdspy.tasks.base import Task, sampling_config
from synthdspy.tasks.common import seed_instruction, unit_rng

DEFAULT_SKILLS = Path(__file__).resolve().parent.parent / "data" / "skills.json"


class Skill(BaseModel):
    """One skill: a ``name``, a one-line ``definition`` and an optional ``category``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1)
    definition: str = Field(min_length=1)
    category: str = ""


def load_skills(path: str | Path | None = None) -> list[Skill]:
    """The skills of ``path`` (default: the shipped ``skills.json``): a JSON list of
    ``{"name", "definition", "category"?}`` objects with distinct names.

    Raises:
        ValueError: one line naming the file and what is wrong (missing, not JSON, not a
            non-empty list, an invalid entry by index and name, a repeated name).
    """
    file = Path(path) if path is not None else DEFAULT_SKILLS
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{file}: cannot read the skills file ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{file}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{file}: expected a non-empty JSON list of {{name, definition}} skills")
    skills = []
    for i, item in enumerate(raw):
        try:
            skills.append(Skill.model_validate(item))
        except ValidationError as exc:
            label = f" ({item['name']!r})" if isinstance(item, dict) and item.get("name") else ""
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"{file}: skill {i}{label}: {problems}") from None
    names = [s.name.lower() for s in skills]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{file}: skill names repeat: {repeated}")
    return skills


class SkillMixParams(Params):
    """Parameters of the ``skill_mix`` task; the skills file is read and checked when validated."""

    k: int = Field(2, ge=1, le=8, description="skills combined per example")
    skills_file: str | None = Field(None, description="JSON list of {name, definition}; default: the shipped list")
    use_topic: bool = Field(True, description="ask for the seed's topic (or instruction) as the subject")
    sampling_seed: int = Field(0, description="seeds the choice of skills")

    @model_validator(mode="after")
    def _check_skills(self) -> SkillMixParams:
        count = len(load_skills(self.skills_file))
        if self.k > count:
            raise ValueError(f"k={self.k} but {self.skills_file or DEFAULT_SKILLS} has only {count} skills")
        return self


def seed_topic(seed: Seed) -> str:
    """The subject a seed suggests: its ``topic`` (``builtin:topics``), else its instruction
    (``instruction``/``question``, e.g. a self-instruct seed task), else ``""``."""
    return str(seed.data.get("topic") or "").strip() or seed_instruction(seed)


@register_task("skill_mix", SkillMixParams)
class SkillMixTask(Task):
    """An instruction and its answer that must use k randomly sampled skills (Skill-Mix).

    Per seed and rollout: k distinct skills drawn by ``unit_rng("skill_mix", sampling_seed, seed
    id, rollout)`` (so the draw depends on nothing else, and a resumed run re-draws it), and, with
    ``use_topic``, the seed's topic as the subject (:func:`seed_topic`; a seed with neither topic
    nor instruction leaves the subject open). One LM call writes the instruction and an answer
    showing every skill. One record: ``instruction``, ``output`` = the answer; metadata ``skills``
    (names, in draw order), ``skill_categories`` and ``topic``.

    Raises:
        ValueError: at construction, a malformed skills file or k above its number of skills.
    """

    name = "skill_mix"

    def __init__(self, k: int = 2, skills_file: str | None = None, use_topic: bool = True,
                 sampling_seed: int = 0) -> None:
        super().__init__()
        self.skills = load_skills(skills_file)
        if not 1 <= k <= len(self.skills):
            raise ValueError(f"k={k}: expected 1..{len(self.skills)} (the skills in {skills_file or DEFAULT_SKILLS})")
        self.k = k
        self.use_topic = use_topic
        self.sampling_seed = sampling_seed
        self.write = dspy.Predict(WriteSkillMixExample)

    def draw(self, seed: Seed, rollout: int) -> list[Skill]:
        """The k skills of unit (``seed``, ``rollout``), in draw order."""
        return unit_rng(self.name, self.sampling_seed, seed.id, rollout).sample(self.skills, self.k)

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:
        skills = self.draw(seed, rollout)
        topic = seed_topic(seed) if self.use_topic else ""
        pred = self.write(skills=[f"{s.name}: {s.definition}" for s in skills], topic=topic,
                          config=sampling_config(rollout))
        return [
            self.record(
                seed, rollout, 0, instruction=pred.instruction.strip(), output=pred.answer.strip(),
                metadata={"skills": [s.name for s in skills], "skill_categories": [s.category for s in skills],
                          "topic": topic},
            )
        ]
