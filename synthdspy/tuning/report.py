"""The tuning report: the best mixture against the baselines, regrets, plots and MLflow artifacts.

Regret of a baseline = its target loss minus the tuner's best target loss (positive: the tuner
found a better mixture; the same token budget per trial throughout). With two objectives the
tuner's best trial is the Pareto-optimal trial with the lowest target loss. It is labelled "best
tuned trial": a baseline can beat it, and :func:`verdict` then says which one and by how much.
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

MAX_PARALLEL_PARAMS = 6  # axes of the parallel-coordinate plot besides the target: more are unreadable


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
    """The outcome of a study: ``best`` (the tuner's best trial), every compared ``rows`` (best
    first), the Pareto front (multi-objective only), trial counts per study kind, ``verdict`` (see
    :func:`verdict`) and the artifact paths."""

    best: Row
    rows: list[Row]
    pareto: list[Row]
    counts: dict[str, dict[str, int]]
    elapsed_s: float
    paths: dict[str, str] = field(default_factory=dict)
    verdict: str = ""


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
    best = _row(f"best tuned trial ({config.study.sampler})", "tuned", best_trial, None)
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
    summary = TuneSummary(best=best, rows=rows, pareto=pareto, counts=counts, elapsed_s=elapsed_s)
    summary.verdict = verdict(summary, config.objective.metric)
    return summary


def verdict(summary: TuneSummary, metric: str) -> str:
    """One line saying whether the tuner won: ``"baseline natural beat the best tuned trial by 0.0500
    bits_per_byte (target 1.2000 against 1.2500)"`` when a baseline or the random search reached a
    lower target (the lowest one is named), else ``"the best tuned trial beat every baseline and the
    random search (by at least 0.0100 bits_per_byte)"``."""
    others = summary.rows[1:]
    if not others:
        return "no baseline or random search to compare the best tuned trial with"
    winner = min(others, key=lambda r: r.target)
    if winner.regret < 0:
        name = f"baseline {winner.label}" if winner.kind == "baselines" else winner.label
        return (f"{name} beat the best tuned trial by {-winner.regret:.4f} {metric} "
                f"(target {winner.target:.4f} against {summary.best.target:.4f})")
    beaten = [w for w, kind in (("every baseline", "baselines"), ("the random search", "random"))
              if any(r.kind == kind for r in others)]
    return f"the best tuned trial beat {' and '.join(beaten)} (by at least {winner.regret:.4f} {metric})"


def _save(ax: Any, path: Path) -> str:
    import matplotlib.pyplot as plt
    import numpy as np

    fig = np.ravel(ax)[0].figure
    fig.set_size_inches(9, 5.5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def _most_important(study: optuna.Study, target: Any, params: list[str], top: int) -> list[str]:
    """The ``top`` parameters of ``params`` ranked by fANOVA importance (Hutter et al. 2014, as
    Optuna's :func:`optuna.importance.get_param_importances` computes it, seed 0); parameters it
    cannot rank (conditional ones, or too few trials) follow in name order."""
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    try:
        ranked = list(get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0), target=target))
    except (ValueError, RuntimeError, ZeroDivisionError):
        ranked = []
    return (ranked + [p for p in params if p not in ranked])[:top]


def parallel_coordinate(study: optuna.Study, target: Any, target_name: str, top: int = MAX_PARALLEL_PARAMS) -> Any:
    """Optuna's parallel-coordinate plot (matplotlib Axes) of the target and at most ``top``
    parameters, the most important ones (:func:`_most_important`) when the study has more; the
    title then says how many of how many are shown."""
    from optuna.visualization import matplotlib as ovm

    params = sorted({p for t in _complete(study) for p in t.params})
    shown = _most_important(study, target, params, top) if len(params) > top else params
    ax = ovm.plot_parallel_coordinate(study, params=shown, target=target, target_name=target_name)
    if len(shown) < len(params):
        ax.set_title(f"Parallel coordinates: the {len(shown)} of {len(params)} parameters most important "
                     f"to the {target_name}", y=1.03)
    return ax


def plot_study(config: TuneConfig, study: optuna.Study, out: Path) -> dict[str, str]:
    """Optuna's matplotlib plots of the tuner as PNG files in ``out``: optimization history,
    parameter importances, parallel coordinates (at most :data:`MAX_PARALLEL_PARAMS` parameters,
    see :func:`parallel_coordinate`), and the Pareto front with two objectives.

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
        "parallel_coordinate": lambda: parallel_coordinate(study, target, name),
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
