"""Base (non-chat) models as generators: ``[lm.<role>] model_type = "text"`` with a URIAL-style prefix.

The rendering tests check the prompt a base model receives. The rest are pipeline tests over the
simulator (in process, or behind the provider-realistic endpoint's ``/v1/completions`` route as a
toy base model): they check plumbing (what is sent, stop sequences, retries, parse failures,
config errors), never the quality of the text, which the simulator cannot speak to.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import datasets
import dspy
import pytest

from synthdspy import base_sim
from synthdspy.base_prefix import STOP, BasePrompt, load_prefix
from synthdspy.config import load_experiment
from synthdspy.configio import ConfigError
from synthdspy.provider_server import ProviderOptions
from synthdspy.sim_server import serve_provider
from synthdspy.simulator import count_tokens

ROOT = Path(__file__).parent.parent
EXPERIMENT = ROOT / "experiments" / "base_model_qa.toml"
URIAL = (ROOT / "synthdspy" / "data" / "urial_prefix.txt").read_text(encoding="utf-8")
KEY = "sk-test-base-model-key-0123456789"
KEY_ENV = "SYNTHDSPY_TEST_BASE_MODEL_KEY"


class _QA(dspy.Signature):
    """Write a question about the topic and answer it."""

    topic: str = dspy.InputField()
    question: str = dspy.OutputField()
    answer: str = dspy.OutputField()


def _chat_messages(demos: list[dict] | None = None) -> list[dict]:
    return dspy.ChatAdapter().format(_QA, demos or [], {"topic": "volcanoes"})


def experiment(tmp_path: Path, url: str, *extra: str):
    """base_model_qa.toml with the generator (a text model) on the endpoint at ``url``."""
    sets = [f"output.dir={json.dumps(str(tmp_path / 'out'))}", "tracking.autolog=false",
            "lm.generator.model=openai/sim-model", f"lm.generator.api_base={json.dumps(url)}",
            f"lm.generator.api_key_env={KEY_ENV}", "lm.generator.num_retries=3", "lm.generator.timeout_s=5"]
    return load_experiment(EXPERIMENT, [*sets, *extra])


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


@pytest.fixture
def received(monkeypatch) -> list[dict]:
    """The bodies the endpoint's /v1/completions route answered (appended as they arrive)."""
    bodies: list[dict] = []
    answer = base_sim.text_completion_body

    def spy(body: dict, *args, **kwargs) -> dict:
        bodies.append(body)
        return answer(body, *args, **kwargs)

    monkeypatch.setattr(base_sim, "text_completion_body", spy)
    return bodies


def _post(url: str, body: dict) -> tuple[int, dict, dict]:
    request = urllib.request.Request(url + "/completions", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def test_render_puts_the_prefix_first_demos_as_blocks_and_primes_the_first_output_field():
    demo = dspy.Example(topic="tides", question="What moves the tides?", answer="Mainly the Moon.")
    rendered = BasePrompt(load_prefix("urial", None)).render(_chat_messages([demo]))
    assert rendered.text.startswith(URIAL.strip())
    tail = rendered.text[len(URIAL.strip()):]
    # the DSPy demo is a query/answer block before the last query, which holds the task and input
    assert tail.index("What moves the tides?") < tail.index("your objective is:") < tail.index("volcanoes")
    assert tail.count("# Query:\n```\n") == 2 and tail.count("# Answer:\n```\n") == 2
    assert rendered.primer == "[[ ## question ## ]]\n"
    assert rendered.text.endswith("```\n\n# Answer:\n```\n[[ ## question ## ]]\n")
    bare = BasePrompt(load_prefix("none", None)).render(_chat_messages())
    assert bare.text.startswith("# Query:\n```\nYour input fields are:")


def test_the_toy_recovers_the_chat_messages_from_a_rendered_prompt():
    demo = dspy.Example(topic="tides", question="What moves the tides?", answer="Mainly the Moon.")
    messages = _chat_messages([demo])
    recovered = base_sim.chat_view(BasePrompt(URIAL).render(messages).text)
    strip = [(m["role"], m["content"].strip()) for m in messages]
    assert [(m["role"], m["content"].strip()) for m in recovered] == strip  # the prefix's examples are skipped


def test_finish_cuts_at_stop_sequences_and_the_closing_fence_but_keeps_code_blocks():
    finish = BasePrompt.finish
    assert finish("Q?\n\n[[ ## answer ## ]]\nA.\n\n[[ ## completed ## ]]\n```", "[[ ## q ## ]]\n") == \
        "[[ ## q ## ]]\nQ?\n\n[[ ## answer ## ]]\nA.\n\n"
    assert finish("A.\n```\n\n# Query:\n```\nnext", "") == "A."
    code = "Use:\n```python\nprint(1)\n```"
    assert finish(code + "\n\n[[ ## completed ## ]]", "") == code + "\n\n"
    assert finish(code + "\n```", "") == code


def test_the_prefix_and_stop_sequences_reach_the_completions_endpoint(tmp_path, received):
    from synthdspy.lm import build_role
    from synthdspy.usage import UsageMeter

    own = tmp_path / "prefix.txt"
    own.write_text("# Instruction\n\nOur own preamble for a careful assistant.\n", encoding="utf-8")
    with serve_provider() as ep:
        for prefix, start in ((None, URIAL.strip()), (own, "# Instruction\n\nOur own preamble")):
            update = {"prefix_file": prefix} if prefix else {}
            exp = experiment(tmp_path, ep.url)
            role = exp.lm.generator.model_copy(update={"cache": False, **update})
            meter = UsageMeter()
            with dspy.context(lm=build_role("generator", role, meter), adapter=dspy.ChatAdapter()):
                result = dspy.Predict(_QA)(topic="volcanoes")
            body = received[-1]
            assert body["prompt"].startswith(start) and body["prompt"].endswith("[[ ## question ## ]]\n")
            assert "volcanoes" in body["prompt"] and "messages" not in body
            assert set(STOP) <= set(body["stop"]) and body["model"] == "sim-model"
            assert result.question and result.answer and "# Query" not in result.answer
            usage = meter.roles["generator"]
            assert usage.calls == 1 and usage.prompt_tokens > count_tokens(start) + count_tokens(body["prompt"][-600:])
        stats = ep.stats()
    assert stats["requests"] == 2 and stats["by_status"] == {200: 2}


def test_the_toy_base_model_rambles_into_a_next_query_unless_stopped():
    prompt = BasePrompt(URIAL).render(_chat_messages()).text
    with serve_provider() as ep:
        status, _, free = _post(ep.url, {"model": "sim-model", "prompt": prompt, "max_tokens": 400})
        _, _, stopped = _post(ep.url, {"model": "sim-model", "prompt": prompt, "max_tokens": 400, "stop": list(STOP)})
    assert status == 200 and free["object"] == "text_completion"
    assert "\n# Query:" in free["choices"][0]["text"] and "\n# Query:" not in stopped["choices"][0]["text"]
    assert stopped["choices"][0]["finish_reason"] == "stop"
    assert stopped["usage"]["completion_tokens"] < free["usage"]["completion_tokens"]
    assert stopped["usage"]["prompt_tokens"] == free["usage"]["prompt_tokens"] > 300


def test_generate_with_a_text_generator_over_http_produces_records(tmp_path, received):
    from synthdspy.pipeline import run_generate

    with serve_provider() as ep:
        out = run_generate(experiment(tmp_path, ep.url), n=4, show_progress=False)
        stats = ep.stats()
    assert out.stats.passed >= 4 and out.stats.failed_units == 0
    assert stats["requests"] == len(received) >= 2  # every generator call went to /v1/completions
    assert all(body["prompt"].startswith(URIAL.strip()) for body in received)
    passed = list(datasets.load_from_disk(str(out.dataset_dir)))
    assert len(passed) == 4 and all(r["instruction"] and r["output"] for r in passed)
    assert not any("[[ ##" in r["output"] or "# Query" in r["output"] or "```" in r["output"] for r in passed)
    assert out.meter.roles["generator"].calls == len(received)


def test_the_completions_route_answers_429_with_retry_after_and_rate_limit_headers():
    with serve_provider(provider=ProviderOptions(rpm=2)) as ep:
        answers = [_post(ep.url, {"model": "sim-model", "prompt": "x", "max_tokens": 5}) for _ in range(3)]
        stats = ep.stats()
    assert [status for status, _, _ in answers] == [200, 200, 429]
    _, headers, body = answers[2]
    assert body["error"]["code"] == "rate_limit_exceeded" and "Rate limit reached" in body["error"]["message"]
    assert 1 <= int(headers["retry-after"]) <= 60 and headers["x-ratelimit-limit-requests"] == "2"
    assert answers[0][1]["x-ratelimit-remaining-requests"] == "1"
    assert stats["requests"] == 3 and stats["rate_limited"] == 1


def test_rate_limited_completions_are_retried_and_the_run_completes(tmp_path):
    from synthdspy.pipeline import run_generate

    with serve_provider(rate_limit_rate=0.6, retry_after_s=0.1, seed=2) as ep:
        exp = experiment(tmp_path, ep.url, "gates=[]", "task.num_questions=1", "lm.generator.num_retries=8")
        out = run_generate(exp, n=4, show_progress=False)
        stats = ep.stats()
    assert out.stats.passed >= 4 and out.stats.failed_units == 0
    assert stats["by_status"].get(429, 0) >= 1 and stats["successes"] == out.meter.roles["generator"].calls


def test_a_malformed_completion_is_a_parse_failure_counted_like_chat(tmp_path):
    from synthdspy.pipeline import run_generate

    with serve_provider(malformed_rate=1.0) as ep:
        exp = experiment(tmp_path, ep.url, "gates=[]", "task.num_questions=1", "lm.generator.concurrency=1")
        out = run_generate(exp, n=1, show_progress=False, unit_limit=2)
    assert out.stats.passed == 0 and out.stats.failed_units == 2
    assert out.parse_stats.counts["chat"][1] >= 2  # every answer of the ChatAdapter failed to parse
    failures = [json.loads(x) for x in (tmp_path / "out/generate/store/failures.jsonl").read_text().splitlines()]
    assert failures and all("parse" in json.dumps(f).lower() for f in failures)


def test_a_text_generator_runs_on_the_in_process_simulator(tmp_path):
    """Pipeline test: ``sim/default`` with ``model_type = "text"`` plays a base model in process."""
    from synthdspy.pipeline import run_generate

    exp = load_experiment(EXPERIMENT, [f"output.dir={json.dumps(str(tmp_path / 'out'))}", "tracking.autolog=false"])
    assert exp.lm.generator.model_type == "text"
    out = run_generate(exp, n=3, show_progress=False)
    assert out.stats.passed >= 3 and out.stats.failed_units == 0
    assert out.meter.roles["generator"].prompt_tokens > 300 * out.meter.roles["generator"].calls  # the prefix


@pytest.mark.parametrize("sets, key, needle", [
    (["lm.generator.prefix_file='/nonexistent/prefix.txt'"], "lm.generator.prefix_file", "no such file"),
    (["lm.generator.model_type='chat'", "lm.generator.prefix='urial'"], "lm.generator", "only for a text model"),
    (["lm.generator.prefix='none'", "lm.generator.prefix_file='experiments/base_model_qa.toml'"], "lm.generator",
     "not both"),
    (["lm.generator.prefix='alpaca'"], "lm.generator.prefix", "'urial' or 'none'"),
    (["lm.generator.model_type='completion'"], "lm.generator.model_type", "'chat' or 'text'"),
])
def test_config_errors_are_one_line_naming_the_key(sets, key, needle):
    with pytest.raises(ConfigError) as info:
        load_experiment(EXPERIMENT, sets)
    message = str(info.value)
    assert "\n" not in message and f"base_model_qa.toml: {key}:" in message and needle in message


def test_a_prefix_file_removed_after_loading_fails_the_build_naming_the_key(tmp_path):
    from synthdspy.lm import build_lms

    own = tmp_path / "prefix.txt"
    own.write_text("# Instruction\n\nBe helpful.\n", encoding="utf-8")
    exp = load_experiment(EXPERIMENT, [f"lm.generator.prefix_file={json.dumps(str(own))}"])
    own.unlink()
    with pytest.raises(ConfigError, match=r"^lm\.generator\.prefix_file: no such file"):
        build_lms(exp.lm)
