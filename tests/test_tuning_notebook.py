"""The mixture-and-curriculum notebook runs a tiny study, then reads it back from Optuna and MLflow."""

from __future__ import annotations

import json

from test_notebooks import execute, outputs_text
from tuning_helpers import tiny_path


def test_mixture_and_curriculum_notebook(tmp_path):
    out = tmp_path / "study"
    overrides = ["tracking.enabled=true", "baselines.uniform=true", "baselines.natural=true",
                 "baselines.random_trials=2"]
    nb = execute(
        "mixture_and_curriculum.ipynb",
        tmp_path,
        SYNTHDSPY_TUNE_EXPERIMENT=str(tiny_path(tmp_path)),
        SYNTHDSPY_TUNE_SET=json.dumps(overrides),
        SYNTHDSPY_NOTEBOOK_OUT=str(out),
    )
    assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))
    text = outputs_text(nb)
    assert "uniform" in text and "natural" in text and "random search" in text
    assert "7 nested trial runs" in text  # 3 tuned + 2 random + 2 baselines
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # comparison, schedules, search, importances
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert summary["best"]["label"] == "best tuned trial (tpe)"
