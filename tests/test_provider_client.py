"""The client side of real providers in isolation: the endpoint limiter (AIMD, header pacing,
Retry-After), failure classes, backoff, key scrubbing, per-call retries, provider-specific config."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from synthdspy.config import LMRole
from synthdspy.configio import ConfigError
from synthdspy.llm_failures import TruncatedAnswerError, classify
from synthdspy.lm import UsageMeter, build_role
from synthdspy.provider_engine import backoff_s, estimate_tokens, scrub_exception
from synthdspy.ratelimit import EndpointLimiter, parse_duration


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def limiter(**kw) -> tuple[EndpointLimiter, FakeClock]:
    clock = FakeClock()
    return EndpointLimiter("m @ u", kw.pop("max_concurrency", 8), clock=clock, sleep=clock.sleep, **kw), clock


def test_slow_start_sends_one_request_until_one_succeeds():
    lim, clock = limiter()
    assert lim.window == 1
    lim.release(lim.acquire(), ok=False)  # a failed first request (a wrong key) does not open the window
    assert lim.window == 1
    lim.release(lim.acquire(), ok=False, error=TimeoutError("slow"))  # a transient failure does
    assert lim.window == 2
    for expected in (4, 8, 8):
        lim.release(lim.acquire(), ok=True)
        assert lim.window == expected


def test_aimd_halves_once_per_round_trip_and_grows_back_additively():
    lim, clock = limiter()
    for _ in range(3):
        lim.release(lim.acquire(), ok=True)
    starts = [lim.acquire() for _ in range(4)]
    for s in starts:  # four 429s for requests sent before the first decrease: one halving
        lim.release(s, ok=False, rate_limited=True)
    assert lim.window == 4 and lim.stats.decreases == 1
    clock.t += 1.0
    later = lim.acquire()
    lim.release(later, ok=False, rate_limited=True)  # sent after the decrease: halves again
    assert lim.window == 2
    for _ in range(20):
        lim.release(lim.acquire(), ok=True)
    assert 2 < lim.window <= 8


def test_learned_rpm_paces_requests_below_the_limit():
    lim, clock = limiter()
    lim.release(lim.acquire(), ok=True, headers={"x-ratelimit-limit-requests": "120",
                                                  "x-ratelimit-remaining-requests": "119"})
    starts = []
    for _ in range(200):
        starts.append(lim.acquire())
        lim.release(starts[-1], ok=True)
    rate_per_min = (len(starts) - 1) / (starts[-1] - starts[0]) * 60
    assert rate_per_min == pytest.approx(120 * 0.99, rel=0.001)  # 99% of the learned limit
    assert max(sum(1 for t in starts if s <= t < s + 60) for s in starts) <= 120  # any 60 s window


def test_configured_tpm_spaces_requests_by_their_tokens():
    lim, clock = limiter(tpm=6000, safety=0.95)  # 95 tokens/s after the 5% margin
    t0 = clock.t
    for _ in range(4):
        lim.release(lim.acquire(tokens=950), ok=True)
    assert clock.t - t0 == pytest.approx(30.0, rel=0.01)


def test_retry_after_and_exhausted_remaining_pause_the_endpoint():
    lim, clock = limiter()
    lim.release(lim.acquire(), ok=False, rate_limited=True, retry_after=300)
    assert lim._paused_until - clock.t == pytest.approx(60.0)  # clamped to 60 s
    lim2, clock2 = limiter()
    lim2.release(lim2.acquire(), ok=True, headers={"x-ratelimit-remaining-requests": "0",
                                                    "x-ratelimit-reset-requests": "1.5s"})
    assert lim2._paused_until - clock2.t == pytest.approx(1.5)


def test_reset_durations_in_openai_format():
    assert parse_duration("6m0s") == 360 and parse_duration("120ms") == pytest.approx(0.12)
    assert parse_duration("1.5") == 1.5 and parse_duration(None) is None and parse_duration("soon") is None


def test_backoff_honours_retry_after_within_bounds_else_full_jitter():
    rng = random.Random(0)
    assert backoff_s(0, 120.0, rng) == 60.0 and backoff_s(3, 0.0, rng) == 0.5
    draws = [backoff_s(3, None, rng) for _ in range(200)]
    assert min(draws) >= 0 and max(draws) <= 8 and len(set(draws)) > 100


def test_failure_classes_of_dspy_errors():
    from dspy.utils import exceptions as ex

    assert classify(ex.LMAuthError("bad key")).kind == "run"
    assert classify(ex.LMBillingError("quota")).reason == "quota"
    assert classify(ex.ContextWindowExceededError(message="too long")).kind == "record"
    assert classify(ex.LMRateLimitError("slow down", retry_after=2.0)).retry_after == 2.0
    wrapped = RuntimeError("wrapper")
    wrapped.__cause__ = TruncatedAnswerError("cut")
    assert classify(wrapped).reason == "truncated"
    assert classify(ValueError("unparseable")).kind == "other"


def test_keys_are_scrubbed_from_the_whole_exception_chain():
    inner = RuntimeError("Incorrect API key provided: sk-secret-abcdefgh123")
    inner.message = "key sk-secret-abcdefgh123"  # type: ignore[attr-defined]
    outer = ValueError("failed: sk-secret-abcdefgh123")
    outer.__cause__ = inner
    scrub_exception(outer, ("sk-secret-abcdefgh123",))
    assert "sk-secret" not in str(outer) + str(inner) + inner.message  # type: ignore[attr-defined]


def test_token_estimate_counts_prompt_and_max_tokens():
    request = {"messages": [{"role": "user", "content": "x" * 400}], "max_tokens": 100}
    assert estimate_tokens(request) == 200


@pytest.mark.parametrize("model", ["openai/gpt-5-mini", "openai/o4-mini", "o3"])
def test_reasoning_models_build_with_the_parameters_they_require(model):
    lm = build_role("generator", LMRole(model=model, temperature=0.7, max_tokens=1024), UsageMeter())
    assert lm.kwargs.get("temperature") is None and lm.kwargs["max_completion_tokens"] == 16000
    assert lm.fixed_temperature


def test_provider_parameters_pass_through_and_reserved_ones_are_refused():
    role = LMRole(model="hosted_vllm/Qwen/Qwen2.5-7B-Instruct", api_base="http://127.0.0.1:9/v1",
                  extra={"top_p": 0.9, "seed": 7, "extra_body": {"chat_template_kwargs": {"enable_thinking": False}},
                         "extra_headers": {"X-Team": "data"}})
    lm = build_role("judge", role, UsageMeter())
    assert lm.kwargs["top_p"] == 0.9 and lm.kwargs["extra_body"]["chat_template_kwargs"]
    assert lm.engine.client_options["extra_headers"] == {"X-Team": "data"}
    with pytest.raises(ValueError, match="have their own keys"):
        LMRole(model="openai/gpt-4o-mini", extra={"temperature": 0.3})


def test_anthropic_temperature_above_one_is_a_config_error(tmp_path):
    from synthdspy.config import load_experiment

    toml = tmp_path / "e.toml"
    toml.write_text('[lm.judge]\nmodel = "anthropic/claude-3-5-haiku-latest"\ntemperature = 1.3\n[task]\nname = "qa"\n')
    with pytest.raises(ConfigError, match=r"lm.judge.*range \[0, 1\]"):
        load_experiment(toml)


def test_unpriced_models_are_reported_unpriced_never_as_zero_dollars():
    meter = UsageMeter()
    meter.add("generator", {"prompt_tokens": 10, "completion_tokens": 5}, None)
    assert "unpriced" in meter.describe() and "$0.0000" not in meter.describe()


def test_a_torn_last_line_of_the_unit_journal_is_cut_on_open(tmp_path):
    from synthdspy.run_dir import UnitJournal

    (tmp_path / "units.jsonl").write_text('{"unit": "a#0", "records": 2}\n{"unit": "b#0", "rec')
    journal = UnitJournal(tmp_path)
    journal.finish("c#0", 1)
    lines = (tmp_path / "units.jsonl").read_text().splitlines()
    assert journal.done == {"a#0", "c#0"} and [json.loads(x)["unit"] for x in lines] == ["a#0", "c#0"]


def test_the_spend_ledger_adds_earlier_runs_writes_at_most_once_a_second_and_names_a_bad_file(tmp_path):
    from synthdspy.run_dir import SpendLedger

    ledger = SpendLedger(tmp_path, interval_s=3600)
    ledger.record(1.25, force=True)
    ledger.record(2.0)  # within the interval: not written
    assert json.loads((tmp_path / "spend.json").read_text()) == {"usd": 1.25}
    later = SpendLedger(tmp_path)
    later.record(0.5, force=True)
    assert later.prior == 1.25 and json.loads((tmp_path / "spend.json").read_text()) == {"usd": 1.75}
    for bad in ("{not json", '{"usd": NaN}', '{"usd": -1}'):  # NaN would disable every later cap
        (tmp_path / "spend.json").write_text(bad)
        with pytest.raises(ConfigError, match=r"spend.json: unreadable spend ledger"):
            SpendLedger(tmp_path)
    (tmp_path / "spend.json").unlink()
    (tmp_path / "spend.json.tmp").mkdir()  # the write fails: logged, not raised into the unit
    SpendLedger(tmp_path).record(1.0, force=True)
    assert not (tmp_path / "spend.json").exists()


@pytest.mark.parametrize("adapter", ["chat", "json"])
def test_each_adapter_reports_its_parse_failure_rate(tmp_path, adapter):
    from pathlib import Path

    from synthdspy.config import load_experiment
    from synthdspy.pipeline import run_generate

    root = Path(__file__).parent.parent
    exp = load_experiment(root / "experiments" / "grounded_qa.toml", [
        f"output.dir={json.dumps(str(tmp_path))}", "tracking.autolog=false", "gates=[]", "lm.generator.cache=false",
        f'lm.generator.adapter="{adapter}"', "lm.generator.simulator.malformed_rate=0.3"])
    out = run_generate(exp, n=8, show_progress=False)
    parsed, failed = out.parse_stats.counts[adapter]
    assert 0 < failed < parsed + failed  # some answers of this adapter were unparseable, not all


def test_a_unit_retry_re_sends_only_the_call_whose_answer_failed():
    from dspy.utils.exceptions import AdapterParseError

    from synthdspy.unit_calls import after_call, before_call, failed_calls, unit_attempt

    good, bad = [{"role": "user", "content": "generate"}], [{"role": "user", "content": "judge"}]
    with unit_attempt() as log:
        after_call(before_call("m", None, good, {}), ["fine answer"])
        after_call(before_call("m", None, bad, {}), ["[[ ## score ## broken"])
    import dspy

    exc = AdapterParseError(adapter_name="ChatAdapter", signature=dspy.Signature("question -> score"),
                            lm_response="[[ ## score ## broken")
    refresh = failed_calls(RuntimeError("unit failed"), log)  # no parse error in the chain: the last call
    assert refresh == failed_calls(exc, log) == {log.calls[1][0]}
    with unit_attempt(refresh, attempt=1):
        kept, resent = {}, {}
        before_call("m", None, good, kept)
        before_call("m", None, bad, resent)
    assert "rollout_id" not in kept  # replayed from the cache: not paid again
    assert resent["rollout_id"] == 901  # a fresh cache key for the call that failed


def test_requests_waiting_for_an_aborted_endpoint_end_at_once():
    import threading

    from synthdspy.ratelimit import EndpointAbortedError

    lim = EndpointLimiter("m @ u", 1)
    lim.acquire()  # the one slot is taken: the next caller waits
    errors: list[BaseException] = []

    def waiter(call) -> None:
        try:
            call()
        except EndpointAbortedError as exc:
            errors.append(exc)

    calls = [lim.acquire] * 3 + [lambda: lim.wait(30.0)]  # waiting for a slot, or in a retry's backoff
    threads = [threading.Thread(target=waiter, args=(call,)) for call in calls]
    for t in threads:
        t.start()
    lim.abort(PermissionError("401 invalid_api_key"))
    for t in threads:
        t.join(timeout=5)
    assert not any(t.is_alive() for t in threads) and len(errors) == 4
    assert all(isinstance(e.__cause__, PermissionError) for e in errors)


def test_an_endpoint_that_never_answers_is_aborted_after_its_failed_probes():
    from synthdspy.ratelimit import FAILED_PROBES, EndpointAbortedError

    lim, clock = limiter()
    for _ in range(FAILED_PROBES):
        lim.release(lim.acquire(), ok=False, error=TimeoutError("no answer"))
    with pytest.raises(EndpointAbortedError) as info:
        lim.acquire()
    assert isinstance(info.value.__cause__, TimeoutError)


def test_an_identical_request_in_flight_is_sent_once():
    import threading
    import time

    from synthdspy.provider_engine import ProviderEngine

    calls: list[dict] = []

    class Slow(ProviderEngine):
        def _send(self, lm, request, context):
            calls.append(request)
            time.sleep(0.3)
            return {"answer": len(calls)}

    engine = Slow("openai/m", "judge", EndpointLimiter("m", 4), 4, 0, lambda *_: None)
    request = {"model": "openai/m", "messages": [{"role": "user", "content": "same"}]}
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(engine.complete_legacy(None, dict(request))))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and results == [{"answer": 1}] * 3
    engine.complete_legacy(None, dict(request))  # not in flight any more: sent again
    assert len(calls) == 2


def test_call_temperatures_are_clipped_to_the_providers_range_and_dropped_for_reasoning_models():
    import dspy

    from synthdspy.tasks.common import call_config

    claude = build_role("judge", LMRole(model="anthropic/claude-3-5-haiku-latest", temperature=0.5), UsageMeter())
    with dspy.context(lm=claude):
        assert call_config(0, temperature=1.4)["temperature"] == 1.0  # the adversarial drift, clipped
    gpt5 = build_role("judge", LMRole(model="openai/gpt-5-mini"), UsageMeter())
    with dspy.context(lm=gpt5):
        assert "temperature" not in call_config(0, temperature=1.4)
    with dspy.context(lm=build_role("judge", LMRole(model="openai/gpt-4o-mini"), UsageMeter())):
        assert call_config(0, temperature=1.4)["temperature"] == 1.4


class OpenAIChatCompletion:
    """Stands for LiteLLM's provider handlers, whose coroutine a cancelled unit may drop."""

    async def acompletion(self) -> None: ...

    async def async_completion(self) -> None: ...

    async def other(self) -> None: ...


def test_a_provider_coroutine_dropped_by_a_cancelled_unit_is_not_reported():
    """LiteLLM builds `<Handler>.acompletion(...)` in an executor; a unit cancelled meanwhile drops
    it unsent. That warning is silenced; any other un-awaited coroutine still warns."""
    import gc
    import warnings

    from synthdspy.provider_engine import DROPPED_COROUTINE

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", RuntimeWarning)
        warnings.filterwarnings("ignore", message=DROPPED_COROUTINE, category=RuntimeWarning)  # as installed
        OpenAIChatCompletion().acompletion()
        OpenAIChatCompletion().async_completion()
        OpenAIChatCompletion().other()
        gc.collect()
    messages = [str(w.message) for w in seen]
    assert not any("completion' was never awaited" in m for m in messages)
    assert any("other' was never awaited" in m for m in messages)
    code = ("import gc, synthdspy.provider_engine\nclass OpenAIChatCompletion:\n"
            "    async def acompletion(self): ...\nOpenAIChatCompletion().acompletion()\ngc.collect()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "never awaited" not in done.stderr  # the filter the module installs, in a fresh process


@pytest.mark.parametrize("options, reason", [
    (None, "connection"),  # nothing listens: LiteLLM says 500 InternalServerError "Connection error."
    ({"drop_rate": 1.0}, "connection"),
    ({"server_error_rate": 1.0}, "server_error"),
    ({"hang_rate": 1.0, "hang_s": 30}, "timeout"),
])
def test_transport_failures_are_told_apart_from_server_errors(monkeypatch, options, reason):
    import contextlib

    from synthdspy.lm import build_role
    from synthdspy.provider_server import ProviderOptions
    from synthdspy.sim_server import serve_provider
    from synthdspy.usage import UsageMeter

    monkeypatch.setenv("SYNTHDSPY_TEST_CLASS_KEY", "sk-class-0123456789")
    server = serve_provider(provider=ProviderOptions(**options)) if options else contextlib.nullcontext()
    with server as ep:
        url = ep.url if ep else "http://127.0.0.1:9/v1"
        role = LMRole(model="openai/sim-model", api_base=url, api_key_env="SYNTHDSPY_TEST_CLASS_KEY",
                      num_retries=0, timeout_s=1, cache=False)
        with pytest.raises(Exception) as info:
            build_role("generator", role, UsageMeter())("hello")
    assert classify(info.value).kind == "transient"
    assert classify(info.value).reason == reason
