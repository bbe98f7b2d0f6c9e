"""Deferred LM calls: run a unit until its first LM call without a cached answer, and record it.

In batch mode every role on an HTTP provider gets a :class:`DeferringEngine` in place of its
:class:`~synthdspy.provider_engine.ProviderEngine`. DSPy asks the engine only on a response-cache
miss, so a call reaching it is one the unit has no answer for yet: the engine records the request
(DSPy's cache-key request, exactly as ``dspy.clients.execution.PreparedCall.key`` builds it, and
the chat body the provider would receive) in a :class:`Collector` and raises :class:`Deferred`,
which stops the unit. Once the batch answers, the answer is written to ``dspy.cache`` under that
key (:func:`store_answer`), and the next round's replay of the unit is a cache hit.

A request the batch could not answer for good (a 4xx, a truncated or refused answer, or failures
past ``MAX_ATTEMPTS``) is raised by the engine as the error the online call would have raised,
so the unit fails with the same failure class as online.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from typing import Any

import dspy
from dspy.clients.cache import _transform_value
from dspy.clients.execution import IGNORED_CACHE_KEYS

from synthdspy.provider_engine import ENDPOINT_KEY

MAX_ATTEMPTS = 5
# Request keys that are client settings or DSPy's own, never part of the provider's chat body.
_NOT_SENT = {"model", "messages", ENDPOINT_KEY, "rollout_id", "_fn_identifier", "num_retries", "cache", "headers",
             "extra_headers", "api_key", "api_base", "base_url", "timeout", "extra_body"}


class Deferred(BaseException):  # noqa: N818 - a control-flow signal, like GeneratorExit
    """Stops a unit at an LM call whose answer is not cached yet. A ``BaseException``, so that no
    ``except Exception`` on the way (DSPy's adapters and engine boundary, the unit retry) takes it
    for a failed call."""


@dataclass
class BatchCall:
    """One deferred request: ``digest`` (DSPy's cache key), ``key`` (the cache-key request,
    JSON-safe), ``body`` (the chat body sent to the provider), ``role`` and ``group`` (the
    endpoint, ``model @ api_base``: one batch per group and round)."""

    digest: str
    key: dict[str, Any]
    body: dict[str, Any]
    role: str
    group: str


@dataclass
class Collector:
    """The calls deferred in a round (by digest, so identical requests are sent once), the
    requests that failed for good (raised again when asked for), and failed attempts so far."""

    calls: dict[str, BatchCall] = field(default_factory=dict)
    final: dict[str, BaseException] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, call: BatchCall) -> None:
        """Record ``call`` for this round's batch."""
        with self._lock:
            self.calls.setdefault(call.digest, call)

    def take(self) -> list[BatchCall]:
        """The calls deferred since the last take, in the order first asked for."""
        with self._lock:
            calls, self.calls = list(self.calls.values()), {}
        return calls

    def failed_attempt(self, digest: str, error: BaseException) -> bool:
        """Count a failed attempt (expired, 5xx, 429); after ``MAX_ATTEMPTS`` the request fails for
        good with ``error``. True when it will be sent again."""
        with self._lock:
            self.attempts[digest] = self.attempts.get(digest, 0) + 1
            if self.attempts[digest] < MAX_ATTEMPTS:
                return True
            self.final[digest] = error
            return False


def cache_request(request: dict[str, Any], model_type: str) -> dict[str, Any]:
    """DSPy's cache-key request for the legacy call ``request`` (the dict the engine receives,
    ``PreparedCall.legacy``), made JSON-safe with DSPy's own transform (same digest)."""
    suffix = {"chat": "completion", "text": "text_completion", "responses": "responses_completion"}[model_type]
    key = {**request, "_fn_identifier": f"dspy.clients.lm.litellm_{suffix}"}
    return {k: _transform_value(v) for k, v in key.items() if k not in IGNORED_CACHE_KEYS}


def chat_body(request: dict[str, Any], wire_model: str) -> dict[str, Any]:
    """The OpenAI chat body of ``request``: ``model`` (the provider's name), ``messages`` and the
    generation parameters as given (``extra_body`` merged in, as the OpenAI SDK does); a pydantic
    ``response_format`` becomes its JSON-schema form (LiteLLM's conversion)."""
    body: dict[str, Any] = {"model": wire_model, "messages": request["messages"]}
    for name, value in request.items():
        if name not in _NOT_SENT and value is not None:
            body[name] = value
    if isinstance(body.get("response_format"), type):
        from litellm.utils import type_to_response_format_param

        body["response_format"] = type_to_response_format_param(body["response_format"])
    body.update(request.get("extra_body") or {})
    return body


def store_answer(key: dict[str, Any], body: dict[str, Any]) -> None:
    """Write a chat.completion ``body`` to ``dspy.cache`` under ``key``, as the online call's answer
    (a LiteLLM ``ModelResponse``, the object DSPy caches on this path)."""
    import litellm

    dspy.cache.put(key, litellm.ModelResponse(**copy.deepcopy(body)), IGNORED_CACHE_KEYS)


def has_answer(key: dict[str, Any]) -> bool:
    """True when ``dspy.cache`` holds an answer under ``key``."""
    return dspy.cache.cache_key(key, IGNORED_CACHE_KEYS) in dspy.cache


class DeferringEngine:
    """The engine of a role in batch mode (see the module doc). ``inner``: the role's
    ProviderEngine (kept for its limiter, which ``stop_endpoints`` aborts)."""

    def __init__(self, inner: Any, role: str, wire_model: str, group: str, collector: Collector) -> None:
        self.inner = inner
        self.limiter = inner.limiter
        self.role = role
        self.wire_model = wire_model
        self.group = group
        self.collector = collector

    def complete(self, request: Any) -> Any:
        """Typed requests (not used by synthdspy's programs) go online through the inner engine."""
        return self.inner.complete(request)

    def complete_legacy(self, lm: Any, request: dict[str, Any], **context: Any) -> Any:
        """Raise the request's final error if it failed for good, else record it and raise
        :class:`Deferred`."""
        key = cache_request(request, lm.model_type)
        digest = dspy.cache.cache_key(key, IGNORED_CACHE_KEYS)
        error = self.collector.final.get(digest)
        if error is not None:
            raise error
        self.collector.add(BatchCall(digest, key, chat_body(request, self.wire_model), self.role, self.group))
        raise Deferred(digest)
