"""The ``dimension`` gate: a judge classifies a text on each of its target dimensions
(strategy seed, section A.4: "classify this text according to the Ambiguity Level dimension"),
and confusion matrices of target against predicted values.

Design: one predictor per dimension, each a :class:`ClassifyDimension` whose ``label`` is a
``Literal`` of that dimension's value names (built at init from the catalog), so the answer is
constrained by the adapter rather than checked afterwards. Predicted and target labels go into
``Verdict.details`` ({"target": {...}, "predicted": {...}}), from which
:func:`confusion_from_records` rebuilds the matrices of a stored run; the gate also accumulates
them in memory (:attr:`DimensionGate.counts`) over its own run.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import dspy
from pydantic import Field

from synthdspy.gates.base import Gate
from synthdspy.records import Record, Verdict
from synthdspy.registry import Params, register_gate
from synthdspy.roles import judge_context
from synthdspy.seeds.catalog import Dimension, load_dimensions
from synthdspy.signatures.dimension_judges import classify_signature


@dataclass(frozen=True)
class ConfusionMatrix:
    """Counts of (target, predicted) values of one dimension: ``matrix[i][j]`` is the number of texts
    with target ``labels[i]`` classified as ``labels[j]`` (rows: target, columns: predicted)."""

    labels: list[str]
    matrix: list[list[int]]

    @property
    def total(self) -> int:
        """Number of classified texts."""
        return sum(map(sum, self.matrix))

    @property
    def accuracy(self) -> float:
        """Share of texts classified as their target (the diagonal), 0.0 when there are none."""
        total = self.total
        return sum(self.matrix[i][i] for i in range(len(self.labels))) / total if total else 0.0


def confusion_matrices(
    pairs: dict[str, Counter[tuple[str, str]]], labels: dict[str, list[str]] | None = None
) -> dict[str, ConfusionMatrix]:
    """Confusion matrices from per-dimension counts of (target, predicted) pairs (each Counter
    non-empty), computed with ``sklearn.metrics.confusion_matrix``.

    ``labels`` gives each dimension's label order (the catalog's values); labels seen in ``pairs``
    but not listed are appended in sorted order.
    """
    if not pairs:  # no dimension verdicts: scikit-learn's import (about 1 s) is not needed
        return {}
    from sklearn.metrics import confusion_matrix

    out = {}
    for dim, counts in pairs.items():
        seen = sorted({x for pair in counts for x in pair})
        order = list((labels or {}).get(dim, []))
        order += [x for x in seen if x not in order]
        keys = list(counts)
        m = confusion_matrix([t for t, _ in keys], [p for _, p in keys], labels=order,
                             sample_weight=[counts[k] for k in keys])
        out[dim] = ConfusionMatrix(order, [[int(x) for x in row] for row in m])
    return out


def catalog_labels(dimensions: list[Dimension] | None = None) -> dict[str, list[str]]:
    """{dimension: value names in catalog order} for the shipped (or given) catalog."""
    return {d.name: [v.name for v in d.values] for d in (dimensions or load_dimensions())}


def confusion_from_records(records: Iterable[Record], gate: str = "dimension") -> dict[str, ConfusionMatrix]:
    """Confusion matrices per dimension from stored records' ``gate`` verdicts (their ``details``),
    labels ordered as in the shipped catalog. Verdicts without details (a record with no
    dimensions) are skipped."""
    pairs: dict[str, Counter[tuple[str, str]]] = {}
    for record in records:
        for verdict in record.verdicts:
            if verdict.gate != gate:
                continue
            target, predicted = verdict.details.get("target", {}), verdict.details.get("predicted", {})
            for dim, value in target.items():
                if dim in predicted:
                    pairs.setdefault(dim, Counter())[(value, predicted[dim])] += 1
    return confusion_matrices(pairs, catalog_labels())


class ConfusionCounts:
    """Thread-safe running counts of (target, predicted) pairs per dimension; deep copies get
    their own lock and counts (DSPy copies programs while compiling)."""

    def __init__(self) -> None:
        self.pairs: dict[str, Counter[tuple[str, str]]] = {}
        self._lock = threading.Lock()

    def __deepcopy__(self, memo: dict) -> ConfusionCounts:
        new = ConfusionCounts()
        with self._lock:
            new.pairs = copy.deepcopy(self.pairs)
        return new

    def add(self, target: dict[str, str], predicted: dict[str, str]) -> None:
        """Count one text's classification of every dimension in both mappings."""
        with self._lock:
            for dim, value in target.items():
                if dim in predicted:
                    self.pairs.setdefault(dim, Counter())[(value, predicted[dim])] += 1

    def snapshot(self) -> dict[str, Counter[tuple[str, str]]]:
        """A copy of the counts."""
        with self._lock:
            return copy.deepcopy(self.pairs)


class DimensionParams(Params):
    """Parameters of the ``dimension`` gate: which of a record's dimensions to check (empty: all)."""

    dimensions: list[str] = Field(default_factory=list, description="dimension names to check; empty = all")


@register_gate("dimension", DimensionParams)
class DimensionGate(Gate):
    """A judge classifies the text on each target dimension; passes when all match the targets.

    Checks every dimension in ``record.dimensions`` (or the configured subset), under the judge LM.

    Score: the share of checked dimensions that match. A record without (checked) dimensions
    fails with reason ``no_dimensions``; one naming a dimension the catalog lacks fails with
    ``unknown_dimension``. ``details`` holds ``target`` and ``predicted`` labels.
    """

    name = "dimension"

    def __init__(self, dimensions: list[str] | None = None) -> None:
        super().__init__()
        catalog = load_dimensions()
        known = {d.name for d in catalog}
        unknown = sorted(set(dimensions or []) - known)
        if unknown:
            raise ValueError(f"dimension gate: unknown dimension(s) {unknown}; known: {sorted(known)}")
        self.only = list(dimensions or [])
        self.dims = {d.name: d for d in catalog if not self.only or d.name in self.only}
        self.labels = catalog_labels(list(self.dims.values()))
        self.classifiers = {name: dspy.Predict(classify_signature(d)) for name, d in self.dims.items()}
        self.counts = ConfusionCounts()

    def confusion_matrices(self) -> dict[str, ConfusionMatrix]:
        """The confusion matrices of every text this gate object has classified so far."""
        return confusion_matrices(self.counts.snapshot(), self.labels)

    def classify(self, text: str, dimension: str) -> tuple[str, str]:
        """(predicted value, reason) of ``text`` on ``dimension``, under the judge role."""
        dim = self.dims[dimension]
        values = "\n".join(f"- {v.name}: {v.meaning} A text of this value: {v.instructions}" for v in dim.values)
        with judge_context():
            pred = self.classifiers[dimension](text=text, dimension=f"{dim.name}: {dim.description}", values=values)
        return str(pred.label), pred.reason

    def forward(self, record: Record) -> Verdict:
        targets = {d: v for d, v in record.dimensions.items() if not self.only or d in self.only}
        if not targets:
            return Verdict(gate=self.name, passed=False, score=0.0, reason="no_dimensions")
        unknown = sorted(set(targets) - set(self.dims))
        if unknown:
            return Verdict(gate=self.name, passed=False, score=0.0,
                           reason=f"unknown_dimension: {unknown} not in the catalog")
        text = record.output or record.text
        predicted, misses = {}, []
        for dim, target in targets.items():
            label, why = self.classify(text, dim)
            predicted[dim] = label
            if label != target:
                misses.append(f"{dim}: predicted {label!r}, target {target!r} ({why})")
        self.counts.add(targets, predicted)
        score = 1 - len(misses) / len(targets)
        reason = "; ".join(misses) if misses else f"all {len(targets)} dimension(s) match"
        return Verdict(gate=self.name, passed=not misses, score=score, reason=reason,
                       details={"target": targets, "predicted": predicted})
