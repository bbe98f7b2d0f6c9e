"""Compare compiled variants recorded in MLflow: a table and a quality-vs-diversity Pareto plot.

Diversity values are comparable only between runs that measured diversity the same way (the
``diversity_metric`` of each row, see :func:`synthdspy.metrics.objective.diversity_label`), so
Pareto fronts are computed, and drawn, per diversity metric.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class VariantRow:
    """One variant (or a baseline) measured on its held-out seed batches."""

    variant: str
    experiment: str
    optimizer: str
    score: float
    quality: float
    diversity: float
    pass_rate: float
    diversity_low: float | None
    diversity_high: float | None
    optimize_tokens: float
    optimize_cost_usd: float
    simulated: bool
    run_id: str
    diversity_metric: str = "?"

    def as_dict(self) -> dict:
        """The row as a plain dict."""
        return asdict(self)


def load_variants(tracking_uri: str, experiment: str | None = None) -> list[VariantRow]:
    """One row per variant in the store (optionally of one MLflow experiment), plus one baseline row
    per baseline configuration (tag ``baseline_hash``: everything but the optimizer settings), taken
    from the latest run of that configuration.

    A variant compiled again (same name, so same configuration) keeps the row of its first finished
    run: that run paid for the optimization, a re-run replays the cache for nothing.

    Raises:
        ValueError: ``experiment`` does not exist in the store.
    """
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    if experiment:
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            raise ValueError(f"no MLflow experiment named {experiment!r} in {tracking_uri}")
        ids = [exp.experiment_id]
    else:
        ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids, filter_string="tags.kind = 'compile'", order_by=["attributes.start_time DESC"])
    variants: dict[str, VariantRow] = {}
    baselines: dict[str, VariantRow] = {}
    for run in runs:
        m, t = run.data.metrics, run.data.tags
        if "compiled.score" not in m:
            continue  # an unfinished or failed compile
        exp_name = client.get_experiment(run.info.experiment_id).name

        def row(prefix: str, name: str, optimizer: str, m=m, t=t, run=run, exp_name=exp_name) -> VariantRow:
            return VariantRow(
                variant=name, experiment=exp_name, optimizer=optimizer, score=m.get(f"{prefix}.score", 0.0),
                quality=m.get(f"{prefix}.quality", 0.0), diversity=m.get(f"{prefix}.diversity", 0.0),
                pass_rate=m.get(f"{prefix}.pass_rate", 0.0), diversity_low=m.get(f"{prefix}.diversity_low"),
                diversity_high=m.get(f"{prefix}.diversity_high"),
                optimize_tokens=m.get("optimize.total.tokens", 0.0) if prefix == "compiled" else 0.0,
                optimize_cost_usd=m.get("optimize.total.cost_usd", 0.0) if prefix == "compiled" else 0.0,
                simulated=t.get("simulated") == "True", run_id=run.info.run_id,
                diversity_metric=t.get("diversity_metric", "?"),
            )

        name = t.get("variant", run.info.run_name)
        variants[name] = row("compiled", name, t.get("optimizer", "?"))  # newest first: the oldest run stays
        key = t.get("baseline_hash", run.info.run_id)
        baselines.setdefault(key, row("baseline", f"baseline ({exp_name} {key[:6]})", "none"))
    return list(baselines.values()) + list(variants.values())[::-1]


def pareto_front(rows: list[VariantRow]) -> list[VariantRow]:
    """Rows not dominated in (quality, diversity) by a row of the same diversity metric: no such row
    is at least as good in both and better in one. Sorted by diversity metric, then quality."""
    front = []
    for r in rows:
        dominated = any(
            o.diversity_metric == r.diversity_metric
            and o.quality >= r.quality and o.diversity >= r.diversity
            and (o.quality > r.quality or o.diversity > r.diversity)
            for o in rows
        )
        if not dominated:
            front.append(r)
    return sorted(front, key=lambda r: (r.diversity_metric, r.quality))


def pareto_plot(rows: list[VariantRow], path: str | Path) -> Path:
    """Scatter of quality (x) against diversity (y) with interval bars and the Pareto front; writes a PNG.

    Variant labels are placed so that none overlaps another (:func:`place_labels`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 5))
    metrics = sorted({r.diversity_metric for r in rows})
    colors = {m: f"C{i % 10}" for i, m in enumerate(metrics)}
    for r in rows:
        marker = "s" if r.optimizer == "none" else "o"
        yerr = None
        if r.diversity_low is not None and r.diversity_high is not None:
            yerr = [[max(0.0, r.diversity - r.diversity_low)], [max(0.0, r.diversity_high - r.diversity)]]
        ax.errorbar(r.quality, r.diversity, yerr=yerr, fmt=marker, capsize=3, color=colors[r.diversity_metric])
    front = pareto_front(rows)
    for m in metrics:
        part = [r for r in front if r.diversity_metric == m]
        ax.plot([r.quality for r in part], [r.diversity for r in part], "--", color=colors[m],
                label=f"Pareto front, diversity = {m}")
    ax.set_xlabel("quality (judge score, held-out batches)")
    ax.set_ylabel("diversity (held-out batches; squares: baselines)")
    title = "Variants: quality vs diversity"
    if any(r.simulated for r in rows):
        title += " (SIMULATED LM)"
    ax.set_title(title)
    ax.margins(0.15)  # room for the labels around the outermost points
    ax.legend(fontsize=7)
    fig.tight_layout()
    place_labels(ax, [(r.variant, (r.quality, r.diversity)) for r in rows])
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _label_offsets(width: float, height: float, gap: float = 4.0, rings: int = 14) -> list[tuple[float, float]]:
    """Candidate offsets (pixels) of a label's lower-left corner from its point, nearest first: beside
    the point on the right and on the left, above and below, then stacked one label height further
    out on each ring."""
    offsets = []
    for ring in range(rings):
        up = gap + ring * (height + 1)
        down = -height - gap - ring * (height + 1)
        for dx in (gap, -width - gap):
            offsets += [(dx, up), (dx, down)]
    return offsets


def place_labels(ax: Any, labels: list[tuple[str, tuple[float, float]]], fontsize: float = 7) -> list[Any]:
    """Annotate each point ``(text, (x, y))`` (data coordinates) so that no two labels overlap.

    Greedy, dependency-free placement: each label, in order, takes the first offset of
    :func:`_label_offsets` whose box stays inside the axes and clears every label placed before it,
    measured with the figure's renderer (call it after the layout is final, e.g. after
    ``tight_layout``). A label with no free spot inside the axes takes the spot of least overlap. A
    label moved away from its point gets a thin leader line to it.

    Returns:
        The ``matplotlib.text.Annotation`` objects, in the order of ``labels``.
    """
    from matplotlib.transforms import Bbox

    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    area = ax.get_window_extent(renderer)
    to_points = 72.0 / fig.dpi
    placed: list[Any] = []
    annotations = []
    for text, xy in labels:
        probe = ax.annotate(text, xy, fontsize=fontsize)
        box = probe.get_window_extent(renderer)
        probe.remove()
        x, y = ax.transData.transform(xy)
        best, best_cost = None, float("inf")
        for dx, dy in _label_offsets(box.width, box.height):
            candidate = Bbox.from_bounds(x + dx, y + dy, box.width, box.height)
            cost = sum(_overlap_area(candidate, other) for other in placed)
            if not (area.x0 <= candidate.x0 and candidate.x1 <= area.x1 and area.y0 <= candidate.y0
                    and candidate.y1 <= area.y1):
                cost += candidate.width * candidate.height  # outside the axes: a last resort
            if cost < best_cost:
                best, best_cost = (dx, dy, candidate), cost
            if cost == 0:
                break
        dx, dy, chosen = best
        near = abs(dy) <= box.height + 4.0 + 1e-6
        arrow = None if near else {"arrowstyle": "-", "lw": 0.4, "color": "0.5", "shrinkA": 0, "shrinkB": 2}
        annotations.append(ax.annotate(text, xy, textcoords="offset points", xytext=(dx * to_points, dy * to_points),
                                       ha="left", va="bottom", fontsize=fontsize, arrowprops=arrow))
        placed.append(chosen)
    return annotations


def _overlap_area(a: Any, b: Any) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return width * height if width > 0 and height > 0 else 0.0
