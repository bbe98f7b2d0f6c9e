"""Curriculum against no curriculum at equal tokens: arms, tokens-to-reach, table, plot (tiny budget).

The tiny trainings say nothing about whether a curriculum helps; they check the comparison itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synthdspy.cli import app
from synthdspy.configio import ConfigError
from synthdspy.training import load_train_config
from synthdspy.training.curriculum import GradualSpec, PacingSpec, StrictSpec
from synthdspy.training.curriculum_compare import (
    ARMS,
    ArmRun,
    schedule_for,
    summarise,
    tokens_to_reach,
)

EXPERIMENT = Path(__file__).resolve().parent.parent / "experiments" / "train_mixture.toml"
needs_data = pytest.mark.usefixtures("needs_shared_data")
TINY = [
    "model.n_layer=1", "model.n_head=2", "model.n_embd=32", "model.block_size=32", "trainer.batch_size=8",
    "trainer.token_budget=3840", "trainer.eval_interval=5", "trainer.eval_windows=4", "trainer.threads=1",
    "sources[0].limit=150", "sources[1].limit=150", "sources[2].limit=200", "sources[3].limit=150",
]


def test_tokens_to_reach_interpolates_the_first_crossing():
    curve = [(0, 5.0), (100, 4.0), (200, 3.0), (300, 2.5), (400, 2.8), (500, 2.0)]
    assert tokens_to_reach(curve, 3.5) == pytest.approx(150.0)  # halfway between 100 and 200
    assert tokens_to_reach(curve, 2.75) == pytest.approx(250.0)  # first crossing, not the later dip
    assert tokens_to_reach(curve, 3.0) == pytest.approx(200.0)  # exactly on a point
    assert tokens_to_reach(curve, 6.0) == 0.0  # reached at the start
    assert tokens_to_reach(curve, 1.9) is None  # never reached


def test_summary_reference_is_the_none_mean_and_counts_who_reaches_it():
    def run(arm, seed, target, curve):
        return ArmRun(arm, seed, 10, 1000, target, {"A": target + 0.1}, curve, 1.0)

    runs = [
        run("none", 0, 2.0, [(0, 4.0), (1000, 2.0)]),
        run("none", 1, 2.2, [(0, 4.0), (1000, 2.2)]),
        run("strict", 0, 1.9, [(0, 4.0), (500, 2.1), (1000, 1.9)]),
        run("strict", 1, 2.3, [(0, 4.0), (1000, 2.3)]),
    ]
    s = summarise(runs, ["none", "strict"])
    assert s["reference"] == pytest.approx(2.1)
    strict = s["arms"]["strict"]
    assert strict["tokens_to_reach"][0] == pytest.approx(500.0) and strict["tokens_to_reach"][1] is None
    assert strict["reached"] == 1 and strict["reach"] == (pytest.approx(500.0), 0.0)
    assert s["arms"]["none"]["tokens_to_reach"] == [pytest.approx(950.0), None]
    assert strict["target"][0] == pytest.approx(2.1) and strict["stages"]["A"][0] == pytest.approx(2.2)
    with pytest.raises(ConfigError, match="'none' arm"):
        summarise(runs[2:], ["strict"])


@needs_data
def test_every_family_keeps_the_stages_and_the_configs_own_schedule():
    base = load_train_config(EXPERIMENT)
    assert schedule_for(base, "none") is None
    assert schedule_for(base, "gradual") == base.curriculum.schedule  # the shipped parameters
    assert isinstance(schedule_for(base, "strict"), StrictSpec)
    assert isinstance(schedule_for(base, "fixed_exponential"), PacingSpec)
    two = load_train_config(EXPERIMENT, ['curriculum.stages=["easy", "hard"]', "curriculum.schedule.starts=[0.0, 0.5]"])
    assert schedule_for(two, "strict").fractions == [0.5, 0.5]
    assert isinstance(schedule_for(two, "gradual"), GradualSpec)
    with pytest.raises(ConfigError, match="unknown arm"):
        schedule_for(base, "anti")


@needs_data
def test_cli_trains_every_arm_on_equal_tokens_and_writes_table_plot_json(tmp_path):
    args = ["curriculum-compare", str(EXPERIMENT), "--seeds", "2", "--output", str(tmp_path)]
    res = CliRunner().invoke(app, [*args, *(x for o in TINY for x in ("--set", o))])
    assert res.exit_code == 0, res.output
    table = (tmp_path / "compare.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [r.split("|")[1].strip() for r in rows] == list(ARMS)
    assert "stage/Foundations bpb" in table and "stage/Advanced Integration bpb" in table
    data = json.loads((tmp_path / "compare.json").read_text())
    runs = data["runs"]
    assert sorted((r["arm"], r["seed"]) for r in runs) == sorted((a, s) for a in ARMS for s in (0, 1))
    assert {r["tokens"] for r in runs} == {15 * 8 * 32} and {r["steps"] for r in runs} == {15}
    assert all(row["tokens"] == [3840] for row in data["arms"].values())
    none = [r["target"] for r in runs if r["arm"] == "none"]
    assert data["reference"] == pytest.approx(sum(none) / 2)
    for arm in ARMS:  # the tokens-to-reach column is read off each run's own curve
        mine = sorted((r for r in runs if r["arm"] == arm), key=lambda r: r["seed"])
        expected = [tokens_to_reach([tuple(p) for p in r["curve"]], data["reference"]) for r in mine]
        assert data["arms"][arm]["tokens_to_reach"] == expected
    strict = [r for r in runs if r["arm"] == "strict"]
    assert strict[0]["curve"] != [r for r in runs if r["arm"] == "none"][0]["curve"]  # the schedule mattered
    assert (tmp_path / "compare.png").stat().st_size > 5000
    assert "target bpb" in res.output and "none" in res.output


def test_cli_config_without_curriculum_is_a_one_line_error(tmp_path):
    shakespeare = EXPERIMENT.parent / "train_shakespeare_char.toml"
    res = CliRunner().invoke(app, ["curriculum-compare", str(shakespeare), "--output", str(tmp_path)])
    assert res.exit_code == 2 and res.output.strip().splitlines()[-1].startswith("error: curriculum-compare")


@needs_data
def test_worker_processes_give_the_results_of_one_process(tmp_path):
    from synthdspy.training.curriculum_compare import arm_configs, compare
    from synthdspy.training.workers import threads_per_worker

    base = load_train_config(EXPERIMENT, TINY)
    assert {c.trainer.threads for _, _, c in arm_configs(base, 2, tmp_path, ["none"], 2)} == {threads_per_worker(2)}
    one = compare(base, 1, tmp_path / "one", workers=1, arms=["none", "root"])
    two = compare(base, 1, tmp_path / "two", workers=2, arms=["none", "root"])
    targets = [{r["arm"]: r["target"] for r in s["runs"]} for s in (one, two)]
    assert targets[0].keys() == targets[1].keys() == {"none", "root"}
    for arm in targets[0]:  # same seeds and data; only the thread count (float summation order) differs
        assert targets[1][arm] == pytest.approx(targets[0][arm], abs=1e-3)
