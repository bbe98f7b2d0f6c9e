"""What an LM failure means for a run: fatal for the run, fatal for the record, or transient.

Classification reads DSPy 3.4's canonical error classes (``dspy.lm15`` errors and their
``dspy.utils.exceptions.LM*`` projections, which DSPy maps from LiteLLM's exception types and the
provider's documented error codes: ``invalid_api_key``, ``insufficient_quota``,
``model_not_found``, ``context_length_exceeded`` ...), walking the ``__cause__`` chain so a
wrapped error is found, plus synthdspy's own :class:`TruncatedAnswerError` and
:class:`RefusedAnswerError` raised by the provider engine on ``finish_reason`` ``length`` /
``content_filter``.

- ``run``: authentication, permission, billing/quota, unknown model or provider, unsupported
  parameter, bad client configuration. No retry can fix it; the run stops at once.
- ``record``: context length exceeded, a refusal or content filter, an answer truncated at
  ``max_tokens``. This unit fails with the reason; other units go on.
- ``transient``: 429 rate limits, 5xx and 529 overloaded, timeouts, refused or dropped
  connections (reason ``connection``, also where LiteLLM reports one as a 500). Retried with
  backoff, then the unit fails.
- ``other``: anything else (a malformed answer the adapter cannot parse, a gate bug): the unit
  is retried once with the offending call re-sent, then fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

Kind = Literal["run", "record", "transient", "other"]


class TruncatedAnswerError(Exception):
    """The provider cut the answer at ``max_tokens`` (``finish_reason == "length"``)."""


class RefusedAnswerError(Exception):
    """The provider refused or filtered the answer (``finish_reason == "content_filter"`` or a
    ``refusal`` message)."""


class RunAbortedError(Exception):
    """A generate or compile run stopped early: a run-fatal LM error, the circuit breaker, or
    the spending cap. The message is one line naming the role, model, endpoint and cause."""


@dataclass(frozen=True)
class Failure:
    """The class of one failure: ``kind``, a short ``reason`` (``auth``, ``quota``,
    ``context_length``, ``truncated``, ``rate_limit``, ``timeout`` ...), the HTTP ``status`` when
    known and the provider's ``retry_after`` hint in seconds."""

    kind: Kind
    reason: str
    status: int | None = None
    retry_after: float | None = None


class ClassifiedError(RuntimeError):
    """An LM error that happened in another process (a Ray worker), carried across as its
    one-line message and its :class:`Failure` class (:func:`portable`, :func:`from_portable`)."""

    def __init__(self, message: str, failure: Failure) -> None:
        super().__init__(message)
        self.failure = failure


def portable(exc: BaseException) -> dict:
    """``exc`` as plain data another process can rebuild: ``{"message", "kind", "reason",
    "status", "retry_after"}`` (the message on one line, at most 2000 characters)."""
    return {"message": " ".join(str(exc).split())[:2000], **vars(classify(exc))}


def from_portable(data: dict) -> ClassifiedError:
    """The :class:`ClassifiedError` of :func:`portable`'s ``data``."""
    data = dict(data)
    return ClassifiedError(data.pop("message"), Failure(**data))


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and its ``__cause__`` / ``__context__`` chain, without cycles."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _table() -> list[tuple[type, Kind, str]]:
    from dspy import lm15
    from dspy.utils import exceptions as ex

    return [
        (TruncatedAnswerError, "record", "truncated"),
        (RefusedAnswerError, "record", "refused"),
        (lm15.ContextLengthError, "record", "context_length"),
        (ex.ContextWindowExceededError, "record", "context_length"),
        (lm15.AuthError, "run", "auth"),
        (ex.LMAuthError, "run", "auth"),
        (lm15.BillingError, "run", "quota"),
        (ex.LMBillingError, "run", "quota"),
        (lm15.UnsupportedModelError, "run", "unknown_model"),
        (ex.LMUnsupportedModelError, "run", "unknown_model"),
        (lm15.UnsupportedFeatureError, "run", "unsupported_parameter"),
        (ex.LMUnsupportedFeatureError, "run", "unsupported_parameter"),
        (lm15.ConfigurationError, "run", "configuration"),
        (ex.LMConfigurationError, "run", "configuration"),
        (lm15.RateLimitError, "transient", "rate_limit"),
        (ex.LMRateLimitError, "transient", "rate_limit"),
        (lm15.TimeoutError, "transient", "timeout"),
        (ex.LMTimeoutError, "transient", "timeout"),
        (lm15.ServerError, "transient", "server_error"),
        (ex.LMServerError, "transient", "server_error"),
        (lm15.TransportError, "transient", "connection"),
        (ex.LMTransportError, "transient", "connection"),
        (lm15.InvalidRequestError, "record", "invalid_request"),
        (ex.LMInvalidRequestError, "record", "invalid_request"),
    ]


_CODES: dict[str, tuple[Kind, str]] = {
    "unsupported_parameter": ("run", "unsupported_parameter"),  # OpenAI: a parameter the model refuses
    "unsupported_value": ("run", "unsupported_parameter"),
    "content_filter": ("record", "refused"),
    "content_policy_violation": ("record", "refused"),
    "overloaded_error": ("transient", "overloaded"),
}


def classify(exc: BaseException) -> Failure:
    """The :class:`Failure` class of ``exc`` (see the module docstring), looking through its
    cause chain; the first classified link wins, so DSPy's projection and the engine's original
    agree. HTTP 529 and 5xx without a class are transient; 401/403 are run-fatal."""
    table, chain = _table(), list(causes(exc))
    for link in chain:
        if isinstance(link, ClassifiedError):
            return link.failure
        status = getattr(link, "status", None) or getattr(link, "status_code", None)
        status = status if isinstance(status, int) else None
        hint = getattr(link, "retry_after", None)
        hint = float(hint) if isinstance(hint, (int, float)) else None
        code = str(getattr(link, "provider_code", "") or "")
        if code in _CODES:
            kind, reason = _CODES[code]
            return Failure(kind, reason, status, hint)
        for cls, kind, reason in table:
            if isinstance(link, cls):
                if reason == "server_error" and status == 529:
                    reason = "overloaded"
                elif reason == "server_error":
                    reason = _transport(chain) or reason
                return Failure(kind, reason, status, hint)
        if status in (401, 403):
            return Failure("run", "auth", status)
        if status == 529 or (status is not None and status >= 500) or status == 429:
            reason = "rate_limit" if status == 429 else _transport(chain) or "server_error"
            return Failure("transient", reason, status, hint)
    return Failure("other", type(exc).__name__)


def _transport(chain: list[BaseException]) -> str | None:
    """``timeout`` or ``connection`` when ``chain`` holds a transport error beneath a server-error
    status (LiteLLM reports a refused or dropped connection as a 500 ``InternalServerError``),
    else None."""
    import aiohttp
    import httpx

    for link in chain:
        if isinstance(link, (TimeoutError, httpx.TimeoutException)):
            return "timeout"
        if isinstance(link, (ConnectionError, httpx.TransportError, aiohttp.ClientConnectionError)):
            return "connection"
    return None
