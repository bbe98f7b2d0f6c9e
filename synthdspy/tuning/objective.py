"""The objective: train a proxy model on a trial's plan and score its validation losses.

A trial's score is the weighted mean of its final split losses (``objective.target``), optionally
with the worst split's loss as a second objective. Intermediate evaluations report the same
score to Optuna's pruner; a pruned trial raises :class:`optuna.TrialPruned` from the training
callback, which aborts the proxy training.

Each trial records, as Optuna user attributes: ``weights``, ``schedule``, ``losses`` (final loss
per split), ``target``, ``worst``, ``worker``, ``host`` (hostname:pid), ``steps``, ``tokens``,
``elapsed_s``, and its intermediate ``curve`` (step, target) pairs; and, when tracking is on, a
nested MLflow run under the study's parent run with the parameters, per-split curves and final
losses.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from synthdspy import tracking
from synthdspy.configio import ConfigError
from synthdspy.training.config import TrackingSpec
from synthdspy.training.trainer import EvalEvent, SplitLoss
from synthdspy.tuning.config import ObjectiveSpec, TuneConfig
from synthdspy.tuning.space import TrialPlan, apply_plan, suggest_plan

MLFLOW_KEY = re.compile(r"[^A-Za-z0-9_\-. /:]")


def mlflow_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Flatten ``params`` for MLflow: keys with characters MLflow rejects (``*`` of split patterns)
    get ``_`` instead, values are cut at MLflow's 6000 characters."""
    return {MLFLOW_KEY.sub("_", k): str(v)[:6000] for k, v in tracking.flatten(params).items()}


def split_weights(patterns: Mapping[str, float], names: Sequence[str]) -> dict[str, float]:
    """Weight of each split in ``names``: that of the first pattern (fnmatch) it matches.

    Raises:
        ConfigError: a pattern that matches no split, or no split with a positive weight.
    """
    out: dict[str, float] = {}
    for pattern, w in patterns.items():
        hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            raise ConfigError(f"objective: {pattern!r} matches no validation split (have {list(names)})")
        for n in hits:
            out.setdefault(n, w)
    if sum(out.values()) <= 0:
        raise ConfigError("objective.target: every matched split has weight 0")
    return out


def worst_splits(patterns: Sequence[str], names: Sequence[str]) -> list[str]:
    """Splits matched by any of ``patterns``.

    Raises:
        ConfigError: when a pattern matches no split.
    """
    out = []
    for pattern in patterns:
        hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            raise ConfigError(f"objective.worst_over: {pattern!r} matches no split (have {list(names)})")
        out.extend(h for h in hits if h not in out)
    return out


def score(losses: Mapping[str, SplitLoss], spec: ObjectiveSpec) -> tuple[float, float]:
    """``(target, worst)`` of one evaluation: the weighted mean of ``spec.metric`` over the target
    splits, and its maximum over the ``worst_over`` splits."""
    names = list(losses)
    weights = split_weights(spec.target, names)
    values = {n: getattr(v, spec.metric) for n, v in losses.items()}
    target = sum(w * values[n] for n, w in weights.items()) / sum(weights.values())
    worst = max(values[n] for n in worst_splits(spec.worst_over, names))
    return target, worst


@dataclass
class TrialContext:
    """What a worker needs to run trials of one study.

    ``kind``: ``tuned``, ``random`` or ``baselines`` (fixed weights from the trial's user
    attributes). ``worker``: the worker's index (recorded on each trial). ``parent_run_id``: the
    MLflow parent run (None: no tracking).
    """

    config: TuneConfig
    kind: str
    worker: int = 0
    parent_run_id: str | None = None
    tracking_uri: str | None = None

    @property
    def prunes(self) -> bool:
        """Whether intermediate values are reported to the pruner."""
        return self.kind != "baselines" and self.config.pruner != "none"


def plan_of(trial: optuna.Trial, ctx: TrialContext) -> TrialPlan:
    """The trial's plan: suggested, or the fixed ``weights`` of an enqueued baseline."""
    if ctx.kind == "baselines":
        return TrialPlan(weights=dict(trial.user_attrs["weights"]), schedule={"kind": "base"})
    stages = ctx.config.train.curriculum.stages if ctx.config.train.curriculum else []
    return suggest_plan(trial, ctx.config.search, stages)


@contextlib.contextmanager
def _trial_run(trial: optuna.Trial, ctx: TrialContext, plan: TrialPlan) -> Iterator[Any]:
    """A nested MLflow run for the trial (or nothing when tracking is off)."""
    if ctx.parent_run_id is None:
        yield None
        return
    import mlflow

    tags = {"kind": "tune-trial", "study": ctx.kind, "trial": str(trial.number)}
    if "baseline" in trial.user_attrs:
        tags["baseline"] = trial.user_attrs["baseline"]
    name = f"{ctx.kind}-{trial.number:04d}"
    with mlflow.start_run(run_name=name, parent_run_id=ctx.parent_run_id, tags=tags) as active:
        params = {"weights": plan.weights, "schedule": plan.schedule, "optuna": trial.params}
        mlflow.log_params(mlflow_params(params))
        yield active


def run_trial(trial: optuna.Trial, ctx: TrialContext) -> float | tuple[float, float]:
    """Train the trial's plan for the experiment's token budget and return its objective value(s).

    Raises:
        optuna.TrialPruned: when the pruner stops the trial at an intermediate evaluation.
        synthdspy.configio.ConfigError: unreadable sources or objective patterns matching no split.
    """
    from synthdspy.training.api import train

    cfg = ctx.config
    plan = plan_of(trial, ctx)
    trial.set_user_attr("weights", plan.weights)
    trial.set_user_attr("schedule", plan.schedule)
    trial.set_user_attr("worker", ctx.worker)
    trial.set_user_attr("host", f"{socket.gethostname()}:{os.getpid()}")
    out = Path(cfg.out_dir) / "trials" / ctx.kind / f"{trial.number:04d}"
    train_cfg = apply_plan(cfg.train, plan).model_copy(
        update={
            "name": f"{cfg.name}-{ctx.kind}-{trial.number}",
            "output": cfg.train.output.model_copy(update={"dir": out}),
            "tracking": TrackingSpec(enabled=False),
        }
    )
    curve: list[tuple[int, float]] = []

    def on_eval(event: EvalEvent) -> None:
        target, worst = score(event.losses, cfg.objective)
        curve.append((event.step, target))
        if ctx.parent_run_id is not None:
            metrics = {f"{k}/{cfg.objective.metric}": getattr(v, cfg.objective.metric) for k, v in event.losses.items()}
            tracking.log_metrics({**metrics, "target": target, "worst": worst}, step=event.step)
        if ctx.prunes and event.reason != "final":
            trial.report(target, event.step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {event.step} with target {target:.4f}")

    with _trial_run(trial, ctx, plan) as active:
        try:
            result = train(train_cfg, on_eval=on_eval)
        except optuna.TrialPruned:
            trial.set_user_attr("curve", curve)
            if active is not None:
                import mlflow

                mlflow.set_tag("state", "PRUNED")
            raise
        finally:
            (out / "checkpoint.pt").unlink(missing_ok=True)
        target, worst = score(result.losses, cfg.objective)
        losses = {k: getattr(v, cfg.objective.metric) for k, v in result.losses.items()}
        for key, value in {
            "losses": losses,
            "target": target,
            "worst": worst,
            "steps": result.steps,
            "tokens": result.tokens,
            "elapsed_s": result.elapsed_s,
            "curve": curve,
        }.items():
            trial.set_user_attr(key, value)
        if active is not None:
            import mlflow

            mlflow.set_tag("state", "COMPLETE")
            tracking.log_metrics({"final/target": target, "final/worst": worst, "elapsed_s": result.elapsed_s})
    return (target, worst) if cfg.objective.multi else target
