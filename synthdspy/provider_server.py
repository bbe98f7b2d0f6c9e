"""Provider-realistic misbehaviour for the simulator's OpenAI-compatible endpoint.

`synthdspy.sim_server` is the HTTP shell; this module decides what a hosted provider would
answer (`Provider`, configured by `ProviderOptions`, every behaviour off by default), counts
what happened (`ProviderStats`) and builds the completion body. With options set, a chat request
goes through, in order (the first check that fails answers):

1. `api_key`: a missing or different `Authorization: Bearer` key gets 401 `invalid_api_key`.
   The message echoes the wrong key in full, as some providers and proxies do, so client-side
   secret scrubbing can be tested.
2. `insufficient_quota`: 429 `insufficient_quota` (no retry-after: waiting does not help).
3. `models`: another model gets 404 `model_not_found`; GET /v1/models lists these.
4. `context_window`: prompt estimate + max_tokens over it gets 400 `context_length_exceeded`.
5. `rpm` / `tpm`: sliding windows of `window_s` (60) seconds (`synthdspy.ratewindow`). Tokens
   are estimated at request time: ceil(characters of all message contents / 4) + `max_tokens`
   (or `max_completion_tokens`; 4096 when absent). Over a limit: 429 `rate_limit_exceeded`
   (type "requests" or "tokens") with `retry-after` (whole seconds, >= 1) and `retry-after-ms`;
   a request over the TPM limit on its own gets 429 with no retry-after. Rejected requests are
   not counted. Every answer, errors included, carries `x-ratelimit-limit/remaining/reset-
   requests` and `-tokens` while a limit is set (reset: until the oldest counted one expires).
6. Admitted requests then draw (seeded `random.Random`, under a lock) a lognormal latency
   (`latency_median_s`, `latency_sigma`) and at most one fault: `server_error_rate` (500),
   `unavailable_rate` (503), `overloaded_rate` (529, Anthropic's body), each with retry-after 1;
   `content_filter_rate` (200, `content: null`, `refusal`, finish_reason "content_filter");
   `hang_rate` (sleep `hang_s` before answering; ends early when the server stops);
   `drop_rate` (status line, headers and half the body, then the socket closes).
7. The simulator writes the answer; each choice is cut to `max_tokens` simulator tokens
   (`count_tokens`, as in usage.completion_tokens) with finish_reason "length" when cut.

POST /v1/completions (legacy text completions, for base models) is screened the same way and
answered by `synthdspy.base_sim`; its requests are counted in `ProviderStats` with the chat ones.
GET /v1/models answers `owned_by: "synthdspy-simulator"` and `"synthdspy_simulator": true`;
`is_simulator_endpoint(api_base)` checks that, so a client can label runs simulated.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any

import pydantic

from synthdspy.ratewindow import RateLimiter, format_duration
from synthdspy.simulator import SimReply, count_tokens

MODEL_ID = "sim-model"
OWNER = "synthdspy-simulator"
DEFAULT_MAX_TOKENS = 4096
REFUSAL = "I can't help with that."
_TOKEN = re.compile(r"\w+|[^\w\s]")  # the tokens `synthdspy.simulator.count_tokens` counts
_FAULTS = ("server_error", "unavailable", "overloaded", "content_filter", "drop", "hang")


class ProviderOptions(pydantic.BaseModel):
    """How the endpoint misbehaves; every behaviour is off by default (see the module doc).

    rpm / tpm: requests / tokens per `window_s` seconds; with `quantum_s`, per minute but enforced
    over each `quantum_s` seconds (OpenAI documents this quantization: 60,000 requests a minute may
    be enforced as 1,000 a second). api_key: the only accepted bearer key.
    insufficient_quota: refuse every chat request with 429 insufficient_quota. models: the only
    model ids served. context_window: tokens (prompt estimate + max_tokens). *_rate: shares of
    admitted requests, in [0, 1], summing to at most 1. latency_median_s / latency_sigma:
    lognormal latency in seconds. hang_s: seconds a hung request sleeps. seed: seeds the draws.
    Raises pydantic.ValidationError on bad values or unknown fields.
    """

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    rpm: int | None = pydantic.Field(None, ge=1)
    tpm: int | None = pydantic.Field(None, ge=1)
    window_s: float = pydantic.Field(60.0, gt=0.0)
    quantum_s: float | None = pydantic.Field(None, gt=0.0, le=60.0)
    api_key: str | None = pydantic.Field(None, repr=False)
    insufficient_quota: bool = False
    models: list[str] | None = None
    context_window: int | None = pydantic.Field(None, ge=1)
    content_filter_rate: float = pydantic.Field(0.0, ge=0.0, le=1.0)
    server_error_rate: float = pydantic.Field(0.0, ge=0.0, le=1.0)
    unavailable_rate: float = pydantic.Field(0.0, ge=0.0, le=1.0)
    overloaded_rate: float = pydantic.Field(0.0, ge=0.0, le=1.0)
    latency_median_s: float = pydantic.Field(0.0, ge=0.0)
    latency_sigma: float = pydantic.Field(0.0, ge=0.0)
    hang_rate: float = pydantic.Field(0.0, ge=0.0, le=1.0)
    hang_s: float = pydantic.Field(600.0, ge=0.0)
    drop_rate: float = pydantic.Field(0.0, ge=0.0, le=1.0)
    batch_delay_s: float = pydantic.Field(0.0, ge=0.0)  # the batch routes: synthdspy.batch_server
    batch_fail_rate: float = pydantic.Field(0.0, ge=0.0, le=1.0)
    batch_expire_rate: float = pydantic.Field(0.0, ge=0.0, le=1.0)
    seed: int = 0

    @pydantic.model_validator(mode="after")
    def _rates_sum(self) -> ProviderOptions:
        total = sum(getattr(self, f"{name}_rate") for name in _FAULTS)
        if total > 1.0:
            raise ValueError(f"the fault rates sum to {total:g}, over 1")
        return self


@dataclass
class Answer:
    """One HTTP answer: status, JSON payload, extra headers, and the error code (for stats)."""

    status: int
    payload: dict
    headers: dict[str, str] = field(default_factory=dict)
    code: str | None = None


def openai_error(
    status: int, message: str, kind: str, code: str | None, param: str | None = None, **headers: str
) -> Answer:
    """OpenAI's error answer `{"error": {"message", "type", "param", "code"}}`; `headers` are
    extra headers with "_" written "-"."""
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return Answer(status, body, {k.replace("_", "-"): v for k, v in headers.items()}, code)


def _content_chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(len(p.get("text") or "") for p in content if isinstance(p, dict))
    return 0


def prompt_estimate(messages: list[dict]) -> int:
    """Prompt tokens as estimated at request time: ceil(characters of all contents / 4)."""
    return math.ceil(sum(_content_chars(m.get("content")) for m in messages if isinstance(m, dict)) / 4)


def max_tokens_of(body: dict) -> int | None:
    """The request's `max_completion_tokens`, else `max_tokens`, else None."""
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    return int(value) if value is not None else None


def truncate(text: str, limit: int | None) -> tuple[str, bool]:
    """`text` cut after its `limit`-th simulator token (`count_tokens`); (text, was_cut)."""
    if limit is None:
        return text, False
    tokens = list(_TOKEN.finditer(text))
    if len(tokens) <= limit:
        return text, False
    return (text[: tokens[limit - 1].end()] if limit > 0 else ""), True


def request_key(body: dict) -> str:
    """sha256 of the canonical JSON of messages, model, temperature, seed, n and max_tokens."""
    keep = {k: body.get(k) for k in ("messages", "model", "temperature", "seed", "n")}
    keep["max_tokens"] = max_tokens_of(body)
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()


class ProviderStats:
    """Thread-safe counters of chat requests; `snapshot()` returns them as a dict."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Zero every counter (the set of answered request bodies too)."""
        with self._lock:
            self.requests = 0
            self.by_status: dict[int, int] = {}
            self.counts = {"rate_limited": 0, "successes": 0, "duplicate_successes": 0, "hung": 0, "dropped": 0}
            self.success_times: list[float] = []
            self._answered: set[str] = set()

    def count(self, name: str) -> None:
        """Add one to "requests" or to a named counter ("hung", "dropped", ...)."""
        with self._lock:
            if name == "requests":
                self.requests += 1
            else:
                self.counts[name] += 1

    def record(self, answer: Answer, key: str | None = None) -> None:
        """Count an answer as it is written (dropped answers are counted as "dropped" instead);
        a 200's body `key` (`request_key`) detects a body paid for twice."""
        with self._lock:
            self.by_status[answer.status] = self.by_status.get(answer.status, 0) + 1
            if answer.code == "rate_limit_exceeded":
                self.counts["rate_limited"] += 1
            if answer.status == 200:
                self.counts["successes"] += 1
                self.success_times.append(time.monotonic())
                if key is not None:
                    self.counts["duplicate_successes"] += key in self._answered
                    self._answered.add(key)

    def snapshot(self) -> dict[str, Any]:
        """{"requests" (chat requests received), "by_status" ({status: answers written}; dropped
        answers are only in "dropped"), "rate_limited" (429 rate_limit_exceeded), "successes"
        (200s, content-filtered and truncated included), "duplicate_successes" (200s for a body
        already answered 200), "hung", "dropped", "first_success_t" / "last_success_t"
        (time.monotonic() seconds, None before any), "success_times" (list of those)}."""
        with self._lock:
            times = list(self.success_times)
            return {
                "requests": self.requests,
                "by_status": dict(self.by_status),
                **self.counts,
                "first_success_t": times[0] if times else None,
                "last_success_t": times[-1] if times else None,
                "success_times": times,
            }


class Provider:
    """The misbehaviour logic of one endpoint (see the module doc); thread-safe.

    `stop` is set when the server shuts down: `sleep` then returns early.
    """

    def __init__(self, options: ProviderOptions | None = None) -> None:
        self.options = options or ProviderOptions()
        o, share = self.options, (self.options.quantum_s or 60.0) / 60.0  # a quantum holds its share of a minute
        self.limiter = (RateLimiter(o.rpm, o.tpm, o.window_s) if o.quantum_s is None else RateLimiter(
            o.rpm and max(1, int(o.rpm * share)), o.tpm and max(1, int(o.tpm * share)), o.quantum_s))
        self.stats = ProviderStats()
        self.stop = threading.Event()
        self._rng = random.Random(self.options.seed)
        self._lock = threading.Lock()

    def rate_headers(self) -> dict[str, str]:
        """The `x-ratelimit-*` headers now ({} when no limit is set; `quantum_s`: per-minute limits)."""
        headers = self.limiter.headers()
        if self.options.quantum_s is not None:
            for kind, limit in (("requests", self.options.rpm), ("tokens", self.options.tpm)):
                if limit:
                    headers[f"x-ratelimit-limit-{kind}"] = str(limit)
        return headers

    def check_auth(self, authorization: str | None) -> Answer | None:
        """401 when `api_key` is set and the `Authorization` header does not carry it."""
        expected = self.options.api_key
        if expected is None:
            return None
        given = (authorization or "").removeprefix("Bearer ").strip()
        if given == expected:
            return None
        if not given:
            message = (
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
            return openai_error(401, message, "invalid_request_error", None)
        message = (
            f"Incorrect API key provided: {given}. You can find your API key at "
            "https://platform.openai.com/account/api-keys."
        )
        return openai_error(401, message, "invalid_request_error", "invalid_api_key")

    def models(self) -> dict:
        """The GET /v1/models body: the served models, flagged as the simulator."""
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": OWNER} for m in (self.options.models or [MODEL_ID])
        ]
        return {"object": "list", "data": data, "synthdspy_simulator": True}

    def screen(self, body: dict) -> Answer | None:
        """Quota, model, context-window and rate-limit checks of a parsed chat body, in that
        order; None admits the request (then counted in the rate windows)."""
        o = self.options
        model = str(body.get("model") or MODEL_ID)
        if o.insufficient_quota:
            message = (
                "You exceeded your current quota, please check your plan and billing details. For more "
                "information on this error, read the docs: "
                "https://platform.openai.com/docs/guides/error-codes/api-errors."
            )
            return openai_error(429, message, "insufficient_quota", "insufficient_quota")
        if o.models is not None and model not in o.models:
            message = f"The model `{model}` does not exist or you do not have access to it."
            return openai_error(404, message, "invalid_request_error", "model_not_found")
        prompt, completion = prompt_estimate(body["messages"]), max_tokens_of(body)
        if o.context_window is not None and prompt + (completion or 0) > o.context_window:
            head = f"This model's maximum context length is {o.context_window} tokens. However, "
            if completion is None:
                tail = f"your messages resulted in {prompt} tokens. Please reduce the length of the messages."
            else:
                tail = (
                    f"you requested {prompt + completion} tokens ({prompt} in the messages, {completion} "
                    "in the completion). Please reduce the length of the messages or completion."
                )
            return openai_error(400, head + tail, "invalid_request_error", "context_length_exceeded", "messages")
        rejection = self.limiter.admit(prompt + (DEFAULT_MAX_TOKENS if completion is None else completion))
        if rejection is None:
            return None
        short = "RPM" if rejection.kind == "requests" else "TPM"
        per = "min" if o.window_s == 60 else format_duration(o.window_s)
        where = f"{model} in organization org-synthdspy-simulator on {rejection.kind} per {per} ({short})"
        more = "Visit https://platform.openai.com/account/rate-limits to learn more."
        if math.isinf(rejection.wait_s):
            message = (
                f"Request too large for {where}: Limit {rejection.limit}, Requested {rejection.requested}. "
                f"The input or output tokens must be reduced in order to run successfully. {more}"
            )
            return openai_error(429, message, rejection.kind, "rate_limit_exceeded")
        message = (
            f"Rate limit reached for {where}: Limit {rejection.limit}, Used {rejection.used}, Requested "
            f"{rejection.requested}. Please try again in {format_duration(rejection.wait_s)}. {more}"
        )
        return openai_error(
            429,
            message,
            rejection.kind,
            "rate_limit_exceeded",
            retry_after=str(max(1, math.ceil(rejection.wait_s))),
            retry_after_ms=str(max(1, math.ceil(rejection.wait_s * 1000))),
        )

    def draw(self) -> tuple[str | None, float]:
        """(fault or None, latency seconds) for an admitted request: one seeded draw each."""
        o = self.options
        with self._lock:
            u, z = self._rng.random(), self._rng.gauss(0.0, 1.0)
        latency = o.latency_median_s * math.exp(o.latency_sigma * z) if o.latency_median_s else 0.0
        edge = 0.0
        for name in _FAULTS:
            edge += getattr(o, f"{name}_rate")
            if u < edge:
                return name, latency
        return None, latency

    def sleep(self, seconds: float) -> bool:
        """Sleep `seconds`; False (at once) if the server stops meanwhile."""
        return not self.stop.wait(seconds) if seconds > 0 else not self.stop.is_set()


def fault_answer(fault: str) -> Answer:
    """The 500 / 503 / 529 answer of an injected fault, with `retry-after: 1`."""
    if fault == "server_error":
        message = "The server had an error while processing your request. Sorry about that!"
        return openai_error(500, message, "server_error", None, retry_after="1")
    if fault == "unavailable":
        return openai_error(503, "The server is overloaded or not ready yet.", "server_error", None, retry_after="1")
    if fault == "overloaded":
        body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        return Answer(529, body, {"retry-after": "1"}, "overloaded_error")
    raise ValueError(f"no error answer for fault {fault!r}")


def completion_body(body: dict, replies: list[SimReply], content_filter: bool = False) -> dict:
    """OpenAI chat.completion body for the simulator's `replies` (one per choice), each cut to
    the request's max_tokens; a content-filtered answer is one refusal per choice instead."""
    limit, choices, completion_tokens = max_tokens_of(body), [], 0
    for i, reply in enumerate(replies):
        if content_filter:
            message = {"role": "assistant", "content": None, "refusal": REFUSAL}
            choices.append({"index": i, "message": message, "finish_reason": "content_filter"})
            completion_tokens += count_tokens(REFUSAL)
            continue
        text, cut = truncate(reply.text, limit)
        message = {"role": "assistant", "content": text, "refusal": None}
        choices.append({"index": i, "message": message, "finish_reason": "length" if cut else "stop"})
        completion_tokens += count_tokens(text)
    prompt_tokens = replies[0].prompt_tokens if replies else 0
    return {
        "id": f"chatcmpl-sim-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", MODEL_ID),
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def is_simulator_endpoint(api_base: str, api_key: str | None = None, timeout_s: float = 2.0) -> bool:
    """True when GET {api_base}/models says the endpoint is synthdspy's simulator (the
    `synthdspy_simulator` flag, or every model owned by "synthdspy-simulator"). False on any
    error (unreachable, HTTP error, bad JSON); never raises."""
    try:
        request = urllib.request.Request(api_base.rstrip("/") + "/models")
        if api_key:
            request.add_header("Authorization", f"Bearer {api_key}")
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - caller's URL
            body = json.loads(response.read())
        if body.get("synthdspy_simulator") is True:
            return True
        data = body.get("data") or []
        return bool(data) and all(isinstance(m, dict) and m.get("owned_by") == OWNER for m in data)
    except Exception:  # noqa: BLE001 - a probe: any failure means "not known to be the simulator"
        return False
