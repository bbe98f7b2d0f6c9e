"""Compiled variants as MLflow models and registered prompts; generate's records as an MLflow table.

Pipeline tests on the simulator (offline and over the provider-realistic HTTP endpoint): they check
what is logged, loaded and served, never the quality of the simulator's text.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dspy
import mlflow
import pytest

from synthdspy.config import load_experiment
from synthdspy.program import SynthesisProgram
from synthdspy.provider_server import ProviderOptions
from synthdspy.sim_server import serve_provider

ROOT = Path(__file__).parent.parent
KEY_ENV = "SYNTHDSPY_MLFLOW_TEST_KEY"
KEY = "sk-mlflow-native-fake-key-5f2c9a0e"
HEADER_SECRET = "hdr-secret-value-77aa01"


def quick(tmp_path: Path, *extra: str):
    # seeds of their own (sampling_seed): the session's DSPy cache then never serves another test's compile
    sets = [f"output.dir={json.dumps(str(tmp_path / 'out'))}", "seeds.train_size=4", "seeds.dev_size=4",
            "seeds.sampling_seed=11",
            "compile.batch_size=2", "compile.num_candidates=1", "tracking.autolog=false", *extra]
    return load_experiment(ROOT / "experiments" / "quickstart.toml", sets)


def over_http(url: str) -> list[str]:
    """Overrides pointing every role at the endpoint with a key from ``$KEY_ENV``."""
    sets = []
    for role in ("generator", "judge", "reflection"):
        sets += [f"lm.{role}.model=openai/sim-model", f"lm.{role}.api_base={json.dumps(url)}",
                 f"lm.{role}.api_key_env={KEY_ENV}", f"lm.{role}.num_retries=1", f"lm.{role}.timeout_s=10"]
    return sets


def files_text(directory: Path) -> str:
    """Every byte under ``directory`` (MLflow's database and artifacts included), as text."""
    return "".join(p.read_bytes().decode("utf-8", "replace") for p in directory.rglob("*") if p.is_file())


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


def test_compiled_variant_loads_back_runs_as_pyfunc_and_registers_its_prompts(tmp_path):
    from synthdspy.mlflow_variants import LoggedVariant, prompt_name
    from synthdspy.pipeline import run_compile
    from synthdspy.seeds.source import experiment_seeds

    exp = quick(tmp_path, "compile.variant=first")
    out = run_compile(exp)
    saved = SynthesisProgram.load_program(out.program_path)
    run = mlflow.get_run(out.run_id)
    uri = run.data.tags["model_uri"]
    loaded = mlflow.dspy.load_model(uri)
    assert isinstance(loaded, LoggedVariant) and loaded.program.program_hash == saved.program_hash
    for (name, p), (_, q) in zip(loaded.program.named_predictors(), saved.named_predictors(), strict=True):
        assert p.signature.instructions == q.signature.instructions and len(p.demos) == len(q.demos), name

    seed = experiment_seeds(exp.seeds, 1)[0]
    answer = mlflow.pyfunc.load_model(uri).predict(seed.data)
    assert answer["records"] and all(r["provenance"]["program_hash"] == saved.program_hash for r in answer["records"])
    assert all(r["verdicts"] and r["verdicts"][0]["gate"] == "reward" for r in answer["records"])

    client = mlflow.MlflowClient()
    for name, predictor in saved.named_predictors():
        versions = client.search_prompt_versions(prompt_name(exp.name, name))
        assert [(v.template, v.tags["variant"], v.tags["program_hash"]) for v in versions] == [
            (predictor.signature.instructions, "first", saved.program_hash)]
    linked = json.loads(run.data.tags["mlflow.linkedPrompts"])
    assert {p["name"] for p in linked} == {prompt_name(exp.name, n) for n, _ in saved.named_predictors()}


def test_two_variants_are_two_versions_of_each_prompt_and_relogging_adds_none(tmp_path):
    from synthdspy import tracking
    from synthdspy.mlflow_variants import log_variant, prompt_name

    exp = quick(tmp_path)
    tracking.configure(None, "variants", tmp_path / "out")
    first = SynthesisProgram.from_experiment(exp)
    second = SynthesisProgram.from_experiment(exp)
    write = dict(second.named_predictors())["task.write"]
    write.signature = write.signature.with_instructions("Write the lesson as a dialogue between two readers.")
    second.refresh_hash()
    for variant, program in (("a", first), ("b", second), ("a", first)):
        path = program.save_program(tmp_path / variant / "compiled_program.json")
        with tracking.run(variant):
            log_variant(path, exp, variant, "hash")
    versions = mlflow.MlflowClient().search_prompt_versions(prompt_name(exp.name, "task.write"))
    by_variant = {v.tags["variant"]: v for v in versions}
    assert len(versions) == 2 and set(by_variant) == {"a", "b"}
    assert by_variant["b"].template == "Write the lesson as a dialogue between two readers."
    assert by_variant["a"].template == dict(first.named_predictors())["task.write"].signature.instructions
    assert by_variant["a"].tags["program_hash"] != by_variant["b"].tags["program_hash"]
    assert prompt_name(exp.name, "gates.gates[0].judge") == "quickstart.gates.gates.0.judge"


def test_no_key_header_or_url_credential_reaches_the_logged_model(tmp_path):
    """The LM config carries a key (from the environment), a credential header and a URL password;
    a DSPy LM holding the key is the active one while the model is logged. None of it may be in the
    model's files or MLflow's database, and the model still names the key's variable."""
    from synthdspy import tracking
    from synthdspy.lm import build_lms
    from synthdspy.mlflow_variants import log_variant

    with serve_provider(provider=ProviderOptions(api_key=KEY)) as ep:
        url = ep.url.replace("http://", "http://user:url-password-1234@")
        exp = quick(tmp_path, *over_http(ep.url), f"lm.generator.api_base={json.dumps(url + '?key=query-secret-9')}",
                    f'lm.judge.extra={{ extra_headers = {{ X-Api-Key = "{HEADER_SECRET}" }}, top_p = 0.9 }}')
        lms = build_lms(exp.lm)
        assert lms.judge("Reply ready")  # the keyed LM works against the endpoint
        tracking.configure(None, "secrets", tmp_path / "out")
        path = SynthesisProgram.from_experiment(exp).save_program(tmp_path / "p.json")
        with dspy.context(lm=lms.judge), tracking.run("v") as active:
            log = log_variant(path, exp, "v", "hash")
    stored = files_text(tmp_path / "out")
    for secret in (KEY, HEADER_SECRET, "url-password-1234", "query-secret-9"):
        assert secret not in stored, secret
    assert active.info.run_id in stored  # the grep did read MLflow's files
    kept = mlflow.dspy.load_model(log.model_uri).lm_config
    assert kept["judge"]["api_key_env"] == KEY_ENV and kept["judge"]["extra"] == {"top_p": 0.9}
    assert kept["generator"]["api_base"] == ep.url


def _rejecting(tmp_path: Path, *extra: str):
    return quick(tmp_path, "gates[0].threshold=8", *extra)


def test_generate_logs_every_record_with_its_verdicts_as_a_table_and_the_gate_report(tmp_path):
    from synthdspy.gate_report import gate_report
    from synthdspy.pipeline import run_generate
    from synthdspy.store import read_records

    with serve_provider() as ep:
        out = run_generate(_rejecting(tmp_path, *over_http(ep.url)), n=6, show_progress=False)
    records = list(read_records(out.store_dir))
    assert any(r.passed for r in records) and any(not r.passed for r in records)  # both kinds are in the table
    client = mlflow.MlflowClient(out.tracking_uri)
    run = client.get_run(out.run_id)
    assert {"path": "records.json", "type": "table"} in json.loads(run.data.tags["mlflow.loggedArtifacts"])
    table = mlflow.load_table("records.json", run_ids=[out.run_id])
    assert list(table["id"]) == [r.id for r in records]
    assert list(table["passed"]) == [r.passed for r in records]
    assert list(table["reward.score"]) == [r.verdicts[0].score for r in records]
    assert list(table["reward.reason"]) == [r.verdicts[0].reason for r in records]
    rejected = table[~table["passed"]]
    assert set(rejected["failed_gates"]) == {"reward"}
    artifacts = {a.path for a in client.list_artifacts(out.run_id)}
    assert {"records.json", "gate_report.json", "gate_report.md", "generation.json"} <= artifacts
    report = gate_report(out.store_dir)
    assert run.data.metrics["gate.reward.pass_rate"] == pytest.approx(report.gates[0].pass_rate)
    facts = json.loads((out.store_dir.parent / "generation.json").read_text())
    assert facts["lms"]["generator"] == "openai/sim-model" and facts["simulated"] is True  # the simulator's server
    assert KEY not in files_text(tmp_path / "out")


def test_records_table_puts_a_second_verdict_of_a_gate_in_its_own_columns():
    from synthdspy.mlflow_records import records_table
    from synthdspy.records import Record, Verdict

    a = Record(id="a", task="t", output="x", verdicts=[Verdict(gate="g", passed=True, score=1.0),
                                                       Verdict(gate="g", passed=False, reason="dup: y")])
    b = Record(id="b", task="t", output="y", metadata={"page": 2}, verdicts=[Verdict(gate="h", passed=True)])
    table = records_table([a, b])
    assert table["g.passed"] == [True, None] and table["g#2.reason"] == ["dup: y", None]
    assert table["h.passed"] == [None, True] and table["failed_gates"] == ["g", ""]
    assert table["metadata"] == [None, '{"page": 2}'] and table["passed"] == [False, True]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mlflow_ui_server_serves_the_records_table(tmp_path):
    """What the UI's run page fetches: the run's artifact list and the table JSON, over HTTP from
    ``mlflow server`` on the run's database (the page itself was checked in a browser, see README)."""
    from synthdspy.pipeline import run_generate

    out = run_generate(_rejecting(tmp_path), n=3, show_progress=False)
    port = _free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", out.tracking_uri, "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1"]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "mlflow server did not start"
                time.sleep(0.5)
        listing = json.load(urllib.request.urlopen(
            f"{base}/ajax-api/2.0/mlflow/artifacts/list?run_id={out.run_id}", timeout=30))
        assert "records.json" in {f["path"] for f in listing["files"]}
        table = json.load(urllib.request.urlopen(f"{base}/get-artifact?path=records.json&run_uuid={out.run_id}",
                                                 timeout=30))
        ids = [row[table["columns"].index("id")] for row in table["data"]]
        assert "reward.passed" in table["columns"] and len(ids) == len(set(ids)) >= 3
    finally:
        server.terminate()
        server.wait(timeout=30)
