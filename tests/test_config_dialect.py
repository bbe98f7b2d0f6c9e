"""One configuration dialect and a consistent CLI (issue 12, section 4).

``[output] dir`` and ``[tracking]`` mean the same in experiment, train and tune files; the default
output directory is ``runs/<name>``; every writing command takes ``--output/-o``; each command's
``--set`` help names one of its own keys; TOML arguments are all ``CONFIG``; ``-n`` is checked at
parse time; ``train`` reads ``generate``'s dataset export through the seed loader; and importing the
config does not pull in the catalog, the LMs or DSPy. Runs over the simulator are pipeline tests:
they check files, paths and messages, never the quality of what was generated.
"""

from __future__ import annotations

import ast
import collections
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import tomllib
from typer.testing import CliRunner

from synthdspy.cli import app
from synthdspy.config import load_experiment
from synthdspy.configio import ConfigError
from synthdspy.training.config import load_train_config
from synthdspy.tuning.config import load_tune_config

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
runner = CliRunner()

TRAIN = """
name = "{name}"
{top}
[trainer]
max_steps = 2
batch_size = 2
eval_interval = 2
eval_windows = 1
log_interval = 1
device = "cpu"
[model]
n_layer = 1
n_head = 1
n_embd = 8
block_size = 16
[[sources]]
name = "s"
path = "{data}"
{tables}
"""

TUNE = """
name = "{name}"
{top}
[search]
groups = {{ a = "real", b = "synthetic" }}
[train]
name = "inner"
{train_top}
[train.trainer]
token_budget = 64
[[train.sources]]
name = "a"
path = "x.txt"
[[train.sources]]
name = "b"
path = "y.txt"
{tables}
"""

EXPERIMENT = """
name = "{name}"
[task]
name = "rephrase"
{tables}
"""

SHARED_TABLES = """
[output]
dir = "{out}"
[tracking]
enabled = true
uri = "sqlite:///{out}/mlflow.db"
experiment = "mine"
autolog = false
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_output_and_tracking_tables_read_the_same_in_experiment_train_and_tune_files(tmp_path):
    out = tmp_path / "out"
    tables = SHARED_TABLES.format(out=out)
    exp = load_experiment(write(tmp_path / "e.toml", EXPERIMENT.format(name="e", tables=tables)))
    train = load_train_config(write(tmp_path / "t.toml", TRAIN.format(name="t", top="", data="x.txt", tables=tables)))
    tune = load_tune_config(write(tmp_path / "u.toml", TUNE.format(name="u", top="", train_top="", tables=tables)))
    assert Path(exp.output.dir) == train.out_dir == tune.out_dir == out
    for tracking in (exp.tracking, train.tracking, tune.tracking):
        assert (tracking.enabled, tracking.uri, tracking.experiment, tracking.autolog) == (
            True, f"sqlite:///{out}/mlflow.db", "mine", False)


def test_default_output_directory_is_runs_slash_the_config_name(tmp_path):
    exp = load_experiment(write(tmp_path / "e.toml", EXPERIMENT.format(name="alpha", tables="")))
    train = load_train_config(write(tmp_path / "t.toml", TRAIN.format(name="beta", top="", data="x", tables="")))
    tune = load_tune_config(write(tmp_path / "u.toml", TUNE.format(name="gamma", top="", train_top="", tables="")))
    assert (Path(exp.output.dir), train.out_dir, tune.out_dir) == (
        Path("runs/alpha"), Path("runs/beta"), Path("runs/gamma"))


def test_legacy_output_dir_is_accepted_with_a_warning_naming_file_and_new_key(tmp_path):
    path = write(tmp_path / "t.toml", TRAIN.format(name="t", top='output_dir = "legacy"', data="x", tables=""))
    with pytest.warns(FutureWarning, match=r"output_dir is deprecated; use \[output\] dir") as caught:
        cfg = load_train_config(path)
    assert cfg.out_dir == Path("legacy")
    assert len(caught) == 1 and caught[0].filename == str(path) and caught[0].lineno == 3
    assert "\n" not in str(caught[0].message)
    tune = write(tmp_path / "u.toml", TUNE.format(name="u", top='output_dir = "old"', train_top='output_dir = "in"',
                                                  tables=""))
    with pytest.warns(FutureWarning) as caught:
        cfg = load_tune_config(tune)
    assert cfg.out_dir == Path("old") and cfg.train.out_dir == Path("in")
    messages = sorted(str(w.message) for w in caught)
    assert any(m.startswith("output_dir is deprecated; use [output] dir") for m in messages)
    assert any(m.startswith("train.output_dir is deprecated; use [train.output] dir") for m in messages)
    both = write(tmp_path / "b.toml", TRAIN.format(name="t", top='output_dir = "a"', data="x",
                                                   tables='[output]\ndir = "b"\n'))
    with pytest.raises(ConfigError, match=r"b.toml: output_dir: .*\[output\] dir"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_train_config(both)


def test_experiment_tracking_switched_off_leaves_no_mlflow_store(tmp_path):
    """``[tracking] enabled = false`` means the same in experiments as in train and tune files:
    compile and generate write their files and no MLflow database, run or artifact."""
    out = tmp_path / "out"
    sets = [f"output.dir={json.dumps(str(out))}", "tracking.enabled=false", "seeds.sampling_seed=13",
            "seeds.train_size=4", "seeds.dev_size=4", "compile.batch_size=2", "compile.num_candidates=1"]
    compiled = runner.invoke(app, ["compile", str(EXPERIMENTS / "quickstart.toml"), *[f"--set={x}" for x in sets]])
    assert compiled.exit_code == 0, compiled.output
    assert "MLflow:           off ([tracking] enabled = false)" in compiled.output
    program = next(out.glob("variants/*/compiled_program.json"))
    made = runner.invoke(app, ["generate", str(EXPERIMENTS / "quickstart.toml"), "-n", "2", "--program", str(program),
                               "--export", "jsonl", *[f"--set={x}" for x in sets]])
    assert made.exit_code == 0, made.output
    assert "MLflow:     off ([tracking] enabled = false)" in made.output
    assert (out / "generate" / "records.jsonl").is_file()
    assert not (out / "mlflow.db").exists() and not (out / "mlartifacts").exists()


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_configs_use_only_the_current_keys(path):
    def keys(node, prefix=""):
        for key, value in node.items():
            yield prefix + key
            if isinstance(value, dict):
                yield from keys(value, f"{prefix}{key}.")
    assert not [k for k in keys(tomllib.loads(path.read_text(encoding="utf-8"))) if k.endswith("output_dir")]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        if path.name.startswith("train_"):
            load_train_config(path)
        elif path.name in ("mixture_tuning.toml", "mixture_transfer_proxy.toml"):
            load_tune_config(path)


# --- the command line -------------------------------------------------------------------------------

WRITERS = ("compile", "generate", "train", "tune", "gate-report", "diversity", "collapse", "curriculum-compare")


def help_text(command: str) -> str:
    result = runner.invoke(app, [command, "--help"], terminal_width=240, env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", WRITERS)
def test_every_writing_command_takes_output_and_o(command):
    text = help_text(command)
    assert re.search(r"--output\s+-o\b", text), text


SET_EXAMPLES = {
    "compile": ("quickstart.toml", load_experiment),
    "generate": ("quickstart.toml", load_experiment),
    "doctor": ("quickstart.toml", load_experiment),
    "train": ("train_shakespeare_char.toml", load_train_config),
    "curriculum-compare": ("train_mixture.toml", load_train_config),
    "tune": ("mixture_tuning.toml", load_tune_config),
}


@pytest.mark.parametrize("command", sorted(SET_EXAMPLES))
def test_set_help_example_is_a_key_of_that_command(command):
    text = " ".join(help_text(command).replace("│", " ").split())
    example = re.search(r"e\.g\. --set (\S+=\S+)", text)
    assert example, text
    shipped, loader = SET_EXAMPLES[command]
    loader(EXPERIMENTS / shipped, [example.group(1).rstrip(").,")])  # an unknown key raises ConfigError


@pytest.mark.parametrize("command", ("compile", "generate", "doctor", "train", "tune", "collapse",
                                     "curriculum-compare"))
def test_toml_argument_is_called_config(command):
    usage = next(line for line in help_text(command).splitlines() if "Usage:" in line)
    assert re.search(r"\[OPTIONS\] (\{config\}|CONFIG)(\s|$)", usage), usage


def test_readme_command_table_names_the_toml_argument_config():
    rows = [line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
            if re.match(r"\| `synthdspy (compile|generate|doctor|train|tune) ", line)]
    assert len(rows) == 5 and all(re.match(r"\| `synthdspy \S+ CONFIG\.toml", row) for row in rows), rows


@pytest.mark.parametrize("argv", (["generate", "no-such.toml", "-n", "0"], ["sample", "no-such-dir", "-n", "-3",
                                                                           "-o", "x.jsonl"]))
def test_n_is_checked_at_parse_time_in_one_line(argv):
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [f"error: -n {argv[3]}: must be at least 1"], result.output


def test_generate_prints_each_export_at_its_real_path_and_output_overrides_the_config(tmp_path):
    """Pipeline test over the simulator: which files are written and printed, not their quality."""
    out = tmp_path / "run"
    result = runner.invoke(app, ["generate", str(EXPERIMENTS / "quickstart.toml"), "-n", "2", "--export", "jsonl",
                                 "--export", "parquet", "-o", str(out)], terminal_width=400)
    assert result.exit_code == 0, result.output
    printed = {m.group(1): Path(m.group(2)) for m in re.finditer(r"^(jsonl|parquet|dataset):\s+(\S+)",
                                                                    result.output, re.M)}
    assert printed == {"jsonl": out / "generate" / "records.jsonl", "parquet": out / "generate" / "records.parquet"}
    assert all(p.is_file() for p in printed.values())
    assert len(printed["jsonl"].read_text(encoding="utf-8").splitlines()) == 2


def test_train_reads_generates_dataset_export_and_other_record_files(tmp_path):
    """Pipeline test over the simulator: a ``generate`` export becomes training documents."""
    from synthdspy.training.documents import SourceSpec, load_source

    out = tmp_path / "run"
    result = runner.invoke(app, ["generate", str(EXPERIMENTS / "quickstart.toml"), "-n", "3", "-o", str(out)])
    assert result.exit_code == 0, result.output
    export = out / "generate" / "dataset"
    docs = load_source(SourceSpec(name="gen", path=str(export), format="records", template="{instruction}\n{output}"))
    from datasets import load_from_disk

    rows = list(load_from_disk(str(export)))
    assert [d.text for d in docs] == [f"{r['instruction']}\n{r['output']}" for r in rows] and len(docs) == 3
    csv = write(tmp_path / "r.csv", "q,a\nwhat,that\nwho,them\n")
    assert [d.text for d in load_source(SourceSpec(name="c", path=str(csv), format="records", template="{q}={a}"))] == [
        "what=that", "who=them"]


def test_train_output_option_overrides_the_config(tmp_path):
    data = write(tmp_path / "d.txt", "some words to learn from\n\n" * 200)
    cfg = write(tmp_path / "t.toml", TRAIN.format(name="t", top="", data=data,
                                                  tables='[output]\ndir = "elsewhere"\n[tracking]\nenabled = false'))
    out = tmp_path / "chosen"
    result = runner.invoke(app, ["train", str(cfg), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "checkpoint.pt").is_file() and not (tmp_path / "elsewhere").exists()


# --- imports -------------------------------------------------------------------------------------------


def import_graph() -> dict[str, set[str]]:
    """Every synthdspy module -> the synthdspy modules it imports anywhere (function bodies included)."""
    package = ROOT / "synthdspy"
    modules = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("synthdspy"):
                deps |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                         for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("synthdspy")}
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def test_no_import_cycle_runs_through_the_config():
    graph = import_graph()
    prev: dict[str, str | None] = {"synthdspy.config": None}
    queue = collections.deque(["synthdspy.config"])
    while queue:
        node = queue.popleft()
        for dep in graph[node]:
            if dep == "synthdspy.config":
                chain = [node]
                while prev[chain[-1]]:
                    chain.append(prev[chain[-1]])
                pytest.fail("import cycle: " + " -> ".join([*reversed(chain), dep]))
            if dep not in prev:
                prev[dep] = node
                queue.append(dep)
    assert graph["synthdspy.roles"] == set()


def test_importing_the_config_loads_no_catalog_lm_or_dspy():
    probe = ("import sys, json, synthdspy.config; print(json.dumps(sorted(m for m in sys.modules if m in "
             "('synthdspy.catalog', 'synthdspy.lm', 'dspy'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(out.stdout) == []
    gate = ("import sys, json, synthdspy.gates.judged; print(json.dumps(sorted(m for m in sys.modules if m in "
            "('synthdspy.lm', 'synthdspy.config'))))")
    out = subprocess.run([sys.executable, "-c", gate], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(out.stdout) == []
