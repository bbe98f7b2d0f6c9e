"""Curriculum: difficulty scores, stages, and schedules that map a training step to stage weights.

A curriculum has ordered *stages* (by default Foundations -> Skill Building -> Advanced
Integration, as in the curriculum strategy of ``../shared/DESIGN.md``). Documents get a
difficulty score, either from their dimension labels (Conceptual Complexity, Reasoning
Explicitness, Ambiguity Level: each value's rank in an ordered list) or from a measurable proxy
(length, compression), and the score puts them into a stage.

A *schedule* is a plain object: ``schedule.weights(step)`` returns one sampling weight per stage
(a list that sums to 1), so it can be plotted and tested without training. Kinds:

- ``strict``: stage k alone for its fraction of the steps (X/Y/Z).
- ``gradual``: stage k is ramped in linearly from its start fraction; once a later stage has taken
  over, an earlier stage keeps a raw weight of at least ``keep`` before the stage weights are
  renormalised (so its share is ``keep`` divided by the sum of raw weights, below ``keep``).
- ``linear`` / ``root`` / ``fixed_exponential``: the competence-based curriculum of Platanios et
  al. 2019 ("Competence-based Curriculum Learning for Neural Machine Translation"): at step t only
  the easiest ``c(t)`` fraction of the data is available, with their linear and root competence
  functions (c0 and T), or the fixed exponential pacing of Hacohen & Weinshall 2019 ("On the
  Power of Curriculum Learning in Training Deep Networks": starting fraction, increase factor,
  step length). At stage granularity a stage's weight is its available share of documents.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_STAGES = ("Foundations", "Skill Building", "Advanced Integration")

DEFAULT_DIMENSION_ORDER: dict[str, list[str]] = {
    "Conceptual Complexity": [
        "Basic Concepts",
        "Intermediate Concepts",
        "Advanced/Interdisciplinary Concepts",
    ],
    "Reasoning Explicitness": ["Implicit", "Concise Reasoning", "Detailed CoT", "Self-Reflective/Corrective"],
    "Ambiguity Level": ["Low", "Moderate", "High"],
}
"""Easy-to-hard value order of the three dimensions the curriculum strategy partitions by."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------------------
# Difficulty and stages


class DifficultySpec(_Strict):
    """How documents are scored and put into stages.

    ``by = "dimensions"``: score = mean over ``dimensions`` of the value's rank / (n_values - 1),
    in [0, 1]; stages by ``thresholds`` on the score (n_stages - 1 ascending cut points).
    ``by = "length"`` (characters) or ``"compression"`` (zlib compressed size / raw size: the
    inverse of the compression ratio used as a baseline by Chen et al. 2024, appendix C; a text
    that compresses poorly is dense, hence harder): stages by quantiles of the score, computed
    within each source (``quantiles_within = "source"``) or over all documents.
    ``by = "field"``: a numeric difficulty read from each record (the source's ``difficulty_field``).
    """

    by: Literal["dimensions", "length", "compression", "field"] = "compression"
    dimensions: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_DIMENSION_ORDER))
    thresholds: list[float] | None = None
    quantiles_within: Literal["source", "all"] = "source"


def dimension_score(labels: Mapping[str, str], order: Mapping[str, Sequence[str]]) -> float:
    """Difficulty in [0, 1] of a document from its dimension labels.

    Args:
        labels: the document's dimension name -> value.
        order: dimension name -> its values from easiest to hardest; only dimensions the document
            has are used (case-insensitive value match).

    Returns:
        Mean normalised rank ``rank / (len(values) - 1)`` over the used dimensions.

    Raises:
        ValueError: when a value is not in its dimension's order, or the document has none of them.
    """
    ranks = []
    for dim, values in order.items():
        if dim not in labels:
            continue
        lowered = [v.lower() for v in values]
        value = str(labels[dim]).strip().lower()
        if value not in lowered:
            raise ValueError(f"dimension {dim!r}: value {labels[dim]!r} is not one of {list(values)}")
        ranks.append(lowered.index(value) / max(len(values) - 1, 1))
    if not ranks:
        raise ValueError(f"none of the curriculum dimensions {list(order)} among labels {sorted(labels)}")
    return sum(ranks) / len(ranks)


def proxy_score(text: str, by: Literal["length", "compression"]) -> float:
    """Measurable difficulty proxy: character length, or zlib-compressed / raw UTF-8 size."""
    if by == "length":
        return float(len(text))
    raw = text.encode("utf-8")
    return len(zlib.compress(raw, 9)) / max(len(raw), 1)


def stages_by_thresholds(scores: Sequence[float], thresholds: Sequence[float]) -> list[int]:
    """Stage index of each score: the number of ``thresholds`` (ascending) that are <= it."""
    if list(thresholds) != sorted(thresholds):
        raise ValueError(f"curriculum thresholds must ascend, got {list(thresholds)}")
    return [sum(score >= t for t in thresholds) for score in scores]


def stages_by_quantiles(scores: Sequence[float], n_stages: int) -> list[int]:
    """Stage index of each score so that stages hold (nearly) equal counts, easiest first.

    Ties are broken by position, so the result is deterministic.
    """
    order = sorted(range(len(scores)), key=lambda i: (scores[i], i))
    stages = [0] * len(scores)
    for rank, i in enumerate(order):
        stages[i] = min(rank * n_stages // max(len(scores), 1), n_stages - 1)
    return stages


# ---------------------------------------------------------------------------------------------
# Schedules


class Schedule:
    """Maps a training step to one sampling weight per stage (weights sum to 1).

    Subclasses implement :meth:`weights`; :meth:`normalise` turns raw non-negative weights into one.
    """

    def __init__(self, n_stages: int, total_steps: int) -> None:
        if n_stages < 1 or total_steps < 1:
            raise ValueError(f"need n_stages >= 1 and total_steps >= 1, got {n_stages}, {total_steps}")
        self.n_stages = n_stages
        self.total_steps = total_steps

    def fraction(self, step: int) -> float:
        """Training fraction ``t = step / total_steps`` clipped to [0, 1]."""
        return min(max(step / self.total_steps, 0.0), 1.0)

    def normalise(self, raw: Sequence[float], step: int) -> list[float]:
        """``raw`` scaled to sum to 1.

        Raises:
            ValueError: when every weight is zero.
        """
        total = sum(raw)
        if total <= 0:
            raise ValueError(f"{type(self).__name__}: all stage weights are zero at step {step}")
        return [x / total for x in raw]

    def weights(self, step: int) -> list[float]:
        """Stage weights at optimizer ``step`` (0-based): ``n_stages`` floats summing to 1."""
        raise NotImplementedError

    def transitions(self) -> list[int]:
        """Steps (after 0) at which a stage first gets a positive weight: where to log per-stage losses."""
        out, entered = [], [w > 0 for w in self.weights(0)]
        for step in range(1, self.total_steps):
            for k, w in enumerate(self.weights(step)):
                if w > 0 and not entered[k]:
                    entered[k] = True
                    out.append(step)
        return sorted(set(out))


class UniformSchedule(Schedule):
    """No curriculum: every stage weighted by its share of the data (``sizes``) throughout."""

    def __init__(self, sizes: Sequence[float], total_steps: int) -> None:
        super().__init__(len(sizes), total_steps)
        self.sizes = list(sizes)

    def weights(self, step: int) -> list[float]:
        return self.normalise(self.sizes, step)


class StrictSchedule(Schedule):
    """Strict sequencing: stage k alone during its share ``fractions[k]`` of the steps.

    Stage k covers steps ``[round(F_{k-1} T), round(F_k T))`` with ``F`` the cumulative fractions.
    """

    def __init__(self, fractions: Sequence[float], total_steps: int) -> None:
        super().__init__(len(fractions), total_steps)
        if any(f < 0 for f in fractions) or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
            raise ValueError(f"strict schedule fractions must be >= 0 and sum to 1, got {list(fractions)}")
        self.bounds = [round(sum(fractions[: k + 1]) * total_steps) for k in range(len(fractions))]

    def stage_at(self, step: int) -> int:
        """Index of the stage trained at ``step``."""
        for k, end in enumerate(self.bounds):
            if step < end:
                return k
        return self.n_stages - 1

    def weights(self, step: int) -> list[float]:
        k = self.stage_at(step)
        return [1.0 if i == k else 0.0 for i in range(self.n_stages)]


class GradualSchedule(Schedule):
    """Gradual mixing: stage k ramps in linearly from ``starts[k]`` over ``ramp`` of training.

    With ``a_k(t) = clip((t - starts[k]) / ramp, 0, 1)`` the raw weight of stage k is
    ``a_k - a_{k+1}`` (it hands over to the next stage while that one ramps in); a stage that has
    been handed over keeps a raw weight of at least ``keep`` (0 phases it out), and the raw weights
    are then renormalised: with three stages and ``keep = 0.1`` the end state is
    ``[0.083, 0.083, 0.833]``. ``starts[0]`` must be 0.
    """

    def __init__(self, starts: Sequence[float], ramp: float, keep: float, total_steps: int) -> None:
        super().__init__(len(starts), total_steps)
        if not starts or starts[0] != 0 or list(starts) != sorted(starts) or starts[-1] > 1:
            raise ValueError(f"gradual schedule starts must ascend from 0 within [0, 1], got {list(starts)}")
        if ramp <= 0 or not 0 <= keep < 1:
            raise ValueError(f"gradual schedule needs ramp > 0 and 0 <= keep < 1, got {ramp}, {keep}")
        self.starts, self.ramp, self.keep = list(starts), ramp, keep

    def weights(self, step: int) -> list[float]:
        t = self.fraction(step)
        a = [1.0 if k == 0 else min(max((t - s) / self.ramp, 0.0), 1.0) for k, s in enumerate(self.starts)]
        a.append(0.0)
        w = [a[k] - a[k + 1] for k in range(self.n_stages)]
        kept = [max(w[k], self.keep) if a[k + 1] > 0 else w[k] for k in range(self.n_stages)]
        return self.normalise(kept, step)


def pacing_linear(t_step: float, c0: float, T: float) -> float:
    """Linear competence ``min(1, t (1 - c0) / T + c0)`` (Platanios et al. 2019, c_linear)."""
    return min(1.0, t_step * (1 - c0) / T + c0)


def pacing_root(t_step: float, c0: float, T: float, p: float = 2.0) -> float:
    """Root-p competence ``min(1, (t (1 - c0^p) / T + c0^p)^(1/p))`` (Platanios et al. 2019, c_root-p)."""
    return min(1.0, (t_step * (1 - c0**p) / T + c0**p) ** (1 / p))


def pacing_fixed_exponential(t_step: float, start: float, inc: float, step_length: float) -> float:
    """Fixed exponential pacing ``min(1, start * inc^floor(t / step_length))`` (Hacohen & Weinshall 2019)."""
    return min(1.0, start * inc ** math.floor(t_step / step_length))


class CompetenceSchedule(Schedule):
    """Competence-based curriculum (Platanios et al. 2019): the easiest ``c(t)`` of the data is available.

    Stages hold ``sizes[k]`` documents, easiest stage first, so stage k spans the difficulty CDF
    interval ``[C_{k-1}, C_k]``; its weight at competence ``c`` is the available part of it,
    ``max(0, min(c, C_k) - C_{k-1})`` (within a partly available stage sampling is uniform).
    ``pacing(step) -> c`` takes the step in optimizer steps.
    """

    def __init__(
        self,
        sizes: Sequence[float],
        total_steps: int,
        pacing: Callable[[float], float],
        name: str = "competence",
    ) -> None:
        super().__init__(len(sizes), total_steps)
        total = float(sum(sizes))
        if total <= 0:
            raise ValueError("competence schedule needs stages with documents")
        self.cdf = [sum(sizes[: k + 1]) / total for k in range(len(sizes))]
        self.pacing = pacing
        self.name = name

    def competence(self, step: int) -> float:
        """The available fraction of the data at ``step``, in (0, 1]."""
        return self.pacing(step)

    def weights(self, step: int) -> list[float]:
        c = self.competence(step)
        lo = [0.0, *self.cdf[:-1]]
        w = [max(0.0, min(c, hi) - low) for low, hi in zip(lo, self.cdf, strict=True)]
        if sum(w) <= 0:  # c below the first stage's share: the easiest stage alone
            w[0] = 1.0
        return self.normalise(w, step)


class StrictSpec(_Strict):
    """``[curriculum.schedule] kind = "strict"``: ``fractions`` of the steps per stage (X/Y/Z)."""

    kind: Literal["strict"]
    fractions: list[float] = Field(default_factory=lambda: [0.3, 0.3, 0.4])

    @model_validator(mode="after")
    def _valid(self) -> StrictSpec:
        StrictSchedule(self.fractions, total_steps=1)  # raises ValueError naming what is wrong
        return self


class GradualSpec(_Strict):
    """``kind = "gradual"``: stage start fractions, ramp length (fraction of training), kept share."""

    kind: Literal["gradual"]
    starts: list[float] = Field(default_factory=lambda: [0.0, 0.25, 0.5])
    ramp: float = 0.2
    keep: float = 0.1

    @model_validator(mode="after")
    def _valid(self) -> GradualSpec:
        GradualSchedule(self.starts, self.ramp, self.keep, total_steps=1)  # raises ValueError
        return self


class PacingSpec(_Strict):
    """``kind = "linear" | "root" | "fixed_exponential"``: a competence-based pacing function.

    ``c0`` and ``T`` (``duration``, a fraction of the total steps) for linear and root (power ``p``);
    ``start``, ``inc`` and ``step_length`` (a fraction of the total steps) for fixed_exponential.
    """

    kind: Literal["linear", "root", "fixed_exponential"]
    c0: float = Field(0.1, gt=0, le=1)
    duration: float = Field(0.5, gt=0)
    p: float = Field(2.0, gt=0)
    start: float = Field(0.1, gt=0, le=1)
    inc: float = Field(1.9, gt=1)
    step_length: float = Field(0.1, gt=0)


ScheduleSpec = Annotated[StrictSpec | GradualSpec | PacingSpec, Field(discriminator="kind")]


class CurriculumSpec(_Strict):
    """``[curriculum]``: stage names (easiest first), how difficulty is scored, and the schedule."""

    stages: list[str] = Field(default_factory=lambda: list(DEFAULT_STAGES), min_length=1)
    difficulty: DifficultySpec = Field(default_factory=DifficultySpec)
    schedule: ScheduleSpec | None = None

    @model_validator(mode="after")
    def _check(self) -> CurriculumSpec:
        n = len(self.stages)
        s = self.schedule
        if isinstance(s, StrictSpec) and len(s.fractions) != n:
            raise ValueError(f"schedule.fractions needs {n} entries (one per stage), got {len(s.fractions)}")
        if isinstance(s, GradualSpec) and len(s.starts) != n:
            raise ValueError(f"schedule.starts needs {n} entries (one per stage), got {len(s.starts)}")
        th = self.difficulty.thresholds
        if th is not None and len(th) != n - 1:
            raise ValueError(f"difficulty.thresholds needs {n - 1} cut points for {n} stages, got {len(th)}")
        return self


def build_schedule(spec: ScheduleSpec | None, sizes: Sequence[float], total_steps: int) -> Schedule:
    """The :class:`Schedule` for ``spec`` over stages of ``sizes`` documents and ``total_steps`` steps.

    ``spec=None`` gives :class:`UniformSchedule` (the data's natural stage proportions).

    Raises:
        ValueError: when the spec's parameters are inconsistent (see each schedule).
    """
    if spec is None:
        return UniformSchedule(sizes, total_steps)
    if isinstance(spec, StrictSpec):
        return StrictSchedule(spec.fractions, total_steps)
    if isinstance(spec, GradualSpec):
        return GradualSchedule(spec.starts, spec.ramp, spec.keep, total_steps)
    T = spec.duration * total_steps
    if spec.kind == "linear":
        return CompetenceSchedule(sizes, total_steps, lambda s: pacing_linear(s, spec.c0, T), "linear")
    if spec.kind == "root":
        return CompetenceSchedule(sizes, total_steps, lambda s: pacing_root(s, spec.c0, T, spec.p), "root")
    length = spec.step_length * total_steps
    return CompetenceSchedule(
        sizes, total_steps, lambda s: pacing_fixed_exponential(s, spec.start, spec.inc, length), spec.kind
    )
