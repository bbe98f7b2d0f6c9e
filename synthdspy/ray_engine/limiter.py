"""One rate limiter per endpoint for a whole Ray cluster: an async Ray actor holding the
:class:`~synthdspy.ratelimit.EndpointLimiter`, and a proxy with the limiter's interface that the
provider engines of every worker use instead of their process-local limiter.

So N workers together keep the AIMD window, pace requests and tokens at the provider's learned or
configured RPM/TPM, and pause on ``Retry-After``, exactly as one process would. Every request
costs one actor call to be admitted (``acquire``, awaited) and one fire-and-forget call when it
ends (``release``); the actor is named after the endpoint, so workers find it by name.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping
from typing import Any

import ray

from synthdspy.llm_failures import from_portable, portable
from synthdspy.ratelimit import EndpointAbortedError, EndpointLimiter


def actor_name(model: str, api_base: str | None) -> str:
    """The Ray actor name of endpoint (``model``, ``api_base``)."""
    digest = hashlib.sha256(f"{model}|{api_base or ''}".encode()).hexdigest()[:16]
    return f"synthdspy-limiter-{digest}"


@ray.remote(num_cpus=0, max_restarts=-1)
class LimiterActor:
    """An :class:`EndpointLimiter` served to the cluster (an async actor: waiting admissions do not
    block one another). Its ``started`` times are on the actor's own clock and only come back to it."""

    def __init__(self, name: str, max_concurrency: int, rpm: int | None, tpm: int | None) -> None:
        self.limiter = EndpointLimiter(name, max_concurrency, rpm, tpm)

    async def acquire(self, tokens: int) -> tuple[float | None, dict | None]:
        """Wait for admission: (the start time to hand back to :meth:`release`, None), or (None,
        the abort's cause as :func:`~synthdspy.llm_failures.portable` data) once the endpoint is
        aborted (an answer, not a Ray error, so the cause keeps its failure class)."""
        try:
            return await self.limiter.aacquire(tokens), None
        except EndpointAbortedError:
            return None, portable(self.limiter.aborted or RuntimeError("aborted"))

    async def release(self, started: float, ok: bool, rate_limited: bool, retry_after: float | None,
                      headers: dict[str, str], error: dict | None) -> None:
        """End a request (see :meth:`EndpointLimiter.release`); ``error``: the transient error, portable."""
        self.limiter.release(started, ok, rate_limited, retry_after, headers,
                             from_portable(error) if error is not None else None)

    async def abort(self, cause: dict) -> None:
        """Refuse every later request of the endpoint; ``cause``: the run-fatal error, portable."""
        self.limiter.abort(from_portable(cause))

    async def aborted(self) -> dict | None:
        """The abort's cause (portable), or None."""
        cause = self.limiter.aborted
        return None if cause is None else portable(cause)

    async def reset(self, max_concurrency: int, rpm: int | None, tpm: int | None) -> None:
        """A new run on the endpoint: clear an earlier abort and apply the run's settings."""
        self.limiter.renew(max_concurrency, rpm, tpm)

    async def stats(self) -> dict[str, Any]:
        """The limiter's counters (requests started, 429s, window, learned limits)."""
        return dict(vars(self.limiter.stats))


def start_limiter(model: str, api_base: str | None, max_concurrency: int, rpm: int | None,
                  tpm: int | None) -> Any:
    """The endpoint's limiter actor, created by the driver (it lives as long as the driver), or
    reused with the run's settings when this driver started it before."""
    name = actor_name(model, api_base)
    actor = LimiterActor.options(name=name, get_if_exists=True).remote(
        f"{model} @ {api_base or 'default endpoint'}", max_concurrency, rpm, tpm)
    ray.get(actor.reset.remote(max_concurrency, rpm, tpm))
    return actor


class RemoteLimiter:
    """The interface of :class:`EndpointLimiter` that the provider engines use, served by the
    endpoint's :class:`LimiterActor` (found by name: the driver must have started it)."""

    def __init__(self, model: str, api_base: str | None) -> None:
        self.name = f"{model} @ {api_base or 'default endpoint'}"
        self.actor = ray.get_actor(actor_name(model, api_base))

    async def aacquire(self, tokens: int = 0) -> float:
        """Admission for a coroutine.

        Raises:
            EndpointAbortedError: the endpoint was aborted (the cause, with its failure class, chained).
        """
        return self._admitted(await self.actor.acquire.remote(tokens))

    def acquire(self, tokens: int = 0) -> float:
        """Admission for a thread (raises as :meth:`aacquire`)."""
        return self._admitted(ray.get(self.actor.acquire.remote(tokens)))

    def release(self, started: float, ok: bool, rate_limited: bool = False, retry_after: float | None = None,
                headers: Mapping[str, object] | None = None, error: BaseException | None = None) -> None:
        """End a request (sent without waiting for the actor)."""
        text = {str(k): str(v) for k, v in (headers or {}).items()}
        self.actor.release.remote(started, ok, rate_limited, retry_after, text,
                                  None if error is None else portable(error))

    def abort(self, cause: BaseException) -> None:
        """Abort the endpoint for the whole cluster."""
        self.actor.abort.remote(portable(cause))

    async def await_backoff(self, seconds: float) -> None:
        """Sleep a retry's backoff, then raise if the endpoint was aborted meanwhile."""
        await asyncio.sleep(seconds)
        self._raise_if_aborted(await self.actor.aborted.remote())

    def wait(self, seconds: float) -> None:
        """:meth:`await_backoff` for a thread."""
        time.sleep(seconds)
        self._raise_if_aborted(ray.get(self.actor.aborted.remote()))

    def _admitted(self, answer: tuple[float | None, dict | None]) -> float:
        started, cause = answer
        if cause is not None:
            raise EndpointAbortedError(f"{self.name}: not sent, an earlier request failed fatally") \
                from from_portable(cause)
        return started  # type: ignore[return-value]

    def _raise_if_aborted(self, cause: dict | None) -> None:
        if cause is not None:
            raise EndpointAbortedError(f"{self.name}: retry not sent, the endpoint was aborted") \
                from from_portable(cause)
