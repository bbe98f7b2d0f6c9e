"""The search space: a trial's mixture weights and curriculum schedule, and how they become a
training config.

Parameters a trial suggests (names as Optuna records them):

- ``mix/<group>``: the stick of each group but the last of its simplex (see :mod:`.simplex`); one
  simplex over every group, or, with ``search.synthetic_share``, one over the real groups and one
  over the synthetic groups plus ``synthetic_share`` (their total weight).
- ``schedule``: the curriculum family (when more than one is searched), then its knobs:
  ``strict/stick/<k>`` (stage fractions, a simplex over stages), ``gradual/stick/<k>`` (the gaps
  between stage starts, a simplex over stages: its first K-1 entries are the gaps, the last the
  remainder after the last start), ``gradual/ramp``, ``gradual/keep`` (the share an earlier stage
  keeps), ``linear|root/c0``, ``linear|root/duration``, ``root/p``, ``fixed_exponential/start``,
  ``fixed_exponential/inc``, ``fixed_exponential/step_length``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from pydantic import TypeAdapter

from synthdspy.training.config import TrainConfig
from synthdspy.training.curriculum import ScheduleSpec
from synthdspy.tuning.config import Range, SearchSpec
from synthdspy.tuning.simplex import to_simplex


@dataclass
class TrialPlan:
    """What one trial trains: ``weights`` (group -> weight, summing to 1) and ``schedule``.

    ``schedule`` is ``{"kind": "base"}`` (the training config's), ``{"kind": "none"}`` (no pacing)
    or a curriculum schedule spec as a dict (``{"kind": "gradual", "starts": [...], ...}``).
    """

    weights: dict[str, float]
    schedule: dict[str, Any] = field(default_factory=lambda: {"kind": "base"})


def _float(trial: optuna.Trial, name: str, r: Range) -> float:
    return trial.suggest_float(name, r.low, r.high, log=r.log)


def suggest_simplex(trial: optuna.Trial, prefix: str, names: Sequence[str]) -> list[float]:
    """Suggest a point of the simplex over ``names`` (``len(names) - 1`` sticks ``prefix/<name>``)."""
    sticks = [trial.suggest_float(f"{prefix}/{n}", 0.0, 1.0) for n in names[:-1]]
    return to_simplex(sticks)


def suggest_weights(trial: optuna.Trial, search: SearchSpec) -> dict[str, float]:
    """Suggest mixture weights over ``search.groups`` (see the module docstring)."""
    groups = list(search.groups)
    if search.synthetic_share is None:
        return dict(zip(groups, suggest_simplex(trial, "mix", groups), strict=True))
    share = _float(trial, "synthetic_share", search.synthetic_share)
    out: dict[str, float] = {}
    for kind, total in (("real", 1.0 - share), ("synthetic", share)):
        members = [g for g in groups if search.groups[g] == kind]
        for g, w in zip(members, suggest_simplex(trial, "mix", members), strict=True):
            out[g] = total * w
    return {g: out[g] for g in groups}


def suggest_schedule(trial: optuna.Trial, search: SearchSpec, stages: Sequence[str]) -> dict[str, Any]:
    """Suggest a curriculum family and its knobs; ``{"kind": "base"}`` when none is searched."""
    families = search.schedules
    if not families:
        return {"kind": "base"}
    kind = families[0] if len(families) == 1 else trial.suggest_categorical("schedule", list(families))
    idx = [str(k) for k in range(len(stages))]
    if kind in ("base", "none"):
        return {"kind": kind}
    if kind == "strict":
        return {"kind": kind, "fractions": suggest_simplex(trial, "strict/stick", idx)}
    if kind == "gradual":
        gaps = suggest_simplex(trial, "gradual/stick", idx)
        starts = [min(sum(gaps[:k]), 1.0) for k in range(len(stages))]
        return {
            "kind": kind,
            "starts": starts,
            "ramp": _float(trial, "gradual/ramp", search.ramp),
            "keep": _float(trial, "gradual/keep", search.keep),
        }
    if kind in ("linear", "root"):
        spec = {
            "kind": kind,
            "c0": _float(trial, f"{kind}/c0", search.c0),
            "duration": _float(trial, f"{kind}/duration", search.duration),
        }
        if kind == "root":
            spec["p"] = _float(trial, "root/p", search.p)
        return spec
    return {
        "kind": kind,
        "start": _float(trial, f"{kind}/start", search.start),
        "inc": _float(trial, f"{kind}/inc", search.inc),
        "step_length": _float(trial, f"{kind}/step_length", search.step_length),
    }


def suggest_plan(trial: optuna.Trial, search: SearchSpec, stages: Sequence[str]) -> TrialPlan:
    """A trial's mixture and schedule, suggested from ``search``."""
    return TrialPlan(weights=suggest_weights(trial, search), schedule=suggest_schedule(trial, search, stages))


def apply_plan(base: TrainConfig, plan: TrialPlan) -> TrainConfig:
    """``base`` with ``plan``'s mixture and schedule.

    A whole-source group sets ``mixture[source]``; ``source/value`` groups set the source's
    ``group_weights`` (unlisted values 0) and ``mixture[source]`` to their sum.

    Raises:
        pydantic.ValidationError: a schedule the curriculum schema rejects.
    """
    mixture: dict[str, float] = {}
    inner: dict[str, dict[str, float]] = {}
    for group, w in plan.weights.items():
        src, _, value = group.partition("/")
        mixture[src] = mixture.get(src, 0.0) + w
        if value:
            inner.setdefault(src, {})[value] = w
    sources = [
        s.model_copy(update={"group_weights": inner[s.name]}) if s.name in inner else s for s in base.sources
    ]
    update: dict[str, Any] = {"mixture": mixture, "sources": sources}
    kind = plan.schedule["kind"]
    if kind != "base" and base.curriculum is not None:
        schedule = None if kind == "none" else TypeAdapter(ScheduleSpec).validate_python(plan.schedule)
        update["curriculum"] = base.curriculum.model_copy(update={"schedule": schedule})
    return base.model_copy(update=update)


def uniform_weights(groups: Sequence[str]) -> dict[str, float]:
    """Equal weight per group."""
    return {g: 1.0 / len(groups) for g in groups}


def natural_weights(sizes: Mapping[str, float]) -> dict[str, float]:
    """Weights proportional to ``sizes`` (training tokens per group).

    Raises:
        ValueError: when every size is zero.
    """
    total = float(sum(sizes.values()))
    if total <= 0:
        raise ValueError("natural proportions: every group is empty")
    return {g: s / total for g, s in sizes.items()}
