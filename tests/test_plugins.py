"""Third-party tasks and gates through entry points: a real package (``tests/data/plugin_pkg``) is
pip-installed into a temporary directory, listed by ``synthdspy tasks`` and used by ``generate``;
a plugin that fails to load costs one warning line, not the command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from synthdspy import plugins
from synthdspy.registry import TASKS

ROOT = Path(__file__).parent.parent
VENV_BIN = Path(sys.executable).parent
PASSAGES = ROOT.parent / "shared" / "data" / "passages" / "passages.jsonl"


def write_dist(site: Path, name: str, entry_points: str) -> None:
    """A minimal installed distribution (``.dist-info`` with METADATA and entry_points.txt) in ``site``."""
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """``tests/data/plugin_pkg`` installed with pip (its pyproject's entry points) into a target dir."""
    work = tmp_path_factory.mktemp("plugin")
    shutil.copytree(ROOT / "tests" / "data" / "plugin_pkg", work / "src")  # pip builds in the source tree
    site = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "-t", str(site), str(work / "src")], check=True, capture_output=True, timeout=300)
    return site


def synthdspy(*args: str, path: list[Path], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, path)), "COLUMNS": "250"}
    return subprocess.run([str(VENV_BIN / "synthdspy"), *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)


def test_tasks_lists_plugin_entries_with_their_package_and_survives_a_broken_plugin(plugin_site, tmp_path):
    broken = tmp_path / "broken"
    write_dist(broken, "broken_plugin", "[synthdspy.gates]\nfragile = broken_plugin_missing.gate\n")
    result = synthdspy("tasks", path=[plugin_site, broken], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()
    for name in ("headline", "max_words"):
        row = next(i for i, line in enumerate(rows) if line.startswith(f"│ {name} "))
        assert "(plugin: synthdspy-plugin-demo)" in rows[row + 1]
    assert "A headline for a source passage" in result.stdout and "limit: int = 40" in result.stdout
    qa_row = next(line for line in rows if line.startswith("│ qa "))
    assert "plugin" not in qa_row  # built-ins carry no source mark
    warnings = [line for line in result.stderr.splitlines() if "fragile" in line]
    assert len(warnings) == 1
    assert "'fragile'" in warnings[0] and "'broken_plugin'" in warnings[0] and "ModuleNotFoundError" in warnings[0]


def test_generate_runs_a_plugin_task_and_gate(plugin_site, tmp_path):
    """Pipeline test over the offline simulator: the plugin's task and gate run inside ``generate``."""
    experiment = tmp_path / "headlines.toml"
    experiment.write_text(f"""
name = "headlines"
[seeds]
source = {json.dumps(str(PASSAGES))}
fields = {{ source = "text" }}
[task]
name = "headline"
prefix = "News desk: "
[[gates]]
name = "max_words"
limit = 400
[tracking]
autolog = false
[output]
dir = {json.dumps(str(tmp_path / "out"))}
""")
    result = synthdspy("generate", str(experiment), "-n", "4", "--export", "jsonl", path=[plugin_site], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in (tmp_path / "out" / "generate" / "records.jsonl").open()]
    assert len(records) == 4
    for record in records:
        assert record["task"] == "headline" and record["instruction"].startswith("News desk: ")
        assert record["output"] and record["input"]
        (verdict,) = record["verdicts"]
        assert verdict["gate"] == "max_words" and verdict["score"] == len(record["output"].split())


def test_a_plugin_that_registers_nothing_or_fails_is_skipped_with_one_warning(tmp_path, monkeypatch):
    site = tmp_path / "site"
    write_dist(site, "ghost_plugin", "[synthdspy.tasks]\nghost = json\n")
    write_dist(site, "crashing_plugin", "[synthdspy.tasks]\ncrash = crashing_plugin_mod\n")
    (site / "crashing_plugin_mod.py").write_text("raise RuntimeError('boom\\nsecond line')\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(plugins, "_loaded", False)
    before = dict(TASKS)
    warnings = plugins.load_plugins()
    assert plugins.load_plugins() == []  # once per process
    assert len(warnings) == 2 and all("\n" not in w for w in warnings)
    crash, ghost = warnings
    assert "'crash'" in crash and "'crashing_plugin'" in crash and "RuntimeError: boom second line" in crash
    assert "'ghost'" in ghost and "'ghost_plugin'" in ghost and "registered no task named 'ghost'" in ghost
    assert before == TASKS  # nothing half-registered
