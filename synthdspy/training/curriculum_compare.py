"""Curriculum against no curriculum at equal tokens: every schedule family, several seeds, one table.

Each *arm* trains the proxy model of one training config (for example
``experiments/train_mixture.toml``) with one curriculum schedule: ``none`` (stages weighted by
their share of the data throughout), ``strict``, ``gradual``, ``linear``, ``root`` and
``fixed_exponential`` (see :mod:`synthdspy.training.curriculum`). An arm whose family is the config's own
schedule keeps the config's parameters; the others take the schema's defaults. Every arm and seed
trains on the same token budget with the same validation splits (they depend on
``validation.seed``, not on the schedule); seed ``i`` of every arm uses training seed
``config.seed + i``, so arms are compared on paired seeds.

The target is the unweighted mean bits per byte over the ``val/*`` splits; per-stage losses are
the ``stage/*`` splits. For each run, the tokens needed to reach the no-curriculum arm's mean final
target are read off its evaluation curve by linear interpolation (:func:`tokens_to_reach`).
Outputs: ``compare.md`` (the table), ``compare.json`` (every run, its curve and the summary) and
``compare.png`` (target curves and final targets).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from synthdspy.configio import ConfigError
from synthdspy.training.config import TrainConfig
from synthdspy.training.curriculum import ScheduleSpec
from synthdspy.training.workers import run_all, threads_per_worker

FAMILIES = ("strict", "gradual", "linear", "root", "fixed_exponential")
ARMS = ("none", *FAMILIES)


@dataclass
class ArmRun:
    """One finished training: its arm, seed index, budget, final target and per-stage bits per byte,
    and its curve of ``(tokens, target)`` at every evaluation."""

    arm: str
    seed: int
    steps: int
    tokens: int
    target: float
    stages: dict[str, float]
    curve: list[tuple[int, float]]
    elapsed_s: float


def target_of(losses: Mapping[str, Any]) -> float:
    """Unweighted mean ``bits_per_byte`` over the ``val/*`` splits of one evaluation.

    Raises:
        ConfigError: no ``val/*`` split.
    """
    values = [v.bits_per_byte for k, v in losses.items() if k.startswith("val/")]
    if not values:
        raise ConfigError(f"no val/* split to score (have {sorted(losses)})")
    return sum(values) / len(values)


def tokens_to_reach(curve: Sequence[tuple[float, float]], level: float) -> float | None:
    """Tokens at which a loss curve first reaches ``level``, interpolated linearly; None if never.

    Args:
        curve: ``(tokens, loss)`` points in training order.
        level: the loss to reach.

    Returns:
        ``t_{i-1} + (l_{i-1} - level) / (l_{i-1} - l_i) * (t_i - t_{i-1})`` for the first point
        ``i`` with ``l_i <= level`` (``t_0`` when the first point already reaches it).
    """
    for i, (t, loss) in enumerate(curve):
        if loss <= level:
            if i == 0:
                return float(t)
            t0, l0 = curve[i - 1]
            return t0 + (l0 - level) / (l0 - loss) * (t - t0)
    return None


def schedule_for(base: TrainConfig, arm: str) -> Any:
    """The ``[curriculum.schedule]`` of ``arm`` (None for ``none``) on ``base``'s stages.

    Raises:
        ConfigError: ``base`` has no ``[curriculum]``, or ``arm`` is not one of :data:`ARMS`.
    """
    if base.curriculum is None:
        raise ConfigError("curriculum-compare: the training config needs a [curriculum] section (stages)")
    if arm not in ARMS:
        raise ConfigError(f"curriculum-compare: unknown arm {arm!r} (have {list(ARMS)})")
    own = base.curriculum.schedule
    if arm == "none":
        return None
    if own is not None and own.kind == arm:
        return own
    n = len(base.curriculum.stages)
    spec: dict[str, Any] = {"kind": arm}
    if arm == "strict" and n != 3:
        spec["fractions"] = [1 / n] * n
    if arm == "gradual" and n != 3:
        spec["starts"] = [0.5 * k / max(n - 1, 1) for k in range(n)]
    return TypeAdapter(ScheduleSpec).validate_python(spec)


def arm_configs(base: TrainConfig, seeds: int, out: Path, arms: Sequence[str] = ARMS,
                workers: int = 1) -> list[tuple[str, int, TrainConfig]]:
    """``(arm, seed index, config)`` for every arm and seed: same budget and validation, output under
    ``out/runs/<arm>/seed<i>``, MLflow off, ``trainer.threads`` set for ``workers`` processes."""
    threads = threads_per_worker(workers) or base.trainer.threads
    out_list = []
    for arm in arms:
        schedule = schedule_for(base, arm)  # raises ConfigError without a [curriculum]
        curriculum = base.curriculum.model_copy(update={"schedule": schedule})
        for i in range(seeds):
            cfg = base.model_copy(update={
                "name": f"{base.name}-{arm}-seed{i}",
                "seed": base.seed + i,
                "output": base.output.model_copy(update={"dir": out / "runs" / arm / f"seed{i}"}),
                "curriculum": curriculum,
                "tracking": base.tracking.model_copy(update={"enabled": False}),
                "trainer": base.trainer.model_copy(update={"threads": threads}),
            })
            out_list.append((arm, i, cfg))
    return out_list


def train_arm(job: tuple[str, int, TrainConfig]) -> ArmRun:
    """Train one arm for one seed (module level: runs in worker processes)."""
    from synthdspy.training.api import train

    arm, seed, cfg = job
    result = train(cfg)
    stages = {k.removeprefix("stage/"): v.bits_per_byte for k, v in result.losses.items() if k.startswith("stage/")}
    curve = [(ev.tokens, target_of(ev.losses)) for ev in result.curves]
    return ArmRun(arm, seed, result.steps, result.tokens, target_of(result.losses), stages, curve, result.elapsed_s)


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(runs: Sequence[ArmRun], arms: Sequence[str] = ARMS) -> dict[str, Any]:
    """Per arm: target and per-stage mean and std over seeds, and tokens to reach the ``none`` arm's
    mean final target (mean and std over the seeds that reach it, and how many do).

    Raises:
        ConfigError: no run of the ``none`` arm.
    """
    base = [r.target for r in runs if r.arm == "none"]
    if not base:
        raise ConfigError("curriculum-compare: the 'none' arm is needed as the reference")
    level = statistics.fmean(base)
    out: dict[str, Any] = {"reference": level, "arms": {}}
    for arm in arms:
        mine = [r for r in runs if r.arm == arm]
        reach = [tokens_to_reach(r.curve, level) for r in mine]
        hit = [t for t in reach if t is not None]
        stages = {s: _mean_std([r.stages[s] for r in mine]) for s in (mine[0].stages if mine else {})}
        out["arms"][arm] = {
            "seeds": len(mine),
            "tokens": sorted({r.tokens for r in mine}),
            "target": _mean_std([r.target for r in mine]),
            "stages": stages,
            "tokens_to_reach": reach,
            "reach": _mean_std(hit),
            "reached": len(hit),
        }
    return out


def _fmt(pair: tuple[float | None, float | None], digits: int = 4) -> str:
    mean, std = pair
    return "-" if mean is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown_table(summary: Mapping[str, Any]) -> str:
    """The summary as a Markdown table, one row per arm."""
    arms = summary["arms"]
    stages = next((list(a["stages"]) for a in arms.values() if a["stages"]), [])
    head = ["schedule", "target bpb (val/* mean)", *[f"stage/{s} bpb" for s in stages],
            "tokens to reach none's final", "reached", "tokens trained"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for arm, a in arms.items():
        mean, std = a["reach"]
        reach = "-" if mean is None else f"{mean / 1e3:,.0f}k ± {std / 1e3:,.0f}k"
        tokens = ", ".join(f"{t:,}" for t in a["tokens"])
        cells = [arm, _fmt(a["target"]), *[_fmt(a["stages"][s]) for s in stages], reach,
                 f"{a['reached']}/{a['seeds']}", tokens]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\nReference (none's mean final target): {summary['reference']:.4f} bits/byte.\n"


def plot(runs: Sequence[ArmRun], summary: Mapping[str, Any], path: Path) -> Path:
    """Mean target curve per arm (evaluation points every arm shares) and the final targets (mean ± std)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    arms = list(summary["arms"])
    for arm in arms:
        curves = [dict(r.curve) for r in runs if r.arm == arm]
        shared = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
        left.plot(shared, [statistics.fmean(c[t] for c in curves) for t in shared], marker=".", label=arm)
    left.axhline(summary["reference"], color="grey", linestyle="--", linewidth=1, label="none: final")
    left.set(xlabel="training tokens", ylabel="target: mean val/* bits per byte",
             title="Evaluation curves (mean over seeds)")
    finals = [summary["arms"][a]["target"] for a in arms]
    right.bar(arms, [m for m, _ in finals], yerr=[s for _, s in finals], capsize=4, color="tab:blue")
    low = min(m - s for m, s in finals)
    right.set_ylim(low - 0.02, max(m + s for m, s in finals) + 0.02)
    right.set(ylabel="final target bits per byte", title="Final target (mean ± std over seeds)")
    right.tick_params(axis="x", rotation=30)
    left.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def compare(base: TrainConfig, seeds: int, out: str | Path, workers: int = 1, arms: Sequence[str] = ARMS,
            on_run: Callable[[ArmRun], None] | None = None) -> dict[str, Any]:
    """Train every arm for ``seeds`` seeds and write ``compare.md``, ``compare.json``, ``compare.png``.

    Args:
        base: the training config; its ``[curriculum]`` gives the stages and difficulty.
        seeds: seeds per arm (at least 1; use 3 or more for a standard deviation worth reading).
        out: the output directory.
        workers: processes training in parallel (see :mod:`synthdspy.training.workers`).
        arms: the arms to train; must include ``none``.
        on_run: called in this process as each run finishes.

    Returns:
        The summary of :func:`summarise` plus ``runs`` (every :class:`ArmRun` as a dict) and ``paths``.

    Raises:
        ConfigError: no ``[curriculum]``, an unknown arm, ``none`` missing, or ``seeds < 1``.
    """
    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    if "none" not in arms:
        raise ConfigError("curriculum-compare: the arms must include 'none' (the reference)")
    out = Path(out)
    jobs = arm_configs(base, seeds, out, arms, workers)
    runs: list[ArmRun | None] = [None] * len(jobs)
    for i, run in run_all(train_arm, jobs, workers):
        runs[i] = run
        if on_run is not None:
            on_run(run)
    done = [r for r in runs if r is not None]
    summary = summarise(done, arms)
    paths = {"table": out / "compare.md", "json": out / "compare.json", "plot": out / "compare.png"}
    paths["table"].write_text(markdown_table(summary), encoding="utf-8")
    plot(done, summary, paths["plot"])
    summary = {**summary, "runs": [asdict(r) for r in done], "paths": {k: str(v) for k, v in paths.items()}}
    paths["json"].write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary
