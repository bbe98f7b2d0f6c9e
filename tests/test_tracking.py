"""MLflow params are flattened and never carry secrets; a local store keeps its artifacts beside it."""

from pathlib import Path

import mlflow
import pytest

from synthdspy import tracking
from synthdspy.tracking import REDACTED, flatten, scrub_env_secrets


def test_flatten_nested_and_redacts_secrets():
    flat = flatten({"lm": {"generator": {"model": "openai/x", "api_key": "sk-abc", "api_key_env": "OPENAI_API_KEY"}},
                    "headers": {"Authorization": "Bearer t0k"}, "n": 3, "tags": [1, 2]})
    assert flat["lm.generator.model"] == "openai/x"
    assert flat["lm.generator.api_key"] == REDACTED
    assert flat["lm.generator.api_key_env"] == "OPENAI_API_KEY"
    assert flat["headers.Authorization"] == REDACTED
    assert flat["n"] == 3 and flat["tags"] == "[1, 2]"


def test_counts_named_like_tokens_are_not_redacted():
    flat = flatten({"lm": {"judge": {"max_tokens": 512, "hf_token": "hf_x", "client_secret": "s",
                                     "aws_secret_access_key": "k"}}, "billed_tokens": 10})
    assert flat["lm.judge.max_tokens"] == 512 and flat["billed_tokens"] == 10
    judge = {k.split(".")[-1]: v for k, v in flat.items() if k.startswith("lm.judge.")}
    assert judge["hf_token"] == judge["client_secret"] == judge["aws_secret_access_key"] == REDACTED


def test_scrub_env_secrets(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_API_KEY", "supersecretvalue123")
    assert "supersecretvalue123" not in scrub_env_secrets("error calling with key supersecretvalue123")


def test_local_store_keeps_artifacts_in_the_output_directory(tmp_path, monkeypatch):
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    out = tmp_path / "out"
    tracking.configure(None, "artifacts-here", out)
    note = tmp_path / "note.txt"
    note.write_text("kept")
    with tracking.run("r") as active:
        mlflow.log_artifact(str(note))
    run = mlflow.get_run(active.info.run_id)
    where = Path(run.info.artifact_uri.removeprefix("file://"))
    assert where.is_relative_to(out.resolve() / "mlartifacts") and (where / "note.txt").read_text() == "kept"
    assert list(cwd.iterdir()) == []
    tracking.configure(None, "artifacts-here", out)  # a second run finds the experiment
    assert mlflow.get_experiment_by_name("artifacts-here").artifact_location == (out.resolve() / "mlartifacts").as_uri()


def test_registered_key_variables_are_scrubbed_whatever_their_name(monkeypatch, tmp_path):
    from synthdspy.run_dir import UnitJournal

    monkeypatch.setenv("MY_LLM_CREDENTIAL", "abcd1234efgh5678")
    assert "abcd1234efgh5678" in scrub_env_secrets("failed with abcd1234efgh5678")  # not secret-looking
    tracking.register_secret_env("MY_LLM_CREDENTIAL")
    UnitJournal(tmp_path).fail("s#0", "s", 0, RuntimeError("401 for key abcd1234efgh5678"), attempts=3)
    assert "abcd1234efgh5678" not in (tmp_path / "failures.jsonl").read_text()
    assert REDACTED in (tmp_path / "failures.jsonl").read_text()


def test_mlflow_db_is_created_whole_and_a_half_created_one_is_a_one_line_error(tmp_path):
    import sqlite3

    from synthdspy.configio import ConfigError

    tracking.configure(None, "exp", tmp_path / "new")
    assert [p.name for p in (tmp_path / "new").iterdir() if p.name.startswith(".")] == []  # no temp file left
    assert tracking.ensure_sqlite_store(tmp_path / "new" / "mlflow.db") is None  # complete: accepted
    half = tmp_path / "half"
    half.mkdir()
    with sqlite3.connect(half / "mlflow.db") as db:  # what a kill during MLflow's migrations leaves
        db.execute("create table experiments (experiment_id integer)")
    with pytest.raises(ConfigError, match=r"mlflow.db: not a complete MLflow database .* move it aside"):
        tracking.configure(None, "exp", half)


def test_an_active_model_of_another_store_does_not_break_the_next_run(tmp_path):
    """``mlflow.dspy.load_model`` makes the loaded model active process-wide; a run in another
    output directory must still log its metrics (before: a foreign-key error aborted it)."""
    tracking.configure(None, "first", tmp_path / "a")
    mlflow.set_active_model(name="loaded-variant")
    try:
        tracking.configure(None, "second", tmp_path / "b")
        with tracking.run("r") as active:
            tracking.log_metrics({"passed": 3})
        assert mlflow.get_run(active.info.run_id).data.metrics["passed"] == 3
        assert mlflow.get_active_model_id() is None
        tracking.configure(None, "first", tmp_path / "a")
        kept = mlflow.set_active_model(name="loaded-variant").model_id
        tracking.configure(None, "first", tmp_path / "a")  # the store holds it: it stays active
        assert mlflow.get_active_model_id() == kept
    finally:
        mlflow.clear_active_model()


def test_redact_keeps_structure_and_hides_credential_values():
    data = {"gates": [{"name": "dedup", "api_key": "sk-x", "params": {"hf_token": "hf_y", "max_tokens": 5}}]}
    assert tracking.redact(data) == {"gates": [{"name": "dedup", "api_key": REDACTED,
                                                "params": {"hf_token": REDACTED, "max_tokens": 5}}]}
