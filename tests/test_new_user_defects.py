"""Defects a new user hit (issue 12, section 5): compile-report samples of preference and GRPO
records, ``synthdspy tasks`` descriptions and choices, the tuner's honest "best" label and its
progress off a terminal, and ``generate --program`` against an experiment of another task.

The generate tests run on the offline simulator: they are pipeline tests (what is reported and
which error is raised), not evidence of data quality.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from synthdspy.cli import app
from synthdspy.records import Record, Verdict

ROOT = Path(__file__).parent.parent
runner = CliRunner()

SUMMARY = {
    "experiment": "e", "variant": "v", "optimizer": "bootstrap_rs", "config_hash": "h", "simulated": False,
    "lms": {"generator": "openai/x"}, "program_hash": "p", "baseline": {}, "compiled": {},
    "budget": {"limits": {}, "used": {}, "stopped_by_budget": ""}, "optimization": {}, "criteria": {},
    "usage": {"line": "-"}, "notes": [], "predictors": {},
}


def _samples_section(samples: list[Record]) -> str:
    from synthdspy.report import markdown

    return markdown(SUMMARY, [r.model_dump(mode="json") for r in samples]).split("## Sample records")[1]


def test_compile_report_shows_preference_pairs_with_their_degradation():
    pair = Record(id="p", task="preference", instruction="Why is the sky blue?",
                  chosen="Sunlight scatters off nitrogen molecules; blue light scatters most (Rayleigh).",
                  rejected="Because of the air up there.", metadata={"degradation": "vague_language"},
                  verdicts=[Verdict(gate="reward", passed=True, score=8)])
    section = _samples_section([pair])
    chosen, rejected = section.index("blue light scatters most"), section.index("Because of the air up there.")
    assert chosen < rejected
    assert "chosen" in section[:chosen] and "rejected" in section[chosen:rejected]
    assert "vague_language" in section and "reward=pass" in section


def test_compile_report_shows_grpo_responses_with_their_scores():
    group = Record(id="g", task="grpo", instruction="What is 2 + 3?", responses=["It is 5.", "It is 6.", "five"],
                   reward_scores=[9.0, 2.0, 7.5])
    section = _samples_section([group])
    lines = [ln.strip() for ln in section.splitlines()]
    for i, (response, score) in enumerate((("It is 5.", "9"), ("It is 6.", "2"), ("five", "7.5")), start=1):
        title = lines.index(f"response {i}, score {score}:")
        assert lines[title + 1: title + 4] == ["", "```", response]
    unscored = _samples_section([group.model_copy(update={"reward_scores": None})])
    assert "It is 6." in unscored and "score" not in unscored.split("What is 2 + 3?")[1]


def test_compile_report_of_a_preference_compile_has_its_pairs(tmp_path):
    """Pipeline test on the simulator: the written report.md carries every sample's chosen and rejected."""
    from synthdspy.config import load_experiment
    from synthdspy.pipeline import run_compile

    sets = [f"output.dir={json.dumps(str(tmp_path / 'out'))}", "seeds.train_size=2", "seeds.dev_size=2",
            "compile.batch_size=2", "compile.num_candidates=1", "tracking.autolog=false", 'task.mode="single_call"']
    out = run_compile(load_experiment(ROOT / "experiments" / "preference.toml", sets))
    md = out.paths["report_md"].read_text()
    samples = [json.loads(line) for line in out.paths["samples"].read_text().splitlines()]
    assert samples
    for s in samples:
        assert s["chosen"].splitlines()[0] in md and s["rejected"].splitlines()[0] in md
        assert s["metadata"]["degradation"] in md


def test_tasks_shows_whole_descriptions_and_literal_choices():
    from synthdspy.catalog import TASKS
    from synthdspy.registry import describe

    grpo = TASKS["grpo"].summary
    assert grpo.endswith(".") and "reward_scores" in grpo and "\n" not in grpo
    rows = {name: ty for name, ty, _ in describe(TASKS["preference"])}
    assert rows["mode"] == "'single_call' | 'two_pass'"
    assert rows["degradations"] == "list['omit_key_detail' | 'vague_language' | 'miss_distinction']"
    result = runner.invoke(app, ["tasks"], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    flat = " ".join(result.output.split())
    assert "'omit_key_detail' | 'vague_language' | 'miss_distinction'" in flat
    assert "(and ``reward_scores`` when ``score_responses``)." in flat
    narrow = runner.invoke(app, ["tasks"], env={"COLUMNS": "80"})
    assert narrow.exit_code == 0 and "…" not in narrow.output  # long values wrap, never end in an ellipsis


def _study_with(values: list[float], attrs: list[dict] | None = None) -> optuna.Study:
    study = optuna.create_study()
    for i, v in enumerate(values):
        user = {"target": v, "worst": v + 0.5, "weights": {"a": 0.5, "b": 0.5}, "schedule": {"kind": "none"},
                **(attrs[i] if attrs else {})}
        study.add_trial(optuna.trial.create_trial(value=v, user_attrs=user))
    return study


def test_tune_summary_says_when_a_baseline_beat_the_tuned_trials(tmp_path):
    from tuning_helpers import tiny

    from synthdspy.tuning.report import summarize, verdict

    cfg = tiny(tmp_path)
    studies = {"tuned": _study_with([1.30, 1.25]),
               "baselines": _study_with([1.20, 1.40], [{"baseline": "natural"}, {"baseline": "uniform"}]),
               "random": _study_with([1.28])}
    summary = summarize(cfg, studies, elapsed_s=1.0)
    assert summary.best.label == "best tuned trial (tpe)" and summary.best.target == pytest.approx(1.25)
    line = verdict(summary, cfg.objective.metric)
    assert line.startswith("baseline natural beat the best tuned trial by 0.0500 ")
    assert summary.verdict == line
    studies["baselines"] = _study_with([1.40], [{"baseline": "uniform"}])
    won = summarize(cfg, studies, elapsed_s=1.0)
    assert won.verdict.startswith("the best tuned trial beat every baseline and the random search")


def test_tune_off_a_terminal_prints_one_line_per_finished_trial(tmp_path):
    from tuning_helpers import tiny_path

    path = tiny_path(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "synthdspy", "tune", str(path), "--set", "study.n_trials=2",
                           "--set", "study.n_startup_trials=1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    finished = [ln for ln in proc.stderr.splitlines() if ln.startswith("tuned: trial ")]
    assert [ln.split()[2] for ln in finished] == ["1/2", "2/2"], proc.stderr[-2000:]
    assert "best target" in finished[-1]
    assert "best tuned trial (tpe)" in proc.stdout


def _preference_program(tmp_path: Path) -> Path:
    from synthdspy.config import GateConfig, TaskConfig
    from synthdspy.program import SynthesisProgram

    program = SynthesisProgram(TaskConfig(name="preference"), [GateConfig(name="reward", threshold=7)])
    return program.save_program(tmp_path / "preference_program.json")


def _quickstart(tmp_path: Path):
    from synthdspy.config import load_experiment

    return load_experiment(ROOT / "experiments" / "quickstart.toml",
                           [f"output.dir={json.dumps(str(tmp_path / 'out'))}", "tracking.autolog=false"])


def test_generate_with_a_program_of_another_task_says_so_and_names_it_in_the_seed_error(tmp_path, caplog):
    """Pipeline test on the simulator: a preference program run with the (topic-seeded) quickstart."""
    from synthdspy.configio import ConfigError
    from synthdspy.pipeline import run_generate

    program = _preference_program(tmp_path)
    with caplog.at_level(logging.WARNING, logger="synthdspy"), pytest.raises(ConfigError) as err:
        run_generate(_quickstart(tmp_path), n=2, program_path=str(program), show_progress=False)
    warned = [r.getMessage() for r in caplog.records if "preference_program.json" in r.getMessage()]
    assert len(warned) == 1 and "\n" not in warned[0]
    assert "'preference'" in warned[0] and "'textbook'" in warned[0] and "reward" in warned[0]
    message = str(err.value)
    assert message.startswith(f"{program}: a 'preference' program"), message
    assert "'textbook'" in message


def test_generate_with_the_experiments_own_program_does_not_warn(tmp_path, caplog):
    from synthdspy.program import SynthesisProgram

    exp = _quickstart(tmp_path)
    path = SynthesisProgram.from_experiment(exp).save_program(tmp_path / "same.json")
    with caplog.at_level(logging.WARNING, logger="synthdspy"):
        program = SynthesisProgram.for_experiment(exp, str(path))
    assert program.task_cfg.name == "textbook" and not caplog.records


def test_parallel_coordinate_of_a_16_parameter_study_keeps_the_most_important_axes():
    from synthdspy.tuning.report import MAX_PARALLEL_PARAMS, parallel_coordinate

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: sum(w * t.suggest_float(f"p{i:02d}", 0, 1)
                                 for i, w in enumerate([0.01] * 3 + [3.0] + [0.01] * 3 + [3.0] + [0.01] * 3 + [3.0]
                                                       + [0.01] * 4)), n_trials=40)
    assert len(study.best_params) == 16
    ax = parallel_coordinate(study, target=None, target_name="target")
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert MAX_PARALLEL_PARAMS == 6 and len(labels) == 1 + MAX_PARALLEL_PARAMS  # the objective and 6 parameters
    assert {"p03", "p07", "p11"} <= set(labels)
    assert "6 of 16 parameters" in ax.get_title()
