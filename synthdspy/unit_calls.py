"""Re-send only the LM call that failed when a unit is retried; replay the rest from the cache.

A unit (one seed at one rollout) makes several LM calls: the task's, then the gates' judges. When
one answer is unusable (the adapter cannot parse it), retrying the whole unit with the cache off
would pay every call again. Instead each attempt logs its calls (a fingerprint of model, messages
and rollout id, with the answer text), and the retry marks the calls whose answers failed: only
those are sent again, under a derived ``rollout_id`` (a fresh cache key that is itself cached, so
a resumed run replays the retry too); every other call is a cache hit and costs nothing.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from synthdspy.llm_failures import causes


@dataclass
class CallLog:
    """The LM calls of one unit attempt: ``calls`` as (fingerprint, answer text) in order, and
    the fingerprints to re-send (``refresh``) with the attempt number as salt."""

    refresh: frozenset[str] = frozenset()
    attempt: int = 0
    calls: list[tuple[str, str]] = field(default_factory=list)


_log: contextvars.ContextVar[CallLog | None] = contextvars.ContextVar("synthdspy_unit_calls", default=None)


def fingerprint(model: str, prompt: Any, messages: Any, kwargs: dict[str, Any]) -> str:
    """A stable id of one LM call: model, prompt or messages, and rollout id (16 hex digits)."""
    body = json.dumps([model, prompt, messages, kwargs.get("rollout_id")], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def before_call(model: str, prompt: Any, messages: Any, kwargs: dict[str, Any]) -> str | None:
    """Called by the metered LMs before each call: returns the call's fingerprint (None outside
    a unit) and, for a call marked for refresh, moves ``kwargs["rollout_id"]`` to a fresh value."""
    log = _log.get()
    if log is None:
        return None
    fp = fingerprint(model, prompt, messages, kwargs)
    if fp in log.refresh:
        base = kwargs.get("rollout_id") or 0
        salt = 900 + log.attempt
        kwargs["rollout_id"] = int(base) * 1000 + salt if isinstance(base, int) else f"{base}#{salt}"
    return fp


def after_call(fp: str | None, outputs: Any) -> None:
    """Log the answer of call ``fp`` (the first output's text)."""
    log = _log.get()
    if log is None or fp is None:
        return
    first = outputs[0] if isinstance(outputs, list) and outputs else outputs
    text = first.get("text", "") if isinstance(first, dict) else str(first)
    log.calls.append((fp, str(text)))


@contextlib.contextmanager
def unit_attempt(refresh: frozenset[str] = frozenset(), attempt: int = 0) -> Iterator[CallLog]:
    """Log the LM calls made inside the block (one unit attempt)."""
    log = CallLog(refresh, attempt)
    token = _log.set(log)
    try:
        yield log
    finally:
        _log.reset(token)


def failed_calls(exc: BaseException, log: CallLog) -> frozenset[str]:
    """The fingerprints of the calls whose answers caused ``exc``: those whose text is the
    ``lm_response`` of an adapter parse error in its chain, else the attempt's last call."""
    bad = {str(r) for link in causes(exc) if (r := getattr(link, "lm_response", None))}
    hits = frozenset(fp for fp, text in log.calls if text in bad or any(text and text in b for b in bad))
    if hits:
        return hits
    return frozenset({log.calls[-1][0]}) if log.calls else frozenset()
