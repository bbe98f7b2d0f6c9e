"""One rate limiter per endpoint (model + api_base): AIMD concurrency and RPM/TPM pacing.

Every role whose LM points at the same endpoint shares one :class:`EndpointLimiter` (see
:func:`limiter_for`), so a generator and a judge on one API account never exceed its limits
together. Three mechanisms work at once, none of which needs configuration:

- **AIMD concurrency** (additive increase, multiplicative decrease, as in TCP congestion control,
  Chiu & Jain 1989): the window of requests in flight starts at 1 and doubles per success (slow
  start, so a wrong key or a dead model costs one request, not ``concurrency`` of them) up to the
  roles' ``concurrency``; after the first 429 it grows by ``1/window`` per success and is halved on
  a 429, at most once per round trip (a 429 for a request sent before the last decrease does not
  decrease again).
- **Pacing from the provider's headers**: ``x-ratelimit-limit-requests`` / ``-tokens`` (OpenAI's
  documented headers; Anthropic's ``anthropic-ratelimit-*`` are mapped to the same names by
  LiteLLM) set a learned RPM/TPM, and requests are spaced at ``safety`` (99%) of that rate (a
  generic cell rate algorithm with no burst, so a sliding 60-second window is never exceeded).
  When ``x-ratelimit-remaining-*`` says no more than the requests already in flight are left,
  new requests wait for ``x-ratelimit-reset-*``.
- **Retry-After**: a 429 or 503 with a ``retry-after`` hint pauses the whole endpoint for that
  long, clamped to ``[0.5, 60]`` seconds.

``rpm`` / ``tpm`` from the config are used from the first request on (before any header is seen);
with both a configured and a learned limit, the lower wins. Tokens are counted as the provider
counts them for rate limiting: a prompt estimate plus ``max_tokens``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

RETRY_AFTER_RANGE = (0.5, 60.0)
FAILED_PROBES = 8  # failed requests in a row, with no success yet, that abort an endpoint
class EndpointAbortedError(RuntimeError):
    """A request refused because the endpoint's limiter was aborted by a run-fatal error."""


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str | float | None) -> float | None:
    """Seconds in a reset header: OpenAI's durations (``"1s"``, ``"6m0s"``, ``"120ms"``), a plain
    number, or Anthropic's RFC 3339 reset time (seconds until then); None when absent or unreadable."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    with contextlib.suppress(ValueError):  # Anthropic: an RFC 3339 time ("2026-12-01T01:02:03Z")
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if when.tzinfo is not None:
            return max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())
    parts = _DURATION.findall(text)
    return sum(float(n) * _UNIT_S[u] for n, u in parts) if parts else None


def _int(value: object) -> int | None:
    try:
        return int(float(str(value)))
    except (TypeError, ValueError):
        return None


@dataclass
class _Pacer:
    """Spaces events at ``rate`` units per second (GCRA without burst)."""

    rate: float | None = None
    next_t: float = 0.0

    def reserve(self, now: float, amount: float = 1.0) -> float:
        """Seconds to wait before an event of ``amount`` units; reserves its slot."""
        if not self.rate:
            return 0.0
        start = max(now, self.next_t)
        self.next_t = start + amount / self.rate
        return start - now


@dataclass
class LimiterStats:
    """Counters of one endpoint: requests started and finished (answered or failed), 429s seen, the
    current AIMD window."""

    started: int = 0
    finished: int = 0
    rate_limited: int = 0
    decreases: int = 0
    window: float = 0.0
    learned_rpm: int | None = None
    learned_tpm: int | None = None


@dataclass
class EndpointLimiter:
    """Admission control for one endpoint; thread-safe.

    Args:
        name: the endpoint, for messages (``model @ api_base``).
        max_concurrency: upper bound of the AIMD window (requests in flight).
        rpm / tpm: configured requests and tokens per minute, or None to learn them.
        safety: share of a limit to pace at (0.99: headroom for request jitter at the window's edges;
            1.0 drew one 429 in 281 requests in ``benchmarks/provider_limits.py``).
        clock / sleep: injectable for tests.
    """

    name: str
    max_concurrency: int
    rpm: int | None = None
    tpm: int | None = None
    safety: float = 0.99
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    stats: LimiterStats = field(default_factory=LimiterStats)

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self._window = 1.0
        self._slow_start = True
        self._aborted: BaseException | None = None
        self._succeeded = False
        self._failed_in_row = 0
        self._in_flight = 0
        self._paused_until = 0.0
        self._last_decrease = -1.0
        self._requests = _Pacer()
        self._tokens = _Pacer()
        self._learned_rpm: int | None = None
        self._learned_tpm: int | None = None
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._set_rates()

    def _set_rates(self) -> None:
        def lowest(a: int | None, b: int | None) -> int | None:
            known = [x for x in (a, b) if x]
            return min(known) if known else None

        rpm, tpm = lowest(self.rpm, self._learned_rpm), lowest(self.tpm, self._learned_tpm)
        self._requests.rate = rpm * self.safety / 60.0 if rpm else None
        self._tokens.rate = tpm * self.safety / 60.0 if tpm else None

    @property
    def window(self) -> int:
        """Requests allowed in flight now (the AIMD window, at least 1)."""
        return max(1, int(self._window))

    @property
    def aborted(self) -> BaseException | None:
        """Why the endpoint was aborted (:meth:`abort`'s cause), or None (also after :meth:`renew`)."""
        return self._aborted

    def renew(self, max_concurrency: int, rpm: int | None, tpm: int | None) -> None:
        """A new run on the endpoint: clear an earlier abort (a fixed key may follow a wrong one) and
        apply the run's window bound and configured limits; learned limits and pacing are kept."""
        with self._cond:
            self._aborted, self._failed_in_row = None, 0
            self.max_concurrency, self.rpm, self.tpm = max_concurrency, rpm, tpm
            self._set_rates()

    def abort(self, cause: BaseException) -> None:
        """Refuse every later request: ``cause`` (a wrong key, no quota, an unknown model) is fatal
        for this endpoint, so requests waiting for a slot must not be sent after it."""
        with self._cond:
            self._aborted = cause
            self._notify()

    def _admit(self, tokens: int) -> float | None:
        """Under the lock: admit a request of ``tokens`` (returning the seconds its pacing slot is
        ahead), or None when the window is full or the endpoint is paused.

        Raises:
            EndpointAbortedError: :meth:`abort` was called (its cause is chained).
        """
        if self._aborted is not None:
            raise EndpointAbortedError(f"{self.name}: not sent, an earlier request failed fatally") from self._aborted
        if self._in_flight >= self.window or self.clock() < self._paused_until:
            return None
        self._in_flight += 1
        now = self.clock()
        self.stats.started += 1
        return max(self._requests.reserve(now), self._tokens.reserve(now, float(tokens)))

    def _notify(self) -> None:
        """Under the lock: wake blocked threads and awaiting coroutines to re-check admission."""
        self._cond.notify_all()
        waiters, self._async_waiters = self._async_waiters, []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(_wake, future)

    async def aacquire(self, tokens: int = 0) -> float:
        """:meth:`acquire` for coroutines: waits on the event loop, not in a thread.

        Raises:
            EndpointAbortedError: :meth:`abort` was called (its cause is chained).
        """
        loop = asyncio.get_running_loop()
        while True:
            with self._cond:
                wait = self._admit(tokens)
                if wait is None:
                    future = loop.create_future()
                    self._async_waiters.append((loop, future))
                    pause = self._paused_until - self.clock()
            if wait is not None:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(future, timeout=max(0.01, min(pause, 1.0)) if pause > 0 else 1.0)
        if wait > 0:
            await asyncio.sleep(wait)
        return self.clock()

    async def await_backoff(self, seconds: float) -> None:
        """:meth:`wait` for coroutines.

        Raises:
            EndpointAbortedError: :meth:`abort` was called before or during the wait.
        """
        deadline = self.clock() + seconds
        while self._aborted is None and self.clock() < deadline:
            await asyncio.sleep(min(deadline - self.clock(), 0.5))
        if self._aborted is not None:
            raise EndpointAbortedError(f"{self.name}: retry not sent, the endpoint was aborted") from self._aborted

    def acquire(self, tokens: int = 0) -> float:
        """Block until a request of ``tokens`` estimated tokens may start; returns its start time
        (the clock's), to hand back to :meth:`release`.

        Raises:
            EndpointAbortedError: :meth:`abort` was called (its cause is chained).
        """
        with self._cond:
            while (wait := self._admit(tokens)) is None:
                pause = self._paused_until - self.clock()
                self._cond.wait(timeout=max(0.01, min(pause, 1.0)) if pause > 0 else 1.0)
        if wait > 0:
            self.sleep(wait)
        return self.clock()

    def release(self, started: float, ok: bool, rate_limited: bool = False, retry_after: float | None = None,
                headers: Mapping[str, object] | None = None, error: BaseException | None = None) -> None:
        """End a request that began at ``started``.

        A success widens the window (doubling in slow start, then ``+1/window``); a 429 halves it
        (once per round trip) and ends slow start; another transient failure (``error``: a timeout,
        a 5xx) still widens it in slow start, since only a run-fatal answer needs the one-request
        probe. ``FAILED_PROBES`` failed requests in a row before any success abort the endpoint
        with the last ``error`` (a server that accepts connections and never answers).
        ``retry_after`` pauses the endpoint; ``headers`` update pacing.
        """
        with self._cond:
            self._in_flight -= 1
            self.stats.finished += 1
            now = self.clock()
            if ok or (self._slow_start and error is not None and not rate_limited):
                grow = self._window if self._slow_start else 1.0 / max(self._window, 1.0)
                self._window = min(float(self.max_concurrency), self._window + grow)
            if ok:
                self._succeeded, self._failed_in_row = True, 0
            else:
                self._failed_in_row += 1
                if error is not None and not self._succeeded and self._failed_in_row >= FAILED_PROBES:
                    self._aborted = self._aborted or error
            if rate_limited:
                self.stats.rate_limited += 1
                self._slow_start = False
                if started > self._last_decrease:
                    self._window = max(1.0, self._window / 2.0)
                    self._last_decrease = now
                    self.stats.decreases += 1
            if retry_after is not None:
                lo, hi = RETRY_AFTER_RANGE
                self._paused_until = max(self._paused_until, now + min(max(retry_after, lo), hi))
            if headers:
                self._read_headers(headers, now)
            self.stats.window = self._window
            self._notify()

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` (a retry's backoff), waking early to raise if the endpoint is aborted.

        Raises:
            EndpointAbortedError: :meth:`abort` was called before or during the wait.
        """
        deadline = self.clock() + seconds
        with self._cond:
            while self._aborted is None and self.clock() < deadline:
                self._cond.wait(timeout=min(deadline - self.clock(), 1.0))
            if self._aborted is not None:
                raise EndpointAbortedError(f"{self.name}: retry not sent, the endpoint was aborted") \
                    from self._aborted

    def _read_headers(self, headers: Mapping[str, object], now: float) -> None:
        h = {str(k).lower().removeprefix("llm_provider-"): v for k, v in headers.items()}
        for kind in ("requests", "tokens"):  # Anthropic's own names (LiteLLM maps limit and remaining only)
            h.setdefault(f"x-ratelimit-reset-{kind}", h.get(f"anthropic-ratelimit-{kind}-reset"))
        changed = False
        for kind in ("requests", "tokens"):
            limit = _int(h.get(f"x-ratelimit-limit-{kind}"))
            attr = "_learned_rpm" if kind == "requests" else "_learned_tpm"
            if limit and limit != getattr(self, attr):
                setattr(self, attr, limit)
                changed = True
            remaining = _int(h.get(f"x-ratelimit-remaining-{kind}"))
            reset = parse_duration(h.get(f"x-ratelimit-reset-{kind}"))  # type: ignore[arg-type]
            # paced at a known limit, only an empty quota (another client on the key) pauses; unpaced,
            # the requests in flight would use up what remains
            paced = self._requests.rate if kind == "requests" else self._tokens.rate
            threshold = 0 if paced or kind == "tokens" else self._in_flight
            if remaining is not None and reset and remaining <= threshold:
                self._paused_until = max(self._paused_until, now + min(reset, RETRY_AFTER_RANGE[1]))
        if changed:
            self._set_rates()
            self.stats.learned_rpm, self.stats.learned_tpm = self._learned_rpm, self._learned_tpm


def _wake(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


_registry: dict[tuple[str, str], EndpointLimiter] = {}
_registry_lock = threading.Lock()


def limiter_for(model: str, api_base: str | None, concurrency: int, rpm: int | None = None,
                tpm: int | None = None) -> EndpointLimiter:
    """The process-wide limiter of endpoint (``model``, ``api_base``): created on first use,
    then shared. A later role on the same endpoint raises its ``max_concurrency`` to the larger
    of the two and tightens ``rpm`` / ``tpm`` to the lower configured value; an abort of an earlier
    run is cleared."""
    key = (model, api_base or "")
    with _registry_lock:
        limiter = _registry.get(key)
        if limiter is None:
            limiter = EndpointLimiter(f"{model} @ {api_base or 'default endpoint'}", concurrency, rpm, tpm)
            _registry[key] = limiter
            return limiter
        limiter.renew(max(limiter.max_concurrency, concurrency),
                      min(x for x in (limiter.rpm, rpm) if x) if (limiter.rpm or rpm) else None,
                      min(x for x in (limiter.tpm, tpm) if x) if (limiter.tpm or tpm) else None)
        return limiter
