"""The `synthdspy diversity` command line: cluster-agent defaults shared with `compile`, plain progress
lines off a terminal, and `synthdspy --version`.

The progress test runs the cluster-agent on the offline simulator: it is a pipeline test (it checks
that progress is reported, not what the simulator's clusters are worth)."""

from __future__ import annotations

import importlib.metadata
import inspect
import io
import json
import re
from pathlib import Path

from test_diversity_cluster_agent import memory_cache  # noqa: F401
from typer.testing import CliRunner

from synthdspy.cli import app


def test_cluster_agent_defaults_are_the_same_in_compile_and_diversity() -> None:
    from synthdspy.cli_reports import diversity
    from synthdspy.config import ClusterAgentObjective
    from synthdspy.metrics.diversity.cluster_agent import ClusterAgentConfig

    agent, objective = ClusterAgentConfig(), ClusterAgentObjective()
    for field in ("criteria_samples", "criteria_rounds", "n_criteria", "verify"):
        assert getattr(objective, field) == getattr(agent, field), field
    options = inspect.signature(diversity).parameters
    cli_to_field = {"cluster_rounds": "cluster_rounds", "k_samples": "k_samples", "criteria_rounds": "criteria_rounds",
                    "criteria_samples": "criteria_samples", "n_criteria": "n_criteria", "threads": "num_threads"}
    for option, field in cli_to_field.items():
        assert options[option].default.default == getattr(agent, field), option


def test_progress_lines_are_periodic_off_a_terminal_and_silent_on_one() -> None:
    from synthdspy.metrics.diversity.progress import ProgressLines

    now = [0.0]

    def clock() -> float:
        return now[0]

    stream = io.StringIO()
    progress = ProgressLines("cluster-agent on a", total=10, unit="rounds", stream=stream, every_s=10.0, clock=clock)
    for _ in range(10):
        now[0] += 4.0
        progress.advance()
    progress.finish()
    lines = stream.getvalue().splitlines()
    counts = [int(re.search(r": (\d+)/10 rounds", line).group(1)) for line in lines]
    assert counts[0] == 0 and counts[-1] == 10 and counts == sorted(counts)
    assert 4 <= len(lines) <= 6  # start, one line per 10 s of 40 s, the end
    assert all(line.startswith("[diversity] cluster-agent on a: ") for line in lines)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Terminal()
    quiet = ProgressLines("x", total=3, unit="rounds", stream=tty, every_s=0.0, clock=clock)
    quiet.advance()
    quiet.finish()
    assert tty.getvalue() == ""


def test_diversity_reports_progress_on_stderr_off_a_terminal(tmp_path: Path) -> None:
    """Pipeline test on the simulator: each stage of a cluster-agent run prints plain progress lines."""
    texts = [f"Lesson {i}: how {w} works." for i, w in enumerate(["tides", "yeast", "rust", "orbits"] * 3)]
    data = tmp_path / "lessons.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    args = ["diversity", str(data), "--metrics", "context_length", "--lm", "sim/default", "-N", "4", "-K", "5",
            "-M", "2", "-J", "3", "--n-criteria", "2", "--threads", "2", "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "[diversity] offline metrics: lessons (1/1)" in result.stderr
    assert "[diversity] criteria: 2/2 rounds" in result.stderr
    assert "[diversity] cluster-agent on lessons: 4/4 rounds" in result.stderr
    assert "[diversity]" not in result.stdout  # the table on stdout stays clean for pipes


def test_version_prints_the_installed_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"synthdspy {importlib.metadata.version('synthdspy')}"
