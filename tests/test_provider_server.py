"""The provider-realistic endpoint: raw HTTP contract, and what DSPy 3.4 + LiteLLM raise for it."""

import http.client
import json
import math
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

# LiteLLM and DSPy would otherwise try to download model price maps (no network here).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import dspy  # noqa: E402
import litellm  # noqa: E402
import openai  # noqa: E402
import pydantic  # noqa: E402
import pytest  # noqa: E402
from dspy.utils import exceptions as dspy_errors  # noqa: E402

from synthdspy.provider_server import (  # noqa: E402
    Provider,
    ProviderOptions,
    is_simulator_endpoint,
    prompt_estimate,
    truncate,
)
from synthdspy.ratewindow import RateLimiter, format_duration  # noqa: E402
from synthdspy.sim_server import parse_args, serve, serve_provider  # noqa: E402
from synthdspy.simulator import count_tokens  # noqa: E402

KEY = "sk-test-Secret-0123456789"


def _post(url: str, payload: dict, key: str | None = KEY, timeout: float = 10) -> tuple[int, dict, dict]:
    """POST JSON to {url}/chat/completions; (status, lower-cased headers, body)."""
    request = urllib.request.Request(url + "/chat/completions", data=json.dumps(payload).encode(), method="POST")
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, json.loads(error.read())


def _chat(text: str = "hi", **extra) -> dict:
    return {"model": "sim-model", "messages": [{"role": "user", "content": text}], **extra}


def _lm(url: str, **kwargs) -> dspy.LM:
    kwargs.setdefault("api_key", KEY)
    return dspy.LM("openai/sim-model", api_base=url, engine="litellm", num_retries=0, cache=False, **kwargs)


def _causes(error: BaseException) -> list[type]:
    """The exception's class and those of its `__cause__` / `__context__` chain."""
    out = []
    while error is not None:
        out.append(type(error))
        error = error.__cause__ or error.__context__
    return out


def _raises_through_lm(url: str, dspy_class: type, litellm_class: type, **lm_kwargs) -> BaseException:
    """Call the real dspy.LM (LiteLLM engine); DSPy 3.4 raises its own class from LiteLLM's."""
    with pytest.raises(dspy_class) as info:
        _lm(url, **lm_kwargs)("Where is the reef?")
    assert any(issubclass(c, litellm_class) for c in _causes(info.value)), _causes(info.value)
    return info.value


def test_format_duration_and_windows():
    assert [format_duration(s) for s in (0, 0.12, 1, 1.2, 360, 90.5, 3725.5)] == [
        "0s", "120ms", "1s", "1.2s", "6m0s", "1m30.5s", "1h2m5.5s"
    ]  # fmt: skip
    limiter = RateLimiter(rpm=2, tpm=100, window_s=10)
    assert limiter.admit(10, now=0.0) is None and limiter.admit(85, now=1.0) is None
    over = limiter.admit(20, now=2.0)  # both limits hit: requests reported, with the longer wait
    assert (over.kind, over.limit, over.used, over.requested, over.wait_s) == ("requests", 2, 2, 1, 9.0)
    over = limiter.admit(20, now=10.0)  # the t=0 request has left the window; 85 + 20 tokens > 100
    assert (over.kind, over.used, over.requested, over.wait_s) == ("tokens", 85, 20, 1.0)
    assert limiter.admit(15, now=10.0) is None
    assert limiter.headers(now=10.5) == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "500ms",
        "x-ratelimit-limit-tokens": "100",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "500ms",
    }
    assert math.isinf(RateLimiter(None, 100).admit(101).wait_s)
    assert prompt_estimate([{"content": "12345"}, {"content": [{"type": "text", "text": "123"}]}]) == 2


def test_rpm_window_headers_and_retry_after():
    with serve_provider(provider=ProviderOptions(rpm=5, window_s=2.0)) as ep:
        answers = [_post(ep.url, _chat(f"question {i}")) for i in range(10)]
        assert [status for status, _, _ in answers] == [200] * 5 + [429] * 5
        remaining = [int(h["x-ratelimit-remaining-requests"]) for s, h, _ in answers if s == 200]
        assert remaining == [4, 3, 2, 1, 0]
        for _, headers, _ in answers:
            assert headers["x-ratelimit-limit-requests"] == "5" and headers["x-ratelimit-reset-requests"][-1] == "s"
        _, headers, body = answers[-1]
        assert body["error"]["code"] == "rate_limit_exceeded" and body["error"]["type"] == "requests"
        assert body["error"]["param"] is None
        assert "(RPM): Limit 5, Used 5, Requested 1. Please try again in " in body["error"]["message"]
        assert int(headers["retry-after"]) >= 1 and 0 < int(headers["retry-after-ms"]) <= 2000
        stats = ep.stats()
        assert stats["requests"] == 10 and stats["rate_limited"] == 5 and stats["by_status"] == {200: 5, 429: 5}
        time.sleep(int(headers["retry-after-ms"]) / 1000)  # rejected requests were not counted
        assert _post(ep.url, _chat("again"))[0] == 200


def test_rpm_admits_exactly_the_limit_under_concurrency():
    with serve_provider(provider=ProviderOptions(rpm=8, window_s=30.0)) as ep:
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(lambda i: _post(ep.url, _chat(f"q{i}"))[0], range(16)))
        assert sorted(statuses) == [200] * 8 + [429] * 8
        _raises_through_lm(ep.url, dspy_errors.LMRateLimitError, litellm.RateLimitError)


def test_tpm_window():
    with serve_provider(provider=ProviderOptions(tpm=100, window_s=30.0)) as ep:
        ask = _chat("x" * 40, max_tokens=20)  # 10 prompt tokens (40 chars / 4) + 20 = 30 tokens
        answers = [_post(ep.url, ask) for _ in range(4)]
        assert [s for s, _, _ in answers] == [200, 200, 200, 429]
        assert [h["x-ratelimit-remaining-tokens"] for _, h, _ in answers] == ["70", "40", "10", "10"]
        assert answers[0][1]["x-ratelimit-limit-tokens"] == "100" and "x-ratelimit-limit-requests" not in answers[0][1]
        error = answers[-1][2]["error"]
        assert error["type"] == "tokens" and error["code"] == "rate_limit_exceeded"
        assert "(TPM): Limit 100, Used 90, Requested 30." in error["message"]
        status, headers, _ = _post(ep.url, _chat("x" * 20, max_completion_tokens=5))  # 5 + 5: exactly fits
        assert status == 200 and headers["x-ratelimit-remaining-tokens"] == "0"
    with serve_provider(provider=ProviderOptions(tpm=100)) as ep:
        status, headers, body = _post(ep.url, _chat("hi"))  # no max_tokens: 4096 assumed, never fits
        assert status == 429 and "Request too large" in body["error"]["message"] and "retry-after" not in headers


def test_api_key_401_echoes_the_full_key():
    with serve_provider(provider=ProviderOptions(api_key=KEY)) as ep:
        status, _, body = _post(ep.url, _chat(), key="sk-wrong-Key-987")
        assert status == 401 and body["error"]["code"] == "invalid_api_key"
        assert body["error"]["type"] == "invalid_request_error"
        assert body["error"]["message"].startswith("Incorrect API key provided: sk-wrong-Key-987. You can find")
        status, _, body = _post(ep.url, _chat(), key=None)
        assert status == 401 and "didn't provide an API key" in body["error"]["message"]
        assert _post(ep.url, _chat())[0] == 200
        error = _raises_through_lm(ep.url, dspy_errors.LMAuthError, litellm.AuthenticationError, api_key="sk-bad-1")
        assert "sk-bad-1" in str(error)  # echoed by the server: the client side must scrub it
        assert ep.stats()["by_status"] == {401: 3, 200: 1}


def test_insufficient_quota():
    with serve_provider(provider=ProviderOptions(insufficient_quota=True)) as ep:
        status, headers, body = _post(ep.url, _chat())
        assert status == 429 and body["error"]["type"] == body["error"]["code"] == "insufficient_quota"
        assert body["error"]["message"].startswith("You exceeded your current quota, please check your plan")
        assert "retry-after" not in headers
        # LiteLLM raises its RateLimitError; DSPy reads the code and raises a (non-retryable) billing error.
        error = _raises_through_lm(ep.url, dspy_errors.LMBillingError, litellm.RateLimitError)
        assert not dspy_errors.is_retryable_lm_error(error)
        assert ep.stats()["rate_limited"] == 0


def test_unknown_model_404_and_models_listing():
    with serve_provider(provider=ProviderOptions(models=["gpt-sim-a", "gpt-sim-b"])) as ep:
        status, _, body = _post(ep.url, _chat())
        assert status == 404 and body["error"]["code"] == "model_not_found"
        assert body["error"]["message"] == "The model `sim-model` does not exist or you do not have access to it."
        assert _post(ep.url, {**_chat(), "model": "gpt-sim-b"})[0] == 200
        with urllib.request.urlopen(ep.url + "/models", timeout=5) as response:
            listing = json.loads(response.read())
        assert [m["id"] for m in listing["data"]] == ["gpt-sim-a", "gpt-sim-b"]
        assert listing["synthdspy_simulator"] is True
        assert {m["owned_by"] for m in listing["data"]} == {"synthdspy-simulator"}
        _raises_through_lm(ep.url, dspy_errors.LMUnsupportedModelError, litellm.NotFoundError)


def test_context_length_exceeded():
    with serve_provider(provider=ProviderOptions(context_window=50)) as ep:
        status, _, body = _post(ep.url, _chat("x" * 80, max_tokens=100))
        assert status == 400 and body["error"]["code"] == "context_length_exceeded"
        assert body["error"]["message"] == (
            "This model's maximum context length is 50 tokens. However, you requested 120 tokens "
            "(20 in the messages, 100 in the completion). Please reduce the length of the messages or completion."
        )
        assert "your messages resulted in 60 tokens" in _post(ep.url, _chat("x" * 240))[2]["error"]["message"]
        assert _post(ep.url, _chat("x" * 80, max_tokens=30))[0] == 200
        error = _raises_through_lm(
            ep.url, dspy_errors.ContextWindowExceededError, litellm.BadRequestError, max_tokens=80
        )
        assert litellm.ContextWindowExceededError in _causes(error)


def test_max_tokens_truncation():
    assert truncate("One, two three.", 2) == ("One,", True) and truncate("a b", 5) == ("a b", False)
    with serve_provider() as ep:
        assert _post(ep.url, _chat(max_tokens="many"))[0] == _post(ep.url, _chat(max_tokens=-1))[0] == 400
        status, _, body = _post(ep.url, _chat("Tell me about the lighthouse and the reef.", max_tokens=3, n=2))
        assert status == 200 and len(body["choices"]) == 2
        for choice in body["choices"]:
            assert choice["finish_reason"] == "length" and count_tokens(choice["message"]["content"]) == 3
        assert body["usage"]["completion_tokens"] == 6
        full = _post(ep.url, _chat("Tell me about the lighthouse and the reef.", max_completion_tokens=4096))[2]
        assert full["choices"][0]["finish_reason"] == "stop"
        assert count_tokens(full["choices"][0]["message"]["content"]) == full["usage"]["completion_tokens"] > 3
        [text] = _lm(ep.url, max_tokens=2)("Where is the reef?")  # DSPy warns that it was truncated
        assert count_tokens(text) == 2


def test_content_filter():
    with serve_provider(provider=ProviderOptions(content_filter_rate=1.0)) as ep:
        status, _, body = _post(ep.url, _chat())
        choice = body["choices"][0]
        assert status == 200 and choice["finish_reason"] == "content_filter"
        assert choice["message"] == {"role": "assistant", "content": None, "refusal": "I can't help with that."}
        assert _lm(ep.url)("Where is the reef?") == [None]  # DSPy hands the missing text on as None


@pytest.mark.parametrize(
    ("option", "status", "litellm_class"),
    [
        ("server_error_rate", 500, litellm.InternalServerError),
        ("unavailable_rate", 503, litellm.ServiceUnavailableError),
        ("overloaded_rate", 529, litellm.APIError),
    ],
)
def test_injected_server_errors(option, status, litellm_class):
    with serve_provider(provider=ProviderOptions(**{option: 1.0})) as ep:
        got, headers, body = _post(ep.url, _chat())
        assert got == status and headers["retry-after"] == "1"
        if status == 529:
            assert body == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        else:
            assert body["error"]["type"] == "server_error"
        error = _raises_through_lm(ep.url, dspy_errors.LMServerError, litellm_class)
        assert dspy_errors.is_retryable_lm_error(error)


def _handler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "process_request_thread" in t.name]


def test_hang_times_out_promptly_and_shutdown_frees_the_thread():
    started = time.monotonic()
    with serve_provider(provider=ProviderOptions(hang_rate=1.0, hang_s=600)) as ep:
        _raises_through_lm(ep.url, dspy_errors.LMTimeoutError, litellm.Timeout, timeout=1)
        assert time.monotonic() - started < 5
        assert ep.stats()["hung"] == 1 and ep.stats()["successes"] == 0
        assert _handler_threads()  # the hung handler still sleeps (the client gave up)
    deadline = time.monotonic() + 2
    while _handler_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _handler_threads() and time.monotonic() - started < 6


def test_dropped_connection_is_a_client_error():
    with serve_provider(provider=ProviderOptions(drop_rate=1.0)) as ep:
        with pytest.raises((http.client.IncompleteRead, ConnectionError)):
            _post(ep.url, _chat())
        # openai's APIConnectionError, which LiteLLM maps to its InternalServerError (retryable).
        error = _raises_through_lm(ep.url, dspy_errors.LMServerError, litellm.InternalServerError)
        assert openai.APIConnectionError in _causes(error)
        assert ep.stats()["dropped"] == 2 and ep.stats()["by_status"] == {}


def test_models_flag_and_is_simulator_endpoint():
    with serve() as url:
        assert is_simulator_endpoint(url)
    with serve_provider(provider=ProviderOptions(api_key=KEY)) as ep:
        assert is_simulator_endpoint(ep.url, api_key=KEY) and not is_simulator_endpoint(ep.url, api_key="nope")
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert not is_simulator_endpoint(f"http://127.0.0.1:{port}/v1", timeout_s=0.5)


def test_stats_and_duplicate_successes():
    with serve_provider(provider=ProviderOptions(latency_median_s=0.02)) as ep:
        before = time.monotonic()
        assert _post(ep.url, _chat("same", seed=1))[0] == 200
        assert _post(ep.url, _chat("same", seed=1))[0] == 200  # the same body paid twice
        assert _post(ep.url, _chat("same", seed=2))[0] == 200
        assert time.monotonic() - before >= 0.06  # 20 ms of latency each
        stats = ep.stats()
        assert (stats["requests"], stats["successes"], stats["duplicate_successes"]) == (3, 3, 1)
        assert before < stats["first_success_t"] <= stats["last_success_t"] and len(stats["success_times"]) == 3
        ep.reset_stats()
        assert ep.stats()["requests"] == 0 and ep.stats()["first_success_t"] is None
        assert _post(ep.url, _chat("same", seed=1))[0] == 200 and ep.stats()["duplicate_successes"] == 0


def test_options_draws_and_cli():
    with pytest.raises(pydantic.ValidationError):
        ProviderOptions(rpm=10, bogus=1)
    with pytest.raises(pydantic.ValidationError):
        ProviderOptions(hang_rate=0.6, drop_rate=0.5)
    options = ProviderOptions(server_error_rate=0.3, hang_rate=0.3, latency_median_s=1.0, latency_sigma=0.5, seed=3)
    first, second = Provider(options), Provider(options)
    draws = [first.draw() for _ in range(50)]
    assert draws == [second.draw() for _ in range(50)]  # seeded
    assert {fault for fault, _ in draws} == {None, "server_error", "hang"} and len({s for _, s in draws}) == 50
    assert "api_key" not in repr(ProviderOptions(api_key=KEY))
    port, simulator, provider = parse_args(
        ["--port", "0", "--rpm", "120", "--tpm", "100000", "--api-key", "K", "--hang-rate", "0.1",
         "--models", "a,b", "--insufficient-quota", "--provider-seed", "7", "--seed", "2"]
    )  # fmt: skip
    assert (port, simulator.options.seed) == (0, 2)
    assert provider == ProviderOptions(
        rpm=120, tpm=100000, api_key="K", hang_rate=0.1, models=["a", "b"], insufficient_quota=True, seed=7
    )
    with pytest.raises(SystemExit):
        parse_args(["--rpm", "0"])
