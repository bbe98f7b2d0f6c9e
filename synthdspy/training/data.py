"""From a training config to what the trainer consumes: documents -> stages -> splits -> tokens.

:func:`prepare` reads every source, scores and stages the documents (curriculum), builds the
named validation splits, fits the tokenizer on the training documents only, packs the training
cells and the fixed evaluation windows, and builds the curriculum schedule.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from synthdspy.training.config import TrainConfig
from synthdspy.training.curriculum import (
    CurriculumSpec,
    Schedule,
    build_schedule,
    dimension_score,
    proxy_score,
    stages_by_quantiles,
    stages_by_thresholds,
)
from synthdspy.training.documents import Document, SourceError, load_source
from synthdspy.training.splits import Splits, build_splits
from synthdspy.training.streams import Cell, EvalSet, MixtureStream, build_cells, make_eval_set
from synthdspy.training.tokenizer import Tokenizer, build_tokenizer


def assign_stages(docs: Sequence[Document], spec: CurriculumSpec) -> None:
    """Set ``doc.difficulty`` (when not read from the record) and ``doc.stage`` for every document.

    Dimension scores are staged by thresholds (default: equal thirds of [0, 1] for three stages);
    proxy and field scores by quantiles (within each source, or over all documents), unless
    ``thresholds`` are given.

    Raises:
        SourceError: a document whose labels do not fit the curriculum's dimensions, or a
            ``by = "field"`` curriculum over documents without a difficulty.
    """
    diff = spec.difficulty
    n = len(spec.stages)
    for doc in docs:
        if diff.by == "dimensions":
            try:
                doc.difficulty = dimension_score(doc.dimensions, diff.dimensions)
            except ValueError as exc:
                raise SourceError(f"{doc.group} document {doc.index}: {exc}") from None
        elif diff.by in ("length", "compression"):
            doc.difficulty = proxy_score(doc.text, diff.by)
        elif doc.difficulty is None:
            raise SourceError(
                f"{doc.group} document {doc.index}: no difficulty (set the source's difficulty_field)"
            )
    thresholds = diff.thresholds
    if thresholds is None and diff.by == "dimensions":
        thresholds = [k / n for k in range(1, n)]
    if thresholds is not None:
        for doc, stage in zip(
            docs, stages_by_thresholds([d.difficulty for d in docs], thresholds), strict=True
        ):
            doc.stage = stage
        return
    pools: dict[str, list[Document]] = defaultdict(list)
    for doc in docs:
        pools[doc.source if diff.quantiles_within == "source" else ""].append(doc)
    for members in pools.values():
        for doc, stage in zip(members, stages_by_quantiles([d.difficulty for d in members], n), strict=True):
            doc.stage = stage


@dataclass
class Prepared:
    """Everything a training run needs from the data side."""

    splits: Splits
    tokenizer: Tokenizer
    cells: list[Cell]
    eval_sets: list[EvalSet]
    schedule: Schedule
    stage_names: list[str] | None
    source_weights: dict[str, float]
    group_weights: dict[str, float]

    def stream(self, config: TrainConfig) -> MixtureStream:
        """A fresh training stream seeded with ``config.seed``."""
        return MixtureStream(
            self.cells,
            self.source_weights,
            self.group_weights,
            self.schedule.weights,
            config.model.block_size,
            config.trainer.batch_size,
            config.seed,
        )


def group_weights_of(config: TrainConfig, train_docs: Sequence[Document]) -> dict[str, float]:
    """Each group's weight inside its source: the source's ``group_weights`` or its share of characters.

    Raises:
        SourceError: a ``group_weights`` key that names no group of the source.
    """
    chars: dict[str, float] = defaultdict(float)
    for d in train_docs:
        chars[d.group] += len(d.text)
    out = dict(chars)
    for spec in config.sources:
        if spec.group_weights is None:
            continue
        groups = {g for g in chars if g.split("/", 1)[0] == spec.name}
        for key, w in spec.group_weights.items():
            if f"{spec.name}/{key}" not in groups:
                raise SourceError(
                    f"sources.{spec.name}.group_weights: no group {key!r} (have {sorted(groups)})"
                )
            out[f"{spec.name}/{key}"] = w
        for g in groups:
            out[g] = spec.group_weights.get(g.split("/", 1)[1], 0.0)
    return out


def prepare(config: TrainConfig) -> Prepared:
    """Load, stage, split, tokenize and pack the data of ``config``.

    Raises:
        SourceError: unreadable sources or labels (see :func:`load_source`, :func:`assign_stages`).
        ValueError: an inconsistent schedule.
    """
    docs = [doc for spec in config.sources for doc in load_source(spec)]
    cur = config.curriculum
    if cur is not None:
        assign_stages(docs, cur)
    stage_names = list(cur.stages) if cur is not None else None
    splits = build_splits(docs, config.validation, stage_names)
    tok = build_tokenizer(config.tokenizer, [d.text for d in splits.train])
    T = config.model.block_size
    repeats = {s.name: s.max_repeats for s in config.sources}
    cells = build_cells(splits.train, tok, T, repeats)
    n_stages = len(stage_names) if stage_names else 1
    sizes = [sum(1 for d in splits.train if d.stage == k) for k in range(n_stages)]
    schedule = build_schedule(cur.schedule if cur else None, sizes, config.total_steps)
    eval_sets = [
        make_eval_set(name, members, tok, T, config.trainer.eval_windows)
        for name, members in splits.evals.items()
    ]
    return Prepared(
        splits=splits,
        tokenizer=tok,
        cells=cells,
        eval_sets=eval_sets,
        schedule=schedule,
        stage_names=stage_names,
        source_weights=config.source_weights,
        group_weights=group_weights_of(config, splits.train),
    )
