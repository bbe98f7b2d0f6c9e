"""The tuning report: the best mixture against the baselines, regrets, plots and MLflow artifacts.

Regret of a baseline = its target loss minus the tuner's best target loss (positive: the tuner
found a better mixture; the same token budget per trial throughout). With two objectives the
tuner's "best" is the Pareto-optimal trial with the lowest target loss.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from synthdspy.tuning.config import TuneConfig
from synthdspy.tuning.space import TrialPlan, apply_plan


@dataclass
class Row:
    """One line of the comparison: a trial's target and worst-split loss, its regret and its plan."""

    label: str
    kind: str
    number: int
    target: float
    worst: float
    regret: float
    weights: dict[str, float]
    schedule: dict[str, Any]


@dataclass
class TuneSummary:
    """The outcome of a study: ``best`` (the tuner's), every compared ``rows`` (best first), the
    Pareto front (multi-objective only), trial counts per study kind, and the artifact paths."""

    best: Row
    rows: list[Row]
    pareto: list[Row]
    counts: dict[str, dict[str, int]]
    elapsed_s: float
    paths: dict[str, str] = field(default_factory=dict)


def _row(label: str, kind: str, t: FrozenTrial, best: float | None) -> Row:
    target = float(t.user_attrs["target"])
    return Row(
        label=label,
        kind=kind,
        number=t.number,
        target=target,
        worst=float(t.user_attrs["worst"]),
        regret=0.0 if best is None else target - best,
        weights=dict(t.user_attrs["weights"]),
        schedule=dict(t.user_attrs["schedule"]),
    )


def _complete(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def summarize(config: TuneConfig, studies: dict[str, optuna.Study], elapsed_s: float) -> TuneSummary:
    """Compare the tuner's best trial with the fixed baselines and the best random-search trial.

    Raises:
        RuntimeError: when the tuner has no complete trial.
    """
    tuned = studies["tuned"]
    if not _complete(tuned):
        raise RuntimeError(f"study {tuned.study_name!r} has no complete trial")
    front = tuned.best_trials
    best_trial = min(front, key=lambda t: t.user_attrs["target"])
    best = _row(f"best ({config.study.sampler})", "tuned", best_trial, None)
    rows = [best]
    for t in sorted(_complete(studies["baselines"]), key=lambda t: t.number):
        rows.append(_row(t.user_attrs["baseline"], "baselines", t, best.target))
    random = _complete(studies["random"])
    if random:
        pick = min(random, key=lambda t: t.user_attrs["target"])
        rows.append(_row("random search", "random", pick, best.target))
    pareto = [_row("pareto", "tuned", t, best.target) for t in front] if config.objective.multi else []
    counts = {
        kind: {s.name.lower(): sum(t.state == s for t in study.get_trials(deepcopy=False)) for s in TrialState}
        for kind, study in studies.items()
    }
    return TuneSummary(best=best, rows=rows, pareto=pareto, counts=counts, elapsed_s=elapsed_s)


def _save(ax: Any, path: Path) -> str:
    import matplotlib.pyplot as plt
    import numpy as np

    fig = np.ravel(ax)[0].figure
    fig.set_size_inches(9, 5.5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def plot_study(config: TuneConfig, study: optuna.Study, out: Path) -> dict[str, str]:
    """Optuna's matplotlib plots of the tuner as PNG files in ``out``: optimization history,
    parameter importances, parallel coordinates, and the Pareto front with two objectives.

    A plot Optuna cannot draw (too few complete trials for importances) is skipped.
    """
    from optuna.visualization import matplotlib as ovm

    out.mkdir(parents=True, exist_ok=True)
    multi = config.objective.multi
    target = (lambda t: t.values[0]) if multi else None
    name = "target"
    jobs = {
        "optimization_history": lambda: ovm.plot_optimization_history(study, target=target, target_name=name),
        "param_importances": lambda: ovm.plot_param_importances(study, target=target, target_name=name),
        "parallel_coordinate": lambda: ovm.plot_parallel_coordinate(study, target=target, target_name=name),
    }
    if multi:
        jobs["pareto_front"] = lambda: ovm.plot_pareto_front(study, target_names=["target", "worst split"])
    paths = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning on every matplotlib plot
        for key, make in jobs.items():
            try:
                paths[key] = _save(make(), out / f"{key}.png")
            except (ValueError, RuntimeError, ZeroDivisionError):
                continue
    return paths


def write_report(
    config: TuneConfig,
    studies: dict[str, optuna.Study],
    summary: TuneSummary,
    parent_run_id: str | None,
    tracking_uri: str | None,
) -> TuneSummary:
    """Write ``OUTPUT/report/`` (summary.json, best_config.json, plots/*.png) and log it to MLflow.

    ``best_config.json`` holds the best plan and the whole training config it implies, ready for a
    larger run. Metrics on the parent run: ``best/target``, ``best/worst`` and ``regret/<label>``.

    Returns:
        ``summary`` with ``paths`` filled in.
    """
    out = config.out_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    summary.paths.update(plot_study(config, studies["tuned"], out / "plots"))
    plan = TrialPlan(weights=summary.best.weights, schedule=summary.best.schedule)
    best = {
        "trial": summary.best.number,
        "target": summary.best.target,
        "worst": summary.best.worst,
        "weights": plan.weights,
        "schedule": plan.schedule,
        "train": apply_plan(config.train, plan).model_dump(mode="json"),
    }
    (out / "best_config.json").write_text(json.dumps(best, indent=2), encoding="utf-8")
    summary.paths["best_config"] = str(out / "best_config.json")
    summary.paths["summary"] = str(out / "summary.json")
    (out / "summary.json").write_text(json.dumps(asdict(summary), indent=2), encoding="utf-8")
    if parent_run_id is not None:
        import mlflow

        from synthdspy import tracking

        mlflow.set_tracking_uri(tracking_uri)
        with mlflow.start_run(run_id=parent_run_id):
            metrics = {"best/target": summary.best.target, "best/worst": summary.best.worst}
            metrics.update({f"regret/{r.label.replace(' ', '_')}": r.regret for r in summary.rows[1:]})
            tracking.log_metrics(metrics)
            mlflow.log_artifacts(str(out), artifact_path="report")
    return summary
