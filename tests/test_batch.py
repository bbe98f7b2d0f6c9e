"""Batch mode (``generate --batch``) over HTTP against the simulator endpoint's OpenAI files and
batches routes (``synthdspy.batch_server``): the endpoint's shapes and faults, rounds, persistence
across runs and a kill, resubmission of failed and expired requests, batch prices.

Pipeline tests: the answers come from the offline simulator and say nothing about data quality.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synthdspy.batch_server import batch_counts
from synthdspy.config import load_experiment
from synthdspy.configio import ConfigError
from synthdspy.provider_server import ProviderOptions
from synthdspy.sim_server import serve_provider

ROOT = Path(__file__).parent.parent
KEY = "sk-test-batch-key-0123456789"
KEY_ENV = "SYNTHDSPY_TEST_BATCH_KEY"
PRICE = "{input_per_mtok = 1.0, output_per_mtok = 4.0}"


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


def sets(out: Path, url: str, *extra: str) -> list[str]:
    """``--set`` overrides pointing generator and judge at ``url``, priced, writing under ``out``."""
    found = [f"output.dir={json.dumps(str(out))}", "tracking.autolog=false", "generate.batch_poll_s=0.05"]
    for role in ("generator", "judge"):
        found += [f"lm.{role}.model=openai/sim-model", f"lm.{role}.api_base={json.dumps(url)}",
                  f"lm.{role}.api_key_env={KEY_ENV}", f"lm.{role}.price={PRICE}", f"lm.{role}.timeout_s=10"]
    return [*found, *extra]


def experiment(out: Path, url: str, *extra: str):
    return load_experiment(ROOT / "experiments" / "grounded_qa.toml", sets(out, url, *extra))


def exported_ids(out: Path) -> list[str]:
    return [json.loads(line)["id"] for line in (out / "generate" / "records.jsonl").read_text().splitlines()]


def events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "generate" / "batches.jsonl").read_text().splitlines()]


def summary(out: Path) -> dict:
    return json.loads((out / "generate" / "batch_summary.json").read_text())


def upload(url: str, lines: list[dict]) -> str:
    import litellm

    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    return litellm.create_file(file=("in.jsonl", data), purpose="batch", custom_llm_provider="openai",
                               api_base=url, api_key=KEY).id


def chat_line(i: int, **body) -> dict:
    return {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "sim-model", "messages": [{"role": "user", "content": f"question {i}?"}], **body}}


def test_endpoint_reveals_a_batch_over_its_delay_and_writes_output_and_error_files():
    import litellm

    options = dict(custom_llm_provider="openai", api_key=KEY)
    with serve_provider(provider=ProviderOptions(batch_delay_s=1.0, batch_fail_rate=0.3, seed=3,
                                                 api_key=KEY)) as ep:
        file_id = upload(ep.url, [chat_line(i, max_tokens=40) for i in range(20)])
        batch = litellm.create_batch(completion_window="24h", endpoint="/v1/chat/completions",
                                     input_file_id=file_id, api_base=ep.url, **options)
        seen = [batch.status]
        while batch.status not in ("completed", "expired", "failed"):
            time.sleep(0.05)
            batch = litellm.retrieve_batch(batch_id=batch.id, api_base=ep.url, **options)
            seen.append(batch.status)
            if batch.status == "in_progress":
                assert batch.output_file_id is None and batch.request_counts.completed <= 20
        assert seen[0] == "validating" and "in_progress" in seen and "finalizing" in seen and seen[-1] == "completed"
        counts = batch.request_counts
        assert counts.total == 20 and counts.completed + counts.failed == 20 and 0 < counts.failed < 20
        out = litellm.file_content(file_id=batch.output_file_id, api_base=ep.url, **options).content
        err = litellm.file_content(file_id=batch.error_file_id, api_base=ep.url, **options).content
        answered = [json.loads(line) for line in out.decode().splitlines()]
        failed = [json.loads(line) for line in err.decode().splitlines()]
        assert len(answered) == counts.completed and len(failed) == counts.failed
        assert {a["custom_id"] for a in answered} | {f["custom_id"] for f in failed} == {f"r{i}" for i in range(20)}
        assert all(a["response"]["status_code"] == 200 and a["response"]["body"]["choices"] for a in answered)
        assert all(f["response"]["status_code"] == 500 and f["error"]["code"] == "server_error" for f in failed)
        assert batch_counts(ep.server) == {"files": 1, "submissions": 1, "batch_requests": 20,
                                           "retrievals": len(seen) - 1}


def test_endpoint_expires_batches_refuses_bad_lines_and_wrong_keys():
    import litellm

    options = dict(custom_llm_provider="openai", api_key=KEY)
    with serve_provider(provider=ProviderOptions(batch_expire_rate=0.5, seed=1, api_key=KEY)) as ep:
        batch = litellm.create_batch(completion_window="24h", endpoint="/v1/chat/completions", api_base=ep.url,
                                     input_file_id=upload(ep.url, [chat_line(i) for i in range(10)]), **options)
        batch = litellm.retrieve_batch(batch_id=batch.id, api_base=ep.url, **options)
        assert batch.status == "expired" and batch.expired_at is not None and batch.request_counts.failed > 0
        err = litellm.file_content(file_id=batch.error_file_id, api_base=ep.url, **options).content.decode()
        assert {json.loads(line)["error"]["code"] for line in err.splitlines()} == {"batch_expired"}
        bad = [chat_line(0), {**chat_line(1), "custom_id": "r0"}]  # a duplicate custom_id
        batch = litellm.create_batch(completion_window="24h", endpoint="/v1/chat/completions", api_base=ep.url,
                                     input_file_id=upload(ep.url, bad), **options)
        batch = litellm.retrieve_batch(batch_id=batch.id, api_base=ep.url, **options)
        assert batch.status == "failed" and "duplicate custom_id" in batch.errors.data[0].message
        with pytest.raises(Exception, match="Incorrect API key"):
            litellm.retrieve_batch(batch_id=batch.id, api_base=ep.url, custom_llm_provider="openai", api_key="sk-bad")


def test_batch_run_gives_the_online_records_at_half_the_price_in_rounds(tmp_path):
    """Online and batch runs on two endpoints (separate response-cache keys): the same exported
    record ids, no chat request in batch mode, one submission per round, half the price."""
    from synthdspy.pipeline import run_generate

    n = 8
    with serve_provider() as online_ep, serve_provider(provider=ProviderOptions(batch_delay_s=0.2)) as batch_ep:
        online = run_generate(experiment(tmp_path / "online", online_ep.url, "lm.generator.concurrency=1"), n,
                              export=("jsonl",), show_progress=False)
        batch = run_generate(experiment(tmp_path / "batch", batch_ep.url, "generate.batch=true"), n,
                             export=("jsonl",), show_progress=False)
        counts, chat = batch_counts(batch_ep.server), batch_ep.stats()["requests"]
    assert exported_ids(tmp_path / "batch") == exported_ids(tmp_path / "online")
    assert batch.stats.passed >= n and chat == 0
    s = summary(tmp_path / "batch")
    # qa then two judges per question: a depth-5 program, plus a second wave of units once the
    # yield per unit is known
    assert s["rounds"] >= 5 and counts["submissions"] == s["rounds"] == len(events(tmp_path / "batch")) // 2
    assert counts["batch_requests"] == s["answers"] == batch.meter.calls
    assert batch.meter.cost_usd == pytest.approx(s["cost_usd"]) == pytest.approx(s["online_usd"] / 2)
    per_record = (batch.meter.cost_usd / batch.stats.passed) / (online.meter.cost_usd / online.stats.passed)
    assert 0.35 < per_record < 0.65  # about half per passed record (the runs differ in how many units they ran)


def test_no_wait_runs_exit_while_a_batch_runs_and_a_rerun_polls_it(tmp_path):
    from synthdspy.pipeline import run_generate

    with serve_provider(provider=ProviderOptions(batch_delay_s=0.8)) as ep:
        exp = experiment(tmp_path, ep.url, "generate.batch=true", "generate.batch_wait=false")
        first = run_generate(exp, 4, show_progress=False)
        assert first.stats.stopped_by == "batch_pending" and first.stats.passed == 0
        assert batch_counts(ep.server)["submissions"] == 1
        runs = 1
        while (out := run_generate(exp, 4, show_progress=False)).stats.stopped_by == "batch_pending":
            runs += 1
            opened = [e for e in events(tmp_path) if e["event"] == "submitted"]
            closed = [e for e in events(tmp_path) if e["event"] == "collected"]
            assert len(opened) == len(closed) + 1 == batch_counts(ep.server)["submissions"]  # never two at once
            assert runs < 60
        counts = batch_counts(ep.server)
    assert runs > counts["submissions"]  # some runs only polled a running batch
    assert out.stats.passed >= 4
    s = summary(tmp_path)
    assert counts["submissions"] == s["rounds"] and counts["batch_requests"] == s["answers"]


def test_failed_and_expired_requests_are_sent_again_in_the_next_round(tmp_path):
    from synthdspy.pipeline import run_generate

    options = ProviderOptions(batch_fail_rate=0.25, batch_expire_rate=0.15, seed=7)
    with serve_provider(provider=options) as ep:
        out = run_generate(experiment(tmp_path, ep.url, "generate.batch=true"), 6, show_progress=False)
        counts = batch_counts(ep.server)
    s = summary(tmp_path)
    assert out.stats.passed >= 6 and out.stats.failed_units == 0
    assert s["failed_attempts"] > 0 and counts["batch_requests"] == s["answers"] + s["failed_attempts"]
    assert any(e.get("status") == "expired" for e in events(tmp_path))
    batches = tmp_path / "generate" / "batches"
    failed = {json.loads(line)["digest"] for line in (batches / "answers.jsonl").read_text().splitlines()
              if "error" in json.loads(line)}
    sent: dict[str, int] = {}
    for path in batches.glob("*.requests.jsonl"):
        for line in path.read_text().splitlines():
            sent[json.loads(line)["custom_id"]] = sent.get(json.loads(line)["custom_id"], 0) + 1
    assert failed and all(sent[digest] >= 2 for digest in failed)  # each failed request went out again


def test_truncated_batch_answers_fail_their_units_as_online_and_are_not_resent(tmp_path):
    from synthdspy.llm_failures import RunAbortedError
    from synthdspy.pipeline import run_generate

    with serve_provider() as ep:
        with pytest.raises(RunAbortedError, match="circuit breaker: the first 5 units all failed.*record:truncated 5"):
            run_generate(experiment(tmp_path, ep.url, "generate.batch=true", "lm.generator.max_tokens=5"), 6,
                         show_progress=False)
        counts = batch_counts(ep.server)
    sent = [json.loads(line)["custom_id"] for path in (tmp_path / "generate" / "batches").glob("*.requests.jsonl")
            for line in path.read_text().splitlines()]
    assert counts["batch_requests"] == len(sent) == len(set(sent))  # truncated answers are final: never sent again
    failures = (tmp_path / "generate" / "store" / "failures.jsonl").read_text().splitlines()
    assert len(failures) == 5 and all(json.loads(line)["class"] == "record:truncated" for line in failures)


def test_batch_mode_refuses_providers_without_a_batch_api_and_all_simulated_roles(tmp_path):
    from synthdspy.pipeline import run_generate

    exp = experiment(tmp_path, "http://127.0.0.1:9/v1", "generate.batch=true",
                     "lm.judge.model=anthropic/claude-3-5-haiku-latest")
    with pytest.raises(ConfigError, match="lm.judge.model anthropic/.*OpenAI's Batch API"):
        run_generate(exp, 2, show_progress=False)
    exp = load_experiment(ROOT / "experiments" / "grounded_qa.toml",
                          [f"output.dir={json.dumps(str(tmp_path / 'sim'))}", "generate.batch=true"])
    with pytest.raises(ConfigError, match="in-process simulator"):
        run_generate(exp, 2, show_progress=False)


def test_cli_batch_run_killed_while_a_batch_is_in_flight_resumes_without_resubmitting(tmp_path):
    """``synthdspy generate --batch`` is killed (SIGKILL) while its first batch runs; the re-run
    polls that batch: the endpoint counts one submission per round over both runs."""
    with serve_provider(provider=ProviderOptions(batch_delay_s=2.0)) as ep:
        command = [str(Path(sys.executable).parent / "synthdspy"), "generate",
                   str(ROOT / "experiments" / "grounded_qa.toml"), "-n", "4", "--batch", "--export", "jsonl"]
        for item in sets(tmp_path, ep.url):
            command += ["--set", item]
        env = {**os.environ, KEY_ENV: KEY}
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            ledger = tmp_path / "generate" / "batches.jsonl"
            while not (ledger.exists() and ledger.read_text()) and time.monotonic() < deadline:
                time.sleep(0.05)  # the job id is on disk: the batch is in flight (2 s)
            assert batch_counts(ep.server)["submissions"] == 1
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert [e["event"] for e in events(tmp_path)] == ["submitted"]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        counts = batch_counts(ep.server)
    assert done.returncode == 0, done.stdout + done.stderr
    s = summary(tmp_path)
    assert counts["submissions"] == s["rounds"] and counts["batch_requests"] == s["answers"]
    assert "saved" in done.stdout and len(exported_ids(tmp_path)) == 4
