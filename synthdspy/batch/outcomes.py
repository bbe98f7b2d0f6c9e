"""What a batch answer or failed batch request means for the unit that asked for it: the error
the online call would have raised (:mod:`synthdspy.llm_failures` classes it the same way)."""

from __future__ import annotations

from typing import Any

from dspy.utils import exceptions as ex

from synthdspy.llm_failures import RefusedAnswerError, TruncatedAnswerError


def answer_problem(body: dict[str, Any], role: str) -> Exception | None:
    """The error of an answer the engine would not accept online: cut at ``max_tokens``
    (``TruncatedAnswerError``) or refused / filtered (``RefusedAnswerError``); None when usable."""
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    reason = choice.get("finish_reason")
    if reason == "length":
        return TruncatedAnswerError(f"answer truncated at max_tokens ({role} role); raise max_tokens")
    if reason == "content_filter" or message.get("refusal"):
        return RefusedAnswerError(f"answer refused by the provider ({role} role): {message.get('refusal') or reason}")
    return None


def request_error(error: dict[str, Any], role: str) -> Exception:
    """The DSPy error of a batch request that failed for good, from its error-file entry
    ``{"status", "code", "message"}``: 401/403 auth (run-fatal), context length, another 4xx
    (invalid request: the record fails), else a server error (transient, retries spent)."""
    status, code = error.get("status"), error.get("code")
    text = f"batch request of the {role} role failed: {error.get('message') or code}"
    if status in (401, 403):
        return ex.LMAuthError(text, status=status, provider_code=code)
    if code == "context_length_exceeded":
        return ex.ContextWindowExceededError(text, status=status, provider_code=code)
    if isinstance(status, int) and 400 <= status < 500 and status != 429:
        return ex.LMInvalidRequestError(text, status=status, provider_code=code)
    return ex.LMServerError(text, status=status if isinstance(status, int) else None, provider_code=code)
