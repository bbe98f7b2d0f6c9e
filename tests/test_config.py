"""Experiment config: overrides, and clear errors naming file, key and expectation."""

from pathlib import Path

import pytest
import tomllib

from synthdspy.config import load_experiment
from synthdspy.configio import ConfigError, apply_overrides, parse_override

EXPERIMENTS = Path(__file__).parent.parent / "experiments"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "exp.toml"
    p.write_text(text)
    return p


def test_shipped_experiments_validate():
    for path in EXPERIMENTS.glob("*.toml"):
        if "task" not in tomllib.loads(path.read_text(encoding="utf-8")):
            continue  # train, tune, transfer and collapse configs have their own schemas
        exp = load_experiment(path, seeds="builtin:topics" if "gsm8k" in path.name else None)
        assert exp.task.name


def test_override_types_and_nesting():
    assert parse_override("compile.batch_size=8") == (["compile", "batch_size"], 8)
    assert parse_override("lm.generator.model=openai/gpt-4o-mini")[1] == "openai/gpt-4o-mini"
    out = apply_overrides({"a": {"b": 1}}, ["a.c=true", "x.y.z=0.5"])
    assert out == {"a": {"b": 1, "c": True}, "x": {"y": {"z": 0.5}}}
    with pytest.raises(ConfigError, match="a.b is a value"):
        apply_overrides({"a": {"b": 1}}, ["a.b.c=1"])
    with pytest.raises(ConfigError, match="KEY.PATH=VALUE"):
        parse_override("novalue")


def test_overrides_address_array_items():
    assert parse_override("gates[1].threshold=8") == (["gates", 1, "threshold"], 8)
    data = {"gates": [{"name": "grounding"}, {"name": "reward", "threshold": 6}], "l": [1, 2]}
    out = apply_overrides(data, ["gates[1].threshold=8", "l[0]=5"])
    assert out["gates"][1] == {"name": "reward", "threshold": 8} and out["l"] == [5, 2]
    assert data["gates"][1]["threshold"] == 6  # the input is not changed
    with pytest.raises(ConfigError, match=r"gates has 2 items; no item \[2\]"):
        apply_overrides(data, ["gates[2].threshold=1"])
    with pytest.raises(ConfigError, match=r"gates\[0\].name is a value"):
        apply_overrides(data, ["gates[0].name.x=1"])
    with pytest.raises(ConfigError, match="is not an array"):
        apply_overrides({"a": {"b": 1}}, ["a[0]=1"])
    exp = load_experiment(EXPERIMENTS / "quickstart.toml", ["gates[0].threshold=9"])
    assert exp.gates[0].params["threshold"] == 9


def test_set_override_applies(tmp_path):
    exp = load_experiment(EXPERIMENTS / "quickstart.toml", ["compile.batch_size=2", "task.name=qa"])
    assert exp.compile.batch_size == 2 and exp.task.name == "qa"


def test_unknown_key_names_file_and_key(tmp_path):
    p = write(tmp_path, '[task]\nname = "qa"\n[compile]\noptimiser = "mipro"\n')
    with pytest.raises(ConfigError) as err:
        load_experiment(p)
    assert str(p) in str(err.value) and "compile.optimiser: unknown key" in str(err.value)


def test_wrong_type_and_bad_literal(tmp_path):
    p = write(tmp_path, '[task]\nname = "qa"\n[compile]\nbatch_size = "four"\noptimizer = "adam"\n')
    msg = str(pytest.raises(ConfigError, load_experiment, p).value)
    assert "compile.batch_size" in msg and "'four'" in msg
    assert "compile.optimizer" in msg and "mipro" in msg


def test_unknown_task_and_bad_task_parameter(tmp_path):
    p = write(tmp_path, '[task]\nname = "poems"\n')
    assert "unknown task 'poems'" in str(pytest.raises(ConfigError, load_experiment, p).value)
    p = write(tmp_path, '[task]\nname = "qa"\nnum_question = 3\n')
    msg = str(pytest.raises(ConfigError, load_experiment, p).value)
    assert "task.num_question: unknown key" in msg
    p = write(tmp_path, '[task]\nname = "qa"\n[[gates]]\nname = "reward"\nthreshold = 11\n')
    assert "gates[0].threshold" in str(pytest.raises(ConfigError, load_experiment, p).value)


def test_missing_files(tmp_path):
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_experiment(tmp_path / "nope.toml")
    p = write(tmp_path, '[task]\nname = "qa"\n')
    with pytest.raises(ConfigError, match="seeds.source: no such file"):
        load_experiment(p, seeds=str(tmp_path / "missing.jsonl"))


def test_invalid_toml(tmp_path):
    p = write(tmp_path, "[task\nname = 1\n")
    assert "invalid TOML" in str(pytest.raises(ConfigError, load_experiment, p).value)
