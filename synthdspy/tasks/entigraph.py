"""``entigraph``: analyses of relations among sampled entities of a passage (Yang et al. 2024,
"Synthetic continued pretraining", section 2.2).

EntiGraph turns a small corpus into a larger, more varied one: the LM lists a passage's salient
entities (step 1), then writes, for sampled pairs and triples of them, an analysis of how they
relate in the passage (step 2). The passage holds the facts; the analyses present them in the many
arrangements a single text cannot.
"""

from __future__ import annotations

import itertools
from typing import Literal

import dspy
from pydantic import Field

from synthdspy.records import Record, Seed
from synthdspy.registry import Params, register_task
from synthdspy.signatures.catalog_knowledge import ExtractEntities, RelateEntities
from synthdspy.tasks.base import Task, require, sampling_config
from synthdspy.tasks.common import unit_rng

Relation = Literal["pair", "triple"]


class EntiGraphParams(Params):
    """Parameters of the ``entigraph`` task."""

    max_entities: int = Field(12, ge=2, le=40, description="entities kept per passage (the first the LM lists)")
    num_pairs: int = Field(3, ge=0, le=50, description="entity pairs analysed per passage and rollout")
    num_triples: int = Field(1, ge=0, le=50, description="entity triples analysed per passage and rollout")
    sampling_seed: int = Field(0, description="seeds the choice of pairs and triples")


def clean_entities(names: list[str], limit: int) -> list[str]:
    """The first ``limit`` distinct entity names of ``names``: stripped, empty ones dropped,
    duplicates (case-insensitive) kept at their first position."""
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        text = " ".join(str(name).split())
        if text and text.lower() not in seen:
            seen.add(text.lower())
            out.append(text)
    return out[:limit]


def sample_groups(entities: list[str], size: int, count: int, rng_key: tuple[object, ...],
                  rollout: int) -> list[tuple[str, ...]]:
    """``count`` groups of ``size`` entities for rollout ``rollout`` (fewer when there are fewer groups).

    All ``size``-combinations of ``entities`` are shuffled once by ``unit_rng(*rng_key)`` (keyed by
    sampling seed and seed id, not by rollout); rollout ``r`` takes positions ``r*count`` ..
    ``r*count + count - 1`` of that order, wrapping around. So the draw depends only on (sampling
    seed, seed id, rollout, entity list), rollouts of a passage cover new groups until every group
    was used, and no group repeats inside one rollout.
    """
    groups = list(itertools.combinations(entities, size))
    if not groups or count <= 0:
        return []
    unit_rng(*rng_key).shuffle(groups)
    start = rollout * count
    return [groups[(start + i) % len(groups)] for i in range(min(count, len(groups)))]


@register_task("entigraph", EntiGraphParams)
class EntiGraphTask(Task):
    """Analyses of how sampled pairs and triples of a passage's entities relate (EntiGraph).

    Per seed (``source`` passage) and rollout: one call lists the salient entities (kept to
    ``max_entities``), then one call per sampled group writes its analysis: ``num_pairs`` pairs and
    ``num_triples`` triples, chosen by :func:`sample_groups`. The extraction call is the same for
    every rollout of a passage (one entity list per document, as in Yang et al.), so rollouts
    differ in the groups they analyse. One record per group: ``input`` is the passage (for the
    ``grounding`` gate), ``output`` the analysis; metadata ``entities`` (the group), ``relation``
    (``pair`` or ``triple``) and ``all_entities`` (the passage's list). A passage with fewer than
    two entities yields no records (fewer than three: no triples).

    Raises:
        SeedFieldError: the seed has no ``source``.
    """

    name = "entigraph"

    def __init__(self, max_entities: int = 12, num_pairs: int = 3, num_triples: int = 1,
                 sampling_seed: int = 0) -> None:
        super().__init__()
        self.max_entities = max_entities
        self.sizes: dict[Relation, tuple[int, int]] = {"pair": (2, num_pairs), "triple": (3, num_triples)}
        self.sampling_seed = sampling_seed
        self.extract = dspy.Predict(ExtractEntities)
        self.relate = dspy.Predict(RelateEntities)

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:
        (source,) = require(seed, self.name, "source")
        entities = clean_entities(self.extract(passage=source).entities, self.max_entities)
        groups = [
            (relation, group)
            for relation, (size, count) in self.sizes.items()
            for group in sample_groups(entities, size, count, (self.name, self.sampling_seed, seed.id, relation),
                                       rollout)
        ]
        records = []
        for index, (relation, group) in enumerate(groups):
            analysis = self.relate(passage=source, entities=list(group), config=sampling_config(rollout))
            records.append(self.record(
                seed, rollout, index, instruction=relation_instruction(group), input=source,
                output=analysis.analysis.strip(),
                metadata={"entities": list(group), "relation": relation, "all_entities": entities},
            ))
        return records


def relation_instruction(group: tuple[str, ...]) -> str:
    """The record's instruction for ``group``, e.g. ``Analyse how "A" and "B" relate in the passage.``"""
    quoted = [f'"{name}"' for name in group]
    names = " and ".join(quoted) if len(quoted) == 2 else ", ".join(quoted[:-1]) + f" and {quoted[-1]}"
    return f"Analyse how {names} relate in the passage."
