"""Model-collapse experiment (replace vs accumulate) on a tiny budget: the pipeline, not the finding.

The models here train for a few steps, so their losses say nothing about collapse; the tests check
what each generation trains on, that every model gets the same steps, and the outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synthdspy.cli import app
from synthdspy.training.collapse import (
    GenerationResult,
    load_collapse_config,
    markdown_table,
    run_collapse,
    summarise,
)

EXPERIMENT = Path(__file__).resolve().parent.parent / "experiments" / "model_collapse.toml"
pytestmark = pytest.mark.usefixtures("needs_shared_data")
TINY = [
    "real.train_chars=6000", "real.chunk_chars=31", "generations=3", "workers=1", "seeds=[0, 1]",
    "train.model.n_layer=1", "train.model.n_head=2", "train.model.n_embd=32", "train.model.block_size=32",
    "train.trainer.max_steps=12", "train.trainer.eval_interval=12", "train.trainer.eval_windows=16",
    "train.trainer.batch_size=8", "train.trainer.threads=1", "sampling.batch_size=64",
]


def test_generations_train_on_the_right_data_for_equal_steps(tmp_path):
    cfg = load_collapse_config(EXPERIMENT, [*TINY, f"output.dir={tmp_path}"])
    report = run_collapse(cfg)
    results = [GenerationResult(**r) for r in report["results"]]
    real = report["real_tokens"]
    assert real == sum(len(json.loads(line)["text"].encode()) for line in
                       (tmp_path / "data" / "real_train.jsonl").read_text().splitlines())
    assert len(results) == 2 * (2 * 3 - 1)
    assert {r.steps for r in results} == {12} and {r.tokens for r in results} == {12 * 8 * 32}
    by = {(r.seed, r.regime, r.generation): r for r in results}
    for seed in (0, 1):
        gen0 = by[(seed, "real", 0)]
        assert gen0.data_tokens == real
        # each sampled data set holds as many tokens as the real one: sampling stops once it has them
        sizes = [len(json.loads(x)["text"].encode()) for x in
                 (tmp_path / f"seed{seed}" / "real" / "gen0" / "samples.jsonl").read_text().splitlines()]
        assert sum(sizes) == gen0.sample_tokens and sum(sizes[:-1]) < real <= sum(sizes)
        rep1, acc1 = by[(seed, "replace", 1)], by[(seed, "accumulate", 1)]
        assert rep1.data_tokens == gen0.sample_tokens
        assert acc1.data_tokens == real + gen0.sample_tokens
        assert by[(seed, "replace", 2)].data_tokens == rep1.sample_tokens
        assert by[(seed, "accumulate", 2)].data_tokens == real + gen0.sample_tokens + acc1.sample_tokens
        assert by[(seed, "replace", 2)].sample_tokens is None  # the last generation samples nothing
        samples = tmp_path / f"seed{seed}" / "replace" / "gen1" / "samples.jsonl"
        assert sum(len(json.loads(x)["text"].encode()) for x in samples.read_text().splitlines()) == rep1.sample_tokens
    heldout = (tmp_path / "data" / "heldout.jsonl").read_text()
    assert not set(heldout.splitlines()) & set((tmp_path / "data" / "real_train.jsonl").read_text().splitlines())
    replace = {row["generation"]: row for row in report["summary"]["replace"]}
    assert replace[2]["values"] == [by[(s, "replace", 2)].heldout_nats for s in (0, 1)]
    assert replace[0]["values"] == report["summary"]["accumulate"][0]["values"]
    assert Path(report["paths"]["plot"]).stat().st_size > 5000
    assert json.loads(Path(report["paths"]["json"]).read_text())["summary"] == report["summary"]


def test_summary_mean_and_std_over_seeds_and_table():
    def row(seed, regime, gen, loss):
        return GenerationResult(seed, regime, gen, loss, loss, 1, 1, 1, None, 0.0)

    results = [row(0, "real", 0, 2.0), row(1, "real", 0, 2.2), row(0, "replace", 1, 2.5), row(1, "replace", 1, 2.9),
               row(0, "accumulate", 1, 2.0), row(1, "accumulate", 1, 2.1)]
    summary = summarise(results)
    rep = summary["replace"]
    assert [r["generation"] for r in rep] == [0, 1]
    assert rep[1]["mean"] == pytest.approx(2.7) and rep[1]["std"] == pytest.approx(0.2828427, rel=1e-6)
    assert summary["accumulate"][0]["mean"] == pytest.approx(2.1)
    table = markdown_table(summary)
    assert "| 1 | 2.7000 ± 0.2828 | 2.0500 ± 0.0707 |" in table


def test_cli_errors_are_one_line(tmp_path):
    res = CliRunner().invoke(app, ["collapse", str(EXPERIMENT), "--set", "real.path=/nowhere/x.txt",
                                   "--output", str(tmp_path)])
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2 and lines[-1].startswith("error: real.path") and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["collapse", str(EXPERIMENT), "--set", "generations=1"])
    assert res.exit_code == 2 and "generations" in res.output
    res = CliRunner().invoke(app, ["collapse", str(EXPERIMENT), "--set", "train.trainer.token_budget=5"])
    assert res.exit_code == 2 and "exactly one of" in res.output


def test_model_collapse_notebook(tmp_path):
    """The notebook runs the experiment end to end on a tiny budget and shows the plot and the table."""
    from test_notebooks import execute, outputs_text

    out = tmp_path / "collapse"
    tiny = [*(o for o in TINY if not o.startswith("generations=")), "generations=5",
            "train.trainer.max_steps=8", "train.trainer.eval_interval=8"]
    nb = execute("model_collapse.ipynb", tmp_path, SYNTHDSPY_COLLAPSE_SET=json.dumps(tiny),
                 SYNTHDSPY_NOTEBOOK_OUT=str(out))
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors[0]["evalue"] if errors else ""
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    text = " ".join(outputs_text(nb).split())
    assert "replace: generation 4" in text and "accumulate: generation 4" in text
    report = json.loads((out / "collapse.json").read_text())
    assert [len(report["summary"][r]) for r in ("replace", "accumulate")] == [5, 5]
    assert all(len(row["values"]) == 2 for r in ("replace", "accumulate") for row in report["summary"][r])
