"""`synthdspy compare`: variants from MLflow, one row per variant, Pareto fronts per diversity metric."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from synthdspy.cli import app
from synthdspy.compare import VariantRow, load_variants, pareto_front
from synthdspy.config import ObjectiveConfig
from synthdspy.metrics.objective import diversity_label


def row(name: str, quality: float, diversity: float, metric: str) -> VariantRow:
    return VariantRow(variant=name, experiment="e", optimizer="gepa", score=0.0, quality=quality, diversity=diversity,
                      pass_rate=1.0, diversity_low=None, diversity_high=None, optimize_tokens=0.0,
                      optimize_cost_usd=0.0, simulated=True, run_id=name, diversity_metric=metric)


def test_rows_measured_with_another_diversity_metric_do_not_dominate():
    lexical = [row("a", 0.5, 0.9, "lexical on text"), row("b", 0.4, 0.5, "lexical on text")]
    cluster = [row("c", 0.45, 0.3, "cluster_agent on text")]
    front = pareto_front(lexical + cluster)
    assert [r.variant for r in front] == ["c", "a"]  # c is lower than a in both, but not comparable to it


@pytest.mark.parametrize(("cfg", "label"), [
    ({}, "lexical on text"),
    ({"diversity_metrics": {"cluster_agent": 1.0}, "diversity_field": "response"}, "cluster_agent on response"),
    ({"diversity_metrics": {"lexical": 0.5, "cluster_agent": 1.0, "embedding": 0.0}},
     "0.5 lexical + 1 cluster_agent on text"),
    ({"diversity": 0.0}, "none"),
])
def test_diversity_label_names_what_was_measured(cfg, label):
    assert diversity_label(ObjectiveConfig(**{"diversity": 1.0, **cfg})) == label


def _log_compile(variant: str, tokens: float, metric: str) -> None:
    import mlflow

    tags = {"kind": "compile", "variant": variant, "optimizer": "mipro", "baseline_hash": "b" * 10,
            "simulated": "True", "diversity_metric": metric}
    with mlflow.start_run(run_name=variant, tags=tags):
        mlflow.log_metrics({"compiled.score": 0.6, "compiled.quality": 0.7, "compiled.diversity": 0.4,
                            "baseline.score": 0.5, "baseline.quality": 0.6, "baseline.diversity": 0.3,
                            "optimize.total.tokens": tokens})
    time.sleep(0.01)  # distinct start times


def test_a_recompiled_variant_is_listed_once_with_the_cost_of_its_first_run(tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("cmp")
    _log_compile("v-mipro", 1234.0, "lexical on text")
    _log_compile("v-mipro", 0.0, "lexical on text")  # the same compile again: the cache answers
    _log_compile("v-gepa", 99.0, "cluster_agent on text")
    rows = load_variants(uri)
    assert [r.variant for r in rows if r.optimizer != "none"] == ["v-mipro", "v-gepa"]
    assert next(r for r in rows if r.variant == "v-mipro").optimize_tokens == 1234.0
    assert [r.diversity_metric for r in rows if r.optimizer == "none"] == ["cluster_agent on text"]

    result = CliRunner().invoke(app, ["compare", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "diversity metric" in result.output and "cluster_agent on text" in result.output
    assert result.output.count("v-mipro") == 1
    assert (tmp_path / "pareto.png").stat().st_size > 5000


def test_pareto_labels_do_not_overlap_in_a_crowded_plot(tmp_path, monkeypatch):
    """Twelve variants within 0.01 of each other and one far away: every label's box (from the figure's
    renderer) is clear of every other label's box in the saved figure."""
    from matplotlib.figure import Figure
    from matplotlib.text import Annotation, Text

    from synthdspy.compare import pareto_plot

    boxes = []
    save = Figure.savefig

    def spy(self, path, *args, **kwargs):
        renderer = self.canvas.get_renderer()
        self.canvas.draw()
        # the text's own box (Annotation.get_window_extent would add the leader line's)
        boxes.extend(Text.get_window_extent(t, renderer) for t in self.axes[0].texts if isinstance(t, Annotation))
        save(self, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    rows = [row(f"qa-variant-{i}", 0.80 + 0.002 * (i % 4), 0.50 + 0.003 * (i // 4), "lexical on text")
            for i in range(12)] + [row("baseline", 0.2, 0.1, "lexical on text")]
    pareto_plot(rows, tmp_path / "pareto.png")
    assert len(boxes) == 13
    overlaps = [(i, j) for i in range(13) for j in range(i + 1, 13) if boxes[i].overlaps(boxes[j])]
    assert overlaps == []
