"""The transfer report: rank correlation with its interval, regret, a table and a scatter plot.

``OUTPUT/report/``: ``transfer.json`` (every figure and every mixture), ``transfer.md`` (the same
as a readable table) and ``proxy_vs_target.png`` (proxy loss against target-scale loss, one point
per mixture, the proxy's pick marked). With tracking on, the parent run gets the metrics
``spearman``, ``spearman_low``, ``spearman_high``, ``regret``, ``regret_relative`` and the report
directory as artifacts.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from synthdspy.transfer.config import TransferConfig
from synthdspy.transfer.run import Mixture, Scale
from synthdspy.transfer.stats import Interval, Regret, bootstrap_spearman, regret, spearman
from synthdspy.tuning.config import TuneConfig

KIND_STYLE = {"top": ("tab:blue", "o"), "baseline": ("tab:orange", "s"), "random": ("tab:gray", "^")}


@dataclass
class TransferSummary:
    """Everything the report shows: the mixtures (proxy order), Spearman's ``rho`` and its
    ``interval``, the proxy pick's ``regret``, the ``scale`` and the objective ``metric``."""

    name: str
    study: str
    metric: str
    scale: Scale
    mixtures: list[Mixture]
    rho: float
    interval: Interval
    regret: Regret
    paths: dict[str, str] = field(default_factory=dict)


def summarize(config: TransferConfig, tune: TuneConfig, mixtures: list[Mixture], scale: Scale) -> TransferSummary:
    """Rank statistics over the retrained ``mixtures`` (every one must have its ``target``).

    Raises:
        ValueError: fewer than 3 mixtures, or one without a target-scale result.
    """
    if any(m.target is None for m in mixtures):
        raise ValueError(f"unfinished retrainings: {[m.label for m in mixtures if m.target is None]}")
    ordered = sorted(mixtures, key=lambda m: m.proxy)
    x = [m.proxy for m in ordered]
    y = [float(m.target) for m in ordered]
    st = config.stats
    return TransferSummary(
        name=config.name, study=str(tune.out_dir), metric=tune.objective.metric, scale=scale, mixtures=ordered,
        rho=spearman(x, y), interval=bootstrap_spearman(x, y, st.bootstrap, st.confidence, config.seed),
        regret=regret(x, y),
    )


def _si(n: int) -> str:
    """``n`` with a k / M suffix (``20.6k``, ``1.03M``)."""
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k"


def plot(summary: TransferSummary, path: Path) -> str:
    """The proxy-vs-target scatter plot as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5.5))
    for kind, (color, marker) in KIND_STYLE.items():
        pts = [m for m in summary.mixtures if m.kind == kind]
        if pts:
            ax.scatter([m.proxy for m in pts], [m.target for m in pts], c=color, marker=marker, s=50, label=kind)
    for m in summary.mixtures:
        ax.annotate(m.label, (m.proxy, m.target), textcoords="offset points", xytext=(4, 4), fontsize=8)
    pick, best = summary.mixtures[summary.regret.pick], summary.mixtures[summary.regret.best]
    ax.scatter([pick.proxy], [pick.target], s=220, facecolors="none", edgecolors="red", label="proxy's pick")
    ax.axhline(best.target, color="green", lw=0.8, ls="--", label="best at target scale")
    iv = summary.interval
    s = summary.scale
    ax.set_title(f"{summary.name}: Spearman rho {summary.rho:.2f} [{iv.low:.2f}, {iv.high:.2f}], "
                 f"regret {summary.regret.regret:+.4f}\nproxy {_si(s.proxy_params)} params, "
                 f"{_si(s.proxy_tokens)} tokens -> target {_si(s.target_params)} params, "
                 f"{_si(s.target_tokens)} tokens", fontsize=10)
    ax.set_xlabel(f"proxy target loss ({summary.metric})")
    ax.set_ylabel(f"target-scale target loss ({summary.metric})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def markdown(summary: TransferSummary) -> str:
    """The report as Markdown: scale, statistics, and one table row per mixture (proxy order)."""
    s, iv, r = summary.scale, summary.interval, summary.regret
    ms = summary.mixtures
    target_rank = {id(m): k + 1 for k, m in enumerate(sorted(ms, key=lambda m: m.target))}
    lines = [
        f"# Proxy-to-target transfer: {summary.name}",
        "",
        f"Study: `{summary.study}`; loss: the study's objective in {summary.metric} (lower is better).",
        f"Proxy: {s.proxy_params:,} parameters, {s.proxy_tokens:,} tokens. Target: {s.target_params:,} "
        f"parameters ({s.param_ratio:.1f}x), {s.target_tokens:,} tokens ({s.token_ratio:.1f}x).",
        "",
        f"- Spearman's rho over {len(ms)} mixtures: **{summary.rho:.3f}**, {iv.confidence:.0%} bootstrap "
        f"interval [{iv.low:.3f}, {iv.high:.3f}] (percentile, {iv.n_valid} of {iv.n_resamples} resamples "
        "with a defined rho)",
        f"- Proxy's pick: {ms[r.pick].label}, target-scale rank {r.target_rank} of {len(ms)}; best at target "
        f"scale: {ms[r.best].label}; regret **{r.regret:+.4f}** {summary.metric} ({r.relative:+.2%})",
        "",
        "| mixture | kind | trial | proxy | target | proxy rank | target rank | weights |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for k, m in enumerate(ms):
        mix = " ".join(f"{g}={w:.2f}" for g, w in sorted(m.weights.items(), key=lambda kv: -kv[1]) if w >= 0.005)
        lines.append(f"| {m.label} | {m.kind} | {m.study} {m.trial} | {m.proxy:.4f} | {m.target:.4f} | {k + 1} | "
                     f"{target_rank[id(m)]} | {mix} |")
    return "\n".join(lines) + "\n"


def write_report(
    config: TransferConfig, summary: TransferSummary, parent_run_id: str | None, tracking_uri: str | None
) -> TransferSummary:
    """Write ``OUTPUT/report/`` and log the figures and the files to the MLflow parent run.

    Returns:
        ``summary`` with ``paths`` filled in.
    """
    out = config.out_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    summary.paths["plot"] = plot(summary, out / "proxy_vs_target.png")
    summary.paths["markdown"] = str(out / "transfer.md")
    summary.paths["json"] = str(out / "transfer.json")
    (out / "transfer.md").write_text(markdown(summary), encoding="utf-8")
    data = asdict(summary)
    data["scale"].update(param_ratio=summary.scale.param_ratio, token_ratio=summary.scale.token_ratio)
    (out / "transfer.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    if parent_run_id is not None:
        import mlflow

        from synthdspy import tracking

        mlflow.set_tracking_uri(tracking_uri)
        with mlflow.start_run(run_id=parent_run_id):
            tracking.log_metrics({
                "spearman": summary.rho, "spearman_low": summary.interval.low,
                "spearman_high": summary.interval.high, "regret": summary.regret.regret,
                "regret_relative": summary.regret.relative, "pick_target_rank": summary.regret.target_rank,
            })
            mlflow.log_artifacts(str(out), artifact_path="report")
    return summary
