"""Validation-set construction: every named split that training must never sample.

Following the validation strategy in ``../shared/DESIGN.md`` (curriculum seed), per group of
documents (a source, or a ``group_by`` value of one):

- ``val/<group>``: a stratified sample of ``fraction`` of the group, drawn so that every dimension
  value gets at least ``floor`` documents (rare values represented) and otherwise in proportion
  to the target distribution (default: the group's own), never taking more than
  ``max_value_share`` of one value's documents; or, with ``mode = "tail"``, the last
  ``fraction`` of the group's characters (nanoGPT's split of one text). The draw ignores
  curriculum stages, so runs with and without a curriculum, or with another difficulty measure,
  are scored on the same validation documents.
- ``stage/<stage>``: the validation documents of each curriculum stage. A stage with fewer than
  ``floor`` of them is topped up with training documents of that stage (at most half of them,
  seeded); those leave training and join only ``stage/<stage>``, so ``val/<group>`` stays the
  stage-independent draw. A warning is logged when a stage still has fewer than ``floor``.
- ``heldout/<name>``: documents matching a held-out dimension combination, removed from training.
- ``ood/<name>``: out-of-distribution probe sources, read only for evaluation.
- ``gold``: an optional human-curated file.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from synthdspy.training.documents import Document, SourceError, SourceSpec, load_source

log = logging.getLogger(__name__)


class HoldoutSpec(BaseModel):
    """``[[validation.holdout]]``: documents whose labels match every ``match`` pair are held out."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    match: dict[str, str] = Field(min_length=1)


class ValidationSpec(BaseModel):
    """``[validation]``: how the named evaluation splits are built (see the module docstring).

    ``target`` optionally gives the target share of each value per dimension
    (``{"Ambiguity Level" = {Low = 0.5, Moderate = 0.3, High = 0.2}}``); ``seed`` fixes the draw
    independently of the training seed so that runs being compared share one validation set.
    """

    model_config = ConfigDict(extra="forbid")

    mode: Literal["stratified", "tail"] = "stratified"
    fraction: float = Field(0.1, gt=0, lt=1)
    floor: int = Field(2, ge=0)
    max_value_share: float = Field(0.5, gt=0, le=1)
    target: dict[str, dict[str, float]] = Field(default_factory=dict)
    per_stage: bool = True
    holdout: list[HoldoutSpec] = Field(default_factory=list)
    ood: list[SourceSpec] = Field(default_factory=list)
    gold: SourceSpec | None = None
    seed: int = 0


@dataclass
class Splits:
    """Training documents and the named evaluation splits (``name -> documents``); disjoint."""

    train: list[Document]
    evals: dict[str, list[Document]]


def labels_of(doc: Document) -> list[tuple[str, str]]:
    """The stratification labels of a document: its dimension values (not its curriculum stage,
    which depends on the run's difficulty measure)."""
    return sorted(doc.dimensions.items())


def matches(doc: Document, combo: Mapping[str, str]) -> bool:
    """True when the document carries every ``dimension = value`` pair of ``combo`` (case-insensitive)."""
    return all(doc.dimensions.get(k, "").strip().lower() == v.strip().lower() for k, v in combo.items())


def tail_split(docs: Sequence[Document], fraction: float) -> tuple[list[Document], list[Document]]:
    """Split documents (in order) at ``1 - fraction`` of their characters; the straddling one is cut.

    With a single document this is ``text[:int(n * 0.9)]`` / ``text[int(n * 0.9):]`` for
    ``fraction = 0.1``, nanoGPT's split of a corpus.

    Returns:
        (train, validation) documents.
    """
    total = sum(len(d.text) for d in docs)
    cut = int(total * (1 - fraction))
    train: list[Document] = []
    val: list[Document] = []
    seen = 0
    for doc in docs:
        end = seen + len(doc.text)
        if end <= cut:
            train.append(doc)
        elif seen >= cut:
            val.append(doc)
        else:
            train.append(replace(doc, text=doc.text[: cut - seen]))
            val.append(replace(doc, text=doc.text[cut - seen :]))
        seen = end
    return train, val


def stratified_split(
    docs: Sequence[Document],
    fraction: float,
    floor: int,
    max_value_share: float,
    rng: random.Random,
    target: Mapping[str, Mapping[str, float]] | None = None,
) -> tuple[list[Document], list[Document]]:
    """Draw ``fraction`` of ``docs`` for validation, stratified over every label with a floor.

    Each label (dimension value, :func:`labels_of`) gets a quota ``max(floor, round(n_val * share))`` where
    ``share`` is its target share (``target[dim][value]``, else its share of ``docs``), capped at
    ``floor(max_value_share * count)`` so training keeps each value. Rarest labels are served
    first; then random documents fill up to ``n_val = round(fraction * len(docs))``, respecting
    the caps. Documents count towards all their labels.

    Returns:
        (train, validation) documents, each in the input order.

    Raises:
        ValueError: with fewer than 2 documents (use ``mode = "tail"`` for a single text).
    """
    if len(docs) < 2:
        raise ValueError("a stratified split needs at least 2 documents; use validation.mode = 'tail'")
    n_val = max(1, round(fraction * len(docs)))
    labels = [labels_of(d) for d in docs]
    counts = Counter(label for ls in labels for label in ls)
    caps = {label: int(max_value_share * c) for label, c in counts.items()}
    target = target or {}

    def share(label: tuple[str, str]) -> float:
        dim, value = label
        if dim in target:
            lowered = {k.lower(): v for k, v in target[dim].items()}
            return lowered.get(value.lower(), 0.0) / max(sum(target[dim].values()), 1e-12)
        return counts[label] / len(docs)

    quota = {label: min(max(floor, round(n_val * share(label))), caps[label]) for label in counts}
    order = list(range(len(docs)))
    rng.shuffle(order)
    chosen: set[int] = set()
    taken: Counter = Counter()

    def take(i: int) -> bool:
        if i in chosen or any(taken[label] >= caps[label] for label in labels[i]):
            return False
        chosen.add(i)
        taken.update(labels[i])
        return True

    for label in sorted(counts, key=lambda lb: (counts[lb], lb)):
        for i in order:
            if taken[label] >= quota[label]:
                break
            if label in labels[i]:
                take(i)
    for i in order:
        if len(chosen) >= n_val:
            break
        take(i)
    train = [d for i, d in enumerate(docs) if i not in chosen]
    val = [d for i, d in enumerate(docs) if i in chosen]
    return train, val


def build_splits(docs: Sequence[Document], spec: ValidationSpec, stage_names: Sequence[str] | None) -> Splits:
    """Split labelled documents into training documents and named evaluation splits.

    Args:
        docs: every document of the training sources, with ``stage`` assigned.
        spec: the ``[validation]`` section.
        stage_names: the curriculum's stage names, or None when there is no curriculum (no
            ``stage/*`` splits).

    Returns:
        :class:`Splits`; OOD and gold sources are loaded here (stage 0, no training use).

    Raises:
        SourceError: a group too small to split, or an unreadable OOD/gold source.
    """
    rng = random.Random(spec.seed)
    by_group: dict[str, list[Document]] = defaultdict(list)
    for doc in docs:
        by_group[doc.group].append(doc)
    train: list[Document] = []
    evals: dict[str, list[Document]] = {}
    held: dict[str, list[Document]] = {h.name: [] for h in spec.holdout}
    for group, members in by_group.items():
        pool = []
        for doc in members:
            hit = next((h.name for h in spec.holdout if matches(doc, h.match)), None)
            (held[hit] if hit else pool).append(doc)
        if not pool:
            continue
        try:
            if spec.mode == "tail":
                tr, val = tail_split(pool, spec.fraction)
            else:
                tr, val = stratified_split(
                    pool, spec.fraction, spec.floor, spec.max_value_share, rng, spec.target
                )
        except ValueError as exc:
            raise SourceError(f"validation: group {group!r}: {exc}") from None
        train.extend(tr)
        evals[f"val/{group}"] = val
    if spec.per_stage and stage_names:
        val_docs = [d for name, ds in evals.items() if name.startswith("val/") for d in ds]
        for k, stage in enumerate(stage_names):
            members = [d for d in val_docs if d.stage == k]
            if len(members) < spec.floor:  # top up from the stage's training documents
                pool = [d for d in train if d.stage == k]
                extra = rng.sample(pool, min(spec.floor - len(members), len(pool) // 2))
                moved = {id(d) for d in extra}
                train = [d for d in train if id(d) not in moved]
                members += extra
            if len(members) < spec.floor:
                log.warning("stage/%s has %d validation documents (floor %d): its loss is noisy",
                            stage, len(members), spec.floor)
            if members:
                evals[f"stage/{stage}"] = members
    for name, members in held.items():
        if not members:
            raise SourceError(f"validation.holdout.{name}: no document matches it")
        evals[f"heldout/{name}"] = members
    for probe in spec.ood:
        evals[f"ood/{probe.name}"] = load_source(probe)
    if spec.gold is not None:
        evals["gold"] = load_source(spec.gold)
    return Splits(train=train, evals=evals)
