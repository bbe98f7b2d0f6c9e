"""Sliding-window rate limits the way OpenAI reports them (requests and tokens per window).

`RateLimiter` holds an optional requests-per-window and tokens-per-window limit over sliding
windows of `window_s` seconds (60 s for OpenAI's RPM / TPM). A request is admitted only when it
fits both windows, and only an admitted request is counted (a rejected one costs nothing, as at
OpenAI). `format_duration` writes OpenAI's `x-ratelimit-reset-*` durations (`1s`, `6m0s`,
`120ms`, `1.956s`). Used by `synthdspy.provider_server`; time is `time.monotonic()` seconds.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass


def format_duration(seconds: float) -> str:
    """OpenAI's (Go-style) duration text for `seconds` >= 0, to the millisecond.

    Examples: 0 -> "0s", 0.12 -> "120ms", 1.2 -> "1.2s", 360 -> "6m0s", 3725.5 -> "1h2m5.5s".
    Negative input counts as 0.
    """
    ms = max(0, math.ceil(seconds * 1000 - 1e-6))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


class SlidingWindow:
    """Amounts (1 per request, or tokens) counted over the last `window_s` seconds.

    Not locked itself: `RateLimiter` serialises access. `limit` is the most the window may hold.
    """

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._entries: deque[tuple[float, int]] = deque()
        self._used = 0

    def _expire(self, now: float) -> None:
        while self._entries and self._entries[0][0] + self.window_s <= now:
            self._used -= self._entries.popleft()[1]

    def used(self, now: float) -> int:
        """Amount counted in the window ending at `now`."""
        self._expire(now)
        return self._used

    def wait_for(self, amount: int, now: float) -> float:
        """Seconds until `amount` more fits (0.0 if it fits now; math.inf if it never can)."""
        self._expire(now)
        if amount > self.limit:
            return math.inf
        excess = self._used + amount - self.limit
        if excess <= 0:
            return 0.0
        for t, entry in self._entries:
            excess -= entry
            if excess <= 0:
                return t + self.window_s - now
        return math.inf  # pragma: no cover - unreachable: the entries sum to `_used`

    def add(self, amount: int, now: float) -> None:
        """Count `amount` at time `now`."""
        self._expire(now)
        self._entries.append((now, amount))
        self._used += amount

    def reset_in(self, now: float) -> float:
        """Seconds until the oldest counted entry leaves the window (0.0 when empty)."""
        self._expire(now)
        return self._entries[0][0] + self.window_s - now if self._entries else 0.0


@dataclass(frozen=True)
class Rejection:
    """Why a request was not admitted.

    kind: "requests" or "tokens". limit / used / requested: in that kind's unit. wait_s: seconds
    until the request would fit (math.inf when `requested` exceeds the limit on its own).
    """

    kind: str
    limit: int
    used: int
    requested: int
    wait_s: float


class RateLimiter:
    """Thread-safe requests/tokens sliding-window limiter; `None` limits are off.

    Raises ValueError for a limit below 1 or a window that is not positive.
    """

    def __init__(self, rpm: int | None, tpm: int | None, window_s: float = 60.0) -> None:
        if window_s <= 0 or any(x is not None and x < 1 for x in (rpm, tpm)):
            raise ValueError("limits must be >= 1 and window_s > 0")
        self.requests = SlidingWindow(rpm, window_s) if rpm else None
        self.tokens = SlidingWindow(tpm, window_s) if tpm else None
        self._lock = threading.Lock()

    def admit(self, tokens: int, now: float | None = None) -> Rejection | None:
        """Admit one request costing `tokens`, counting it in both windows, or return why not.

        Checked atomically against both windows; when both are exceeded the requests limit is
        reported, with the longer wait of the two. A rejected request is not counted.
        """
        now = time.monotonic() if now is None else now
        with self._lock:
            pairs = ((self.requests, "requests", 1), (self.tokens, "tokens", tokens))
            checks = [(w, kind, amount) for w, kind, amount in pairs if w is not None]
            waits = [(w.wait_for(amount, now), w, kind, amount) for w, kind, amount in checks]
            over = [x for x in waits if x[0] > 0]
            if over:
                wait = max(x[0] for x in over)
                _, window, kind, amount = over[0]
                return Rejection(kind, window.limit, window.used(now), amount, wait)
            for window, _, amount in checks:
                window.add(amount, now)
        return None

    def headers(self, now: float | None = None) -> dict[str, str]:
        """OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` headers for the set
        limits (reset: time until the oldest counted entry leaves the window); {} when off."""
        now = time.monotonic() if now is None else now
        out: dict[str, str] = {}
        with self._lock:
            for kind, window in (("requests", self.requests), ("tokens", self.tokens)):
                if window is None:
                    continue
                out[f"x-ratelimit-limit-{kind}"] = str(window.limit)
                out[f"x-ratelimit-remaining-{kind}"] = str(max(0, window.limit - window.used(now)))
                out[f"x-ratelimit-reset-{kind}"] = format_duration(window.reset_in(now))
        return out

    def reset(self) -> None:
        """Forget everything counted so far."""
        with self._lock:
            for window in (self.requests, self.tokens):
                if window is not None:
                    window._entries.clear()
                    window._used = 0
