"""The HTTP engine under every real ``dspy.LM`` of synthdspy: LiteLLM plus rate limiting, retries
with backoff, failure classes, truncation checks, metering and secret scrubbing.

It sits *below* DSPy's response cache (``dspy.LM(engine=ProviderEngine(...))``): a cache hit
never waits for the limiter, never counts against a rate limit and is never billed. Each call:

1. waits for a slot of the role (its ``concurrency``) and of the endpoint's shared
   :class:`~synthdspy.ratelimit.EndpointLimiter` (AIMD window, RPM/TPM pacing);
2. sends one request through DSPy's LiteLLM engine with the role's ``timeout_s``;
3. on a transient failure (429, 5xx, 529, timeout, dropped connection) retries up to
   ``num_retries`` times with exponential backoff and full jitter (AWS Architecture Blog,
   "Exponential Backoff and Jitter", 2015), honouring ``Retry-After`` clamped to 0.5-60 s; a
   run- or record-fatal failure is raised at once (:mod:`synthdspy.llm_failures`);
4. meters the billed usage and cost of the role (a truncated answer is billed too);
5. raises :class:`~synthdspy.llm_failures.TruncatedAnswerError` on ``finish_reason == "length"``
   and :class:`~synthdspy.llm_failures.RefusedAnswerError` on a content filter or refusal.

Single-flight: a request identical to one still in flight (same messages, parameters and rollout
id) waits for that one's answer instead of being sent again. DSPy's ``Evaluate`` re-submits a
straggling batch after 120 s while the first submission still runs; without this, every call of
that batch would be billed twice.

Secrets (the role's key and every credential-like environment variable) are scrubbed from the
messages of every exception it raises, so a provider that echoes the key in an error body cannot
carry it into logs, MLflow traces or ``failures.jsonl``.

The response cache key includes the endpoint (``synthdspy_endpoint``: model and api_base), a key
DSPy keeps in the cache key and this engine strips before sending, so answers from one server are
never replayed for another (DSPy's own key drops ``api_base``).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import random
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dspy.clients.engines.litellm_engine import AsyncLiteLLMEngine, LiteLLMEngine

from synthdspy.llm_failures import RefusedAnswerError, TruncatedAnswerError, causes, classify
from synthdspy.ratelimit import EndpointLimiter
from synthdspy.tracking import scrub_env_secrets

ENDPOINT_KEY = "synthdspy_endpoint"
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 30.0

warnings.filterwarnings("ignore", message="The custom-engine complete_legacy", category=DeprecationWarning)
warnings.filterwarnings("ignore", message="The custom-engine complete_legacy", category=FutureWarning)
# A unit cancelled (circuit breaker, Ctrl-C) while LiteLLM's `acompletion` waits for its executor
# drops the provider coroutine that executor built, before it sends anything: nothing to warn about.
DROPPED_COROUTINE = r"coroutine '\w+\.(acompletion|async_completion|acompletion_function)' was never awaited"
warnings.filterwarnings("ignore", message=DROPPED_COROUTINE, category=RuntimeWarning)


def estimate_tokens(request: dict[str, Any]) -> int:
    """Rate-limit tokens of a chat request as providers count them: prompt characters / 4
    (rounded up) plus ``max_tokens`` (or ``max_completion_tokens``), times ``n``."""
    chars = 0
    for message in request.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(str(part.get("text", ""))) for part in content if isinstance(part, dict))
    out = request.get("max_tokens") or request.get("max_completion_tokens") or 0
    return -(-chars // 4) + int(out) * int(request.get("n") or 1)


def backoff_s(attempt: int, retry_after: float | None, rng: random.Random) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): the provider's ``retry_after`` clamped
    to [0.5, 60] s when given, else full jitter ``uniform(0, min(cap, base * 2**attempt))``."""
    if retry_after is not None:
        return min(max(retry_after, 0.5), 60.0)
    return rng.uniform(0.0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))


def scrub_exception(exc: BaseException, secrets: tuple[str, ...]) -> None:
    """Replace ``secrets`` (and credential-like environment values) in the messages of ``exc``
    and its cause chain, in place: ``args``, ``message`` and ``body`` strings."""

    def clean(text: str) -> str:
        for secret in secrets:
            if secret and len(secret) >= 8:
                text = text.replace(secret, "***")
        return scrub_env_secrets(text)

    for link in causes(exc):
        link.args = tuple(clean(a) if isinstance(a, str) else a for a in link.args)
        for attr in ("message", "body"):
            value = getattr(link, attr, None)
            try:
                if isinstance(value, str):
                    setattr(link, attr, clean(value))
                elif isinstance(value, dict):
                    setattr(link, attr, {k: clean(v) if isinstance(v, str) else v for k, v in value.items()})
            except (AttributeError, TypeError):
                continue
        response = getattr(link, "response", None)
        if response is not None and hasattr(response, "_content"):
            try:
                response._content = clean(response.content.decode("utf-8", "replace")).encode()
                if hasattr(response, "_text"):  # httpx caches the decoded body too
                    response._text = clean(response._text)
            except Exception:  # an SDK response without a readable body: nothing to scrub
                continue


def _error_headers(exc: BaseException) -> dict[str, object]:
    for link in causes(exc):
        headers = getattr(getattr(link, "response", None), "headers", None) or getattr(link, "headers", None)
        if headers:
            return dict(headers.items()) if hasattr(headers, "items") else {}
        headers = getattr(link, "litellm_response_headers", None)
        if headers:
            return dict(headers.items())
    return {}


def _choice(raw: Any) -> tuple[str | None, Any]:
    choices = getattr(raw, "choices", None) or (raw.get("choices") if isinstance(raw, dict) else None) or []
    if not choices:
        return None, None
    first = choices[0]
    reason = getattr(first, "finish_reason", None) if not isinstance(first, dict) else first.get("finish_reason")
    message = getattr(first, "message", None) if not isinstance(first, dict) else first.get("message")
    return reason, message


@dataclass
class _Flight:
    """One request in flight, awaited by identical requests sent meanwhile (single-flight)."""

    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class _ProviderCore:
    """What the sync and async provider engines share: settings, the attempt outcome, the checks.

    Args:
        model: the LiteLLM model string (sent as the wire model).
        role: the role name (for the meter and messages).
        limiter: the endpoint's shared limiter.
        concurrency: the role's own cap on requests in flight.
        num_retries: retries of a transient failure (attempts = num_retries + 1).
        on_usage: ``on_usage(role, usage_dict, raw_response)`` after every billed answer.
        **client_options: LiteLLM client settings (``api_key``, ``api_base``, ``timeout``,
            ``extra_headers``).
    """

    model_type: str
    client_options: dict[str, Any]
    wire_model: str | None

    def __init__(self, model: str, role: str, limiter: EndpointLimiter, concurrency: int, num_retries: int,
                 on_usage: Callable[[str, dict, Any], None], **client_options: Any) -> None:
        super().__init__(model_type="chat", wire_model=model, **client_options)  # type: ignore[call-arg]
        self.role = role
        self.limiter = limiter
        self.concurrency = concurrency
        self.num_retries = num_retries
        self.on_usage = on_usage
        headers = {**(client_options.get("headers") or {}), **(client_options.get("extra_headers") or {})}
        self._secrets = tuple(v for v in [client_options.get("api_key"), *headers.values()] if isinstance(v, str))
        self._rng = random.Random()

    def _failed(self, exc: Exception, started: float, attempt: int) -> float:
        """Release the limiter after a failed attempt; return the backoff before the next attempt.

        Raises:
            Exception: ``exc`` (scrubbed of secrets) when it is not transient or retries are spent.
        """
        failure = classify(exc)
        transient = failure.kind == "transient"
        scrub_exception(exc, self._secrets)
        if failure.kind == "run":  # before the slot is freed: no waiting request may take it
            self.limiter.abort(exc)
        self.limiter.release(started, ok=False, rate_limited=failure.reason == "rate_limit",
                             retry_after=failure.retry_after if transient else None,
                             headers=_error_headers(exc), error=exc if transient else None)
        if not transient or attempt >= self.num_retries:
            raise exc
        return backoff_s(attempt, failure.retry_after, self._rng)

    def _succeeded(self, result: Any, started: float) -> Any:
        """Release the limiter after an answer, meter it and check it (see :meth:`_check`)."""
        raw = getattr(result, "raw", None)
        hidden = getattr(raw, "_hidden_params", None) or {}
        self.limiter.release(started, ok=True, headers=hidden.get("additional_headers") or {})
        self._check(raw)
        return result

    def dump_state(self) -> dict[str, Any]:
        """The engine's settings for a saved program: model, role, endpoint and timeout; never the
        API key (a loaded engine reads no key: build the LM from the experiment instead)."""
        keep = {k: v for k, v in self.client_options.items() if k in ("api_base", "timeout")}
        return {"model": self.wire_model, "role": self.role, "num_retries": self.num_retries, **keep}

    @classmethod
    def load_state(cls, state: dict[str, Any]) -> Any:
        """An engine from :meth:`dump_state`'s output, with a fresh limiter and no meter."""
        from synthdspy.ratelimit import limiter_for

        state = dict(state)
        model, role, retries = state.pop("model"), state.pop("role"), state.pop("num_retries")
        limiter = limiter_for(model, state.get("api_base"), 8)
        return cls(model, role, limiter, 8, retries, lambda *_: None, **state)  # type: ignore[call-arg]

    def _check(self, raw: Any) -> None:
        usage = getattr(raw, "usage", None)
        usage = dict(usage) if usage is not None and not isinstance(usage, dict) else (usage or {})
        self.on_usage(self.role, usage, raw)
        reason, message = _choice(raw)
        refusal = getattr(message, "refusal", None) if message is not None else None
        if reason == "length":
            raise TruncatedAnswerError(f"answer truncated at max_tokens ({self.role} role); raise max_tokens")
        if reason == "content_filter" or refusal:
            raise RefusedAnswerError(f"answer refused by the provider ({self.role} role): {refusal or reason}")


class ProviderEngine(_ProviderCore, LiteLLMEngine):
    """DSPy's LiteLLM engine with synthdspy's limiter, retries, failure classes and meter, for
    synchronous calls (compile, evaluation, batch rounds); arguments as :class:`_ProviderCore`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._flights: dict[str, _Flight] = {}
        self._flight_lock = threading.Lock()

    def complete_legacy(self, lm: Any, request: dict[str, Any], **context: Any) -> Any:
        """One logical call: limiter, attempts with backoff, checks (see the module docstring).

        Raises:
            TruncatedAnswerError / RefusedAnswerError: the answer was cut or refused.
            Exception: DSPy's classified LM error once retries are spent or for a fatal class.
        """
        request = {k: v for k, v in request.items() if k != ENDPOINT_KEY}
        key = hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()
        with self._flight_lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:  # the same request is in flight (a straggler re-submission): share its answer
            flight.done.wait()
            if flight.error is not None:
                raise RuntimeError("an identical request in flight failed") from flight.error
            return copy.copy(flight.result)
        try:
            flight.result = self._send(lm, request, context)
            return flight.result
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._flight_lock:
                self._flights.pop(key, None)
            flight.done.set()

    def _send(self, lm: Any, request: dict[str, Any], context: dict[str, Any]) -> Any:
        tokens = estimate_tokens(request)
        for attempt in range(self.num_retries + 1):
            with self._slots:
                started = self.limiter.acquire(tokens)
                try:
                    result = super().complete_legacy(lm, request, **context)
                except Exception as exc:
                    wait = self._failed(exc, started, attempt)
                else:
                    return self._succeeded(result, started)
            self.limiter.wait(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")


class AsyncProviderEngine(_ProviderCore, AsyncLiteLLMEngine):
    """:class:`ProviderEngine` for DSPy's async LM path (``dspy.LM.acall``), used by ``generate``:
    the same limiter (awaited, not blocking a thread), retries, failure classes, checks and meter.

    No single-flight: it exists for ``dspy.Evaluate``'s threaded re-submission of stragglers, and
    generation never sends one request twice at once.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots: tuple[Any, asyncio.Semaphore] | None = None

    def _role_slots(self) -> asyncio.Semaphore:
        """The role's concurrency cap on the running event loop (a semaphore belongs to one loop)."""
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, asyncio.Semaphore(self.concurrency))
        return self._slots[1]

    async def complete_legacy(self, lm: Any, request: dict[str, Any], **context: Any) -> Any:
        """One logical call, as :meth:`ProviderEngine.complete_legacy`.

        Raises:
            TruncatedAnswerError / RefusedAnswerError: the answer was cut or refused.
            Exception: DSPy's classified LM error once retries are spent or for a fatal class.
        """
        request = {k: v for k, v in request.items() if k != ENDPOINT_KEY}
        tokens = estimate_tokens(request)
        slots = self._role_slots()
        for attempt in range(self.num_retries + 1):
            async with slots:
                started = await self.limiter.aacquire(tokens)
                try:
                    result = await super().complete_legacy(lm, request, **context)
                except Exception as exc:
                    wait = self._failed(exc, started, attempt)
                else:
                    return self._succeeded(result, started)
            await self.limiter.await_backoff(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")
