"""The shipped experiments of the pre-training/augmentation catalog load, and generate end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthdspy.config import load_experiment
from synthdspy.program import SynthesisProgram
from synthdspy.records import Record

ROOT = Path(__file__).parent.parent
EXPERIMENTS = ["pretraining", "textbook_variants", "rephrase", "variation", "self_instruct", "mind", "tinystories"]
needs_data = pytest.mark.usefixtures("needs_shared_data")


def experiment(name: str, tmp_path: Path, *extra: str):
    sets = [f"output.dir={json.dumps(str(tmp_path / 'out'))}", "tracking.autolog=false", *extra]
    return load_experiment(ROOT / "experiments" / f"{name}.toml", sets)


@needs_data
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_loads_and_builds_its_program(name, tmp_path):
    exp = experiment(name, tmp_path)
    program = SynthesisProgram.from_experiment(exp)
    assert program.task.name == exp.task.name
    assert [g.name for g in program.gates.gates] == [g.name for g in exp.gates]


def test_bad_share_override_is_a_config_error_naming_the_key(tmp_path):
    from synthdspy.configio import ConfigError

    with pytest.raises(ConfigError, match="task"):
        experiment("pretraining", tmp_path, 'task.shares={ Style = { Sarcastic = 1.0 } }')


def test_pipeline_pretraining_generate_end_to_end(tmp_path):
    """Pipeline test: records carry nine dimensions and a dimension verdict on the Format and Style targets. How
    many pass is decided by the simulator's judge, not evidence of quality."""
    from synthdspy.pipeline import run_generate

    out = run_generate(experiment("pretraining", tmp_path), n=2, show_progress=False)
    records = [Record.model_validate_json(line) for line in
               (out.store_dir / "records-00000.jsonl").read_text().splitlines()]
    assert out.stats.passed >= 2
    for r in records:
        assert r.task == "pretraining" and len(r.dimensions) == 9
        assert r.verdicts[0].gate == "dimension" and set(r.verdicts[0].details["target"]) == {"Format", "Style"}


@needs_data
def test_variation_of_a_previous_runs_records(tmp_path):
    from synthdspy.pipeline import run_generate

    source = experiment("pretraining", tmp_path / "a")
    source.gates = []
    first = run_generate(source, n=2, export=("jsonl",), show_progress=False)
    records_file = first.store_dir.parent / "records.jsonl"
    exp = experiment("variation", tmp_path / "b", "seeds.train_size=1", "seeds.dev_size=1")
    exp.seeds.source, exp.seeds.fields, exp.gates = str(records_file), {}, []
    out = run_generate(exp, n=1, show_progress=False)
    originals = {json.loads(line)["id"] for line in records_file.read_text().splitlines()}
    varied = [Record.model_validate_json(line) for line in
              (out.store_dir / "records-00000.jsonl").read_text().splitlines()]
    assert varied and all(r.metadata["original_id"] in originals and len(r.dimensions) == 9 for r in varied)


@needs_data
def test_pipeline_mind_generate_end_to_end_passes_its_gates(tmp_path):
    """Pipeline test: passed conversations alternate the two roles. That they pass is decided by the simulator's
    heuristics, not evidence of quality."""
    from synthdspy.pipeline import run_generate

    out = run_generate(experiment("mind", tmp_path), n=2, show_progress=False)
    assert out.stats.passed >= 2
    passed = [r for r in (Record.model_validate_json(line) for line in
              (out.store_dir / "records-00000.jsonl").read_text().splitlines()) if r.passed]
    for r in passed:
        roles = r.metadata["roles"]
        assert [t["role"] for t in r.turns] == [roles[i % 2] for i in range(len(r.turns))]
        assert [v.gate for v in r.verdicts] == ["cot_check", "reward"]
