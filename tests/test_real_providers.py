"""Generate and compile against an endpoint that misbehaves as hosted providers document: wrong key,
no quota, unknown model, dead server, truncation, hangs, rate limits, spending caps, two runs on one
directory, a key echoed in an error. All through dspy.LM -> ProviderEngine -> LiteLLM -> HTTP."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from synthdspy.config import load_experiment
from synthdspy.configio import ConfigError
from synthdspy.llm_failures import RunAbortedError
from synthdspy.provider_server import ProviderOptions
from synthdspy.sim_server import serve_provider

ROOT = Path(__file__).parent.parent
KEY = "sk-test-provider-key-0123456789"
KEY_ENV = "SYNTHDSPY_TEST_PROVIDER_KEY"


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


def experiment(tmp_path: Path, url: str, *extra: str, name: str = "grounded_qa.toml", roles=("generator", "judge")):
    sets = [f"output.dir={json.dumps(str(tmp_path / 'out'))}", "tracking.autolog=false"]
    for role in roles:
        sets += [f"lm.{role}.model=openai/sim-model", f"lm.{role}.api_base={json.dumps(url)}",
                 f"lm.{role}.api_key_env={KEY_ENV}", f"lm.{role}.num_retries=2", f"lm.{role}.timeout_s=5"]
    return load_experiment(ROOT / "experiments" / name, [*sets, *extra])


def files_text(directory: Path) -> str:
    """Every byte under ``directory`` (MLflow's database and artifacts included), as text."""
    return "".join(p.read_bytes().decode("utf-8", "replace") for p in directory.rglob("*") if p.is_file())


@pytest.mark.parametrize("fault, needle", [
    ({"api_key": "sk-the-right-key-000000"}, rf"auth error from lm.generator .*\${KEY_ENV}.*Incorrect API key"),
    ({"insufficient_quota": True}, "quota error from lm.generator .*You exceeded your current quota"),
    ({"models": ["another-model"]}, "unknown_model error from lm.generator openai/sim-model .*does not exist"),
])
def test_run_fatal_errors_stop_generate_at_once_naming_the_cause(tmp_path, fault, needle):
    from synthdspy.pipeline import run_generate

    with serve_provider(provider=ProviderOptions(**fault)) as ep:
        start = time.monotonic()
        with pytest.raises(RunAbortedError, match=needle) as info:  # traced: MLflow keeps the error in a span
            run_generate(experiment(tmp_path, ep.url, "tracking.autolog=true"), n=20, show_progress=False)
        assert time.monotonic() - start < 15
        assert ep.stats()["requests"] == 1  # slow start: one request, then the endpoint is aborted
    assert "\n" not in str(info.value)
    assert KEY not in str(info.value) and KEY not in files_text(tmp_path)  # the 401 echoes the key


def test_a_dead_endpoint_fails_generate_and_compile_fast_leaving_no_compiled_program(tmp_path):
    from synthdspy.pipeline import run_compile, run_generate

    dead = "http://127.0.0.1:9/v1"
    start = time.monotonic()
    with pytest.raises(RunAbortedError, match="circuit breaker"):
        run_generate(experiment(tmp_path, dead, "lm.generator.num_retries=1"), n=10, show_progress=False)
    assert time.monotonic() - start < 60
    exp = experiment(tmp_path, dead, "lm.generator.num_retries=0", "lm.judge.num_retries=0",
                     "compile.num_candidates=1", "seeds.dev_size=4", "seeds.train_size=4")
    with pytest.raises(RunAbortedError, match="held-out batches failed"):
        run_compile(exp)
    assert not list((tmp_path / "out").rglob("compiled_program.json"))
    assert not (tmp_path / "out" / "variants").exists() or not any((tmp_path / "out" / "variants").iterdir())


def test_truncated_answers_fail_their_units_as_truncated_without_retries(tmp_path, caplog):
    from synthdspy.pipeline import run_generate

    with serve_provider() as ep:
        exp = experiment(tmp_path, ep.url, "lm.generator.max_tokens=8", "gates=[]")
        with pytest.raises(RunAbortedError, match="record:truncated"):
            run_generate(exp, n=20, show_progress=False)
        requests = ep.stats()["requests"]
    failures = [json.loads(x) for x in (tmp_path / "out/generate/store/failures.jsonl").read_text().splitlines()]
    assert failures and all(f["class"] == "record:truncated" for f in failures)
    assert requests <= 2 * len(failures) + exp.lm.generator.concurrency
    assert "truncated due to exceeding" not in caplog.text  # DSPy's per-answer warning: the class says it


def test_hung_requests_time_out_and_are_retried(tmp_path):
    from synthdspy.pipeline import run_generate

    with serve_provider(provider=ProviderOptions(hang_rate=0.4, hang_s=60, seed=3)) as ep:
        exp = experiment(tmp_path, ep.url, "lm.generator.timeout_s=1", "lm.judge.timeout_s=1", "gates=[]",
                         "lm.generator.num_retries=4", "lm.judge.num_retries=4")
        start = time.monotonic()
        out = run_generate(exp, n=8, show_progress=False)
        assert time.monotonic() - start < 60
        assert ep.stats()["hung"] >= 1
    assert out.stats.passed >= 8


def test_rate_limits_are_learned_from_headers_and_nothing_is_paid_twice(tmp_path):
    from synthdspy.pipeline import run_generate
    from synthdspy.ratelimit import limiter_for

    with serve_provider(provider=ProviderOptions(rpm=600, tpm=2_000_000, server_error_rate=0.1, seed=1)) as ep:
        out = run_generate(experiment(tmp_path, ep.url), n=12, show_progress=False)
        stats = ep.stats()
        limiter = limiter_for("openai/sim-model", ep.url, 1)
    assert out.stats.passed >= 12 and stats["by_status"].get(500, 0) >= 1
    # the x-ratelimit headers reached the limiter through LiteLLM (the 429 share at a binding limit is
    # measured by benchmarks/provider_limits.py: a 60 s window is too long for a unit test)
    assert (limiter.stats.learned_rpm, limiter.stats.learned_tpm) == (600, 2_000_000)
    assert stats["duplicate_successes"] == 0  # a failed judge call is re-sent alone, never its unit


def test_units_in_flight_count_towards_n(tmp_path):
    from synthdspy.pipeline import run_generate

    with serve_provider() as ep:
        exp = experiment(tmp_path, ep.url, "gates=[]", "task.num_questions=1", "lm.generator.concurrency=8")
        out = run_generate(exp, n=10, show_progress=False)
        requests = ep.stats()["requests"]
    assert out.stats.passed >= 10 and out.exported == 10
    assert out.stats.units_run <= 11 and requests <= 11


def test_spending_cap_stops_the_run_and_a_higher_cap_resumes(tmp_path):
    from synthdspy.pipeline import run_generate

    price = "{ input_per_mtok = 2000.0, output_per_mtok = 8000.0 }"
    with serve_provider() as ep:
        exp = experiment(tmp_path, ep.url, "gates=[]", "lm.generator.concurrency=2",
                         f"lm.generator.price={price}", f"lm.judge.price={price}")
        first = run_generate(exp, n=12, show_progress=False, max_usd=0.5)
        assert first.stats.stopped_by == "budget" and first.stats.passed < 12
        per_unit = first.meter.cost_usd / max(first.stats.units_run, 1)
        assert first.meter.cost_usd <= 0.5 + 2 * per_unit + 1e-9  # the cap plus the units in flight
        requests = ep.stats()["requests"]
        again = run_generate(exp, n=12, show_progress=False, max_usd=0.5)  # the cap is the directory's
        assert again.stats.stopped_by == "budget" and again.stats.units_run == 0
        assert ep.stats()["requests"] == requests and again.spent_before_usd == pytest.approx(first.meter.cost_usd)
        second = run_generate(exp, n=12, show_progress=False, max_usd=100.0)
    assert second.stats.units_resumed == first.stats.units_run and second.stats.passed >= 12
    ledger = json.loads((tmp_path / "out/generate/store/spend.json").read_text())
    assert ledger["usd"] == pytest.approx(first.meter.cost_usd + second.meter.cost_usd)


def test_a_usd_cap_on_an_unpriced_model_is_refused(tmp_path):
    from synthdspy.pipeline import run_generate

    with pytest.raises(ConfigError, match=r"lm.generator model openai/sim-model has no known price"):
        run_generate(experiment(tmp_path, "http://127.0.0.1:9/v1"), n=2, show_progress=False, max_usd=1.0)


def test_a_second_generate_on_one_directory_refuses(tmp_path):
    from synthdspy.pipeline import run_generate
    from synthdspy.run_dir import exclusive_lock

    exp = experiment(tmp_path, "http://127.0.0.1:9/v1")
    with exclusive_lock(Path(exp.output.dir) / "generate"), \
            pytest.raises(ConfigError, match="another generate run .* is writing to this store"):
        run_generate(exp, n=2, show_progress=False)


def test_answers_cached_from_one_endpoint_are_not_replayed_for_another(tmp_path):
    from synthdspy.pipeline import run_generate

    with serve_provider() as ep:
        run_generate(experiment(tmp_path / "a", ep.url, "gates=[]"), n=2, show_progress=False)
    with pytest.raises(RunAbortedError):  # same model name, same prompts, a server that is down
        run_generate(experiment(tmp_path / "b", "http://127.0.0.1:9/v1", "gates=[]", "lm.generator.num_retries=0"),
                     n=2, show_progress=False)


@pytest.mark.parametrize("temperatures, sampling, calls_per_unit", [("[]", "n", 1), ("[0.3, 0.9]", "separate", 4)])
def test_grpo_asks_for_its_rollouts_as_n_choices_of_one_request(tmp_path, temperatures, sampling, calls_per_unit):
    from synthdspy.pipeline import run_generate

    with serve_provider() as ep:
        exp = experiment(tmp_path, ep.url, "gates=[]", "task.num_responses=4", f"task.temperatures={temperatures}",
                         "task.score_responses=false", "lm.generator.concurrency=1", name="grpo.toml")
        out = run_generate(exp, n=3, show_progress=False)
        requests = ep.stats()["requests"]
    records = [json.loads(x) for x in (out.store_dir / "records-00000.jsonl").read_text().splitlines()]
    assert all(len(r["responses"]) == 4 for r in records)
    assert all(len(set(r["responses"])) > 1 for r in records)  # n choices are distinct samples
    assert requests == out.stats.units_run * calls_per_unit
    assert {r["metadata"]["sampling"] for r in records} == {sampling}


def test_a_run_fatal_judge_error_in_compile_names_the_judge(tmp_path):
    from synthdspy.pipeline import run_compile

    with serve_provider(provider=ProviderOptions(models=["sim-model"])) as ep:
        exp = experiment(tmp_path, ep.url, "lm.judge.model=openai/no-such-model", "compile.num_candidates=1",
                         "seeds.dev_size=4", "seeds.train_size=4")
        with pytest.raises(RunAbortedError, match=r"unknown_model error from lm.judge openai/no-such-model"):
            run_compile(exp)


def test_estimate_projects_tokens_cost_and_time_and_keeps_its_records(tmp_path):
    from typer.testing import CliRunner

    from synthdspy.cli import app

    price = "{ input_per_mtok = 0.15, output_per_mtok = 0.6 }"
    with serve_provider() as ep:
        sets = [f"lm.{r}.{k}" for r in ("generator", "judge") for k in (
            "model=openai/sim-model", f"api_base={ep.url}", f"api_key_env={KEY_ENV}", f"price={price}")]
        args = ["generate", str(ROOT / "experiments" / "grounded_qa.toml"), "-n", "1000", "--estimate",
                "--set", f"output.dir={json.dumps(str(tmp_path / 'out'))}", "--set", "tracking.autolog=false"]
        for s in sets:
            args += ["--set", s]
        result = CliRunner().invoke(app, args)
        requests = ep.stats()["requests"]
    assert result.exit_code == 0, result.output
    assert "for -n 1000: about" in result.output and "$" in result.output and "minutes" in result.output
    units = [json.loads(x) for x in (tmp_path / "out/generate/store/units.jsonl").read_text().splitlines()]
    assert 3 <= len(units) <= 4 and requests < 40  # a few units (the generator's concurrency), not -n


class _Capture:
    """A one-answer OpenAI-compatible server that keeps every request's headers and body."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        seen = self.seen = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                """Quiet."""

            def do_POST(self) -> None:  # noqa: N802 - stdlib hook name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                seen.append(({k.lower(): v for k, v in self.headers.items()}, body))
                text = "[[ ## answer ## ]]\nok\n\n[[ ## completed ## ]]"
                out = json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
                                  "choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": text}}],
                                  "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.mark.parametrize("model, extra, expect_body, absent", [
    ("hosted_vllm/Qwen/Qwen2.5-7B-Instruct",
     {"top_p": 0.9, "seed": 7, "stop": ["END"], "extra_body": {"chat_template_kwargs": {"enable_thinking": False}},
      "extra_headers": {"X-Team": "data"}},
     {"top_p": 0.9, "seed": 7, "stop": ["END"], "chat_template_kwargs": {"enable_thinking": False},
      "temperature": 0.7, "max_tokens": 2048}, ["max_completion_tokens"]),
    ("openai/gpt-5-mini", {"reasoning_effort": "low"},
     {"reasoning_effort": "low", "max_completion_tokens": 16000}, ["temperature", "max_tokens"]),
    ("openai/o4-mini", {}, {"max_completion_tokens": 16000}, ["temperature"]),
])
def test_provider_parameters_and_reasoning_settings_reach_the_wire(model, extra, expect_body, absent):
    import dspy

    from synthdspy.config import LMRole
    from synthdspy.lm import UsageMeter, build_role

    class Ask(dspy.Signature):
        """Answer."""

        q: str = dspy.InputField()
        answer: str = dspy.OutputField()

    capture = _Capture()
    try:
        role = LMRole(model=model, api_base=capture.url, api_key_env=KEY_ENV, extra=extra, cache=False)
        with dspy.context(lm=build_role("generator", role, UsageMeter())):
            assert dspy.Predict(Ask)(q="hi").answer == "ok"
    finally:
        capture.server.shutdown()
    [(headers, body)] = capture.seen
    assert {k: body.get(k) for k in expect_body} == expect_body and not set(absent) & set(body)
    assert headers["authorization"] == f"Bearer {KEY}" and "synthdspy_endpoint" not in body
    assert headers.get("x-team") == extra.get("extra_headers", {}).get("X-Team")
