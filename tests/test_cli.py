"""The command line: tasks listing and the doctor check, through typer's runner."""

from pathlib import Path

from typer.testing import CliRunner

from synthdspy.cli import app

ROOT = Path(__file__).parent.parent
runner = CliRunner()


def test_tasks_lists_every_registered_task_and_gate_with_defaults():
    from synthdspy.catalog import GATES, TASKS

    result = runner.invoke(app, ["tasks"], terminal_width=200)
    assert result.exit_code == 0
    for name in [*TASKS, *GATES]:
        assert name in result.output
    assert "PydanticUndefined" not in result.output and "num_questions" in result.output


def test_doctor_reports_each_role_and_fails_on_an_unreachable_model(monkeypatch):
    exp = str(ROOT / "experiments" / "quickstart.toml")
    ok = runner.invoke(app, ["doctor", exp])
    assert ok.exit_code == 0 and ok.output.count("ok") >= 3
    monkeypatch.setenv("DOCTOR_TEST_KEY", "sk-doctor-test")
    bad = runner.invoke(app, ["doctor", exp, "--set", "lm.judge.model=openai/gpt-4o-mini",
                              "--set", "lm.judge.api_key_env=DOCTOR_TEST_KEY",
                              "--set", "lm.judge.api_base=http://127.0.0.1:9/v1", "--set", "lm.judge.num_retries=0"])
    assert bad.exit_code == 1 and "fail" in bad.output and "sk-doctor-test" not in bad.output
