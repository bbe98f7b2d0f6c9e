"""The bar charts of ``synthdspy diversity``: one PNG per metric comparing the inputs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from synthdspy.metrics.diversity.names import LLM_METRIC, direction_text

if TYPE_CHECKING:
    from synthdspy.metrics.diversity.report import DiversityReport


def chart_title(metric: str, simulated: bool) -> str:
    """``metric (its direction)``, with ``SIMULATED LM`` for the cluster-agent's chart when its LM was
    the offline simulator (as the ``compare`` Pareto plot says); offline metrics never say it, they do
    not come from the LM."""
    title = f"{metric} ({direction_text(metric)})"
    return f"{title} (SIMULATED LM)" if simulated and metric == LLM_METRIC else title


def plot_metrics(report: DiversityReport, directory: Path) -> list[Path]:
    """One bar chart PNG per metric comparing the inputs (error bars for the LLM cluster score).

    Returns:
        The written paths, ``directory/<metric>.png``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    names = [i.name for i in report.inputs]
    for metric in report.metrics:
        values = [i.metrics.get(metric) for i in report.inputs]
        if all(v is None for v in values):
            continue
        errors = None
        if metric == LLM_METRIC:
            errors = [((i.cluster_agent or {}).get("interval") or {}).get("half_width", 0.0)
                      for i in report.inputs]
        fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(names) + 2), 4))
        ax.bar(range(len(names)), [v if v is not None else 0.0 for v in values], yerr=errors, capsize=4,
               color="#4C72B0")
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
        ax.set_title(chart_title(metric, report.simulated), fontsize=10)
        fig.tight_layout()
        path = directory / f"{metric}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
