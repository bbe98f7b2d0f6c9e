"""When a generate run must stop launching units: the circuit breaker.

The circuit breaker (Nygard, *Release It!*, 2007, ch. 5) trips when the endpoint is plainly not
serving: ``consecutive`` units in a row failed before any unit succeeded, or at least
``max_failure_share`` of the last ``window`` finished units failed. Run-fatal failures (a wrong
key, no quota, an unknown model) stop the run at the first one, without waiting for the breaker.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

from synthdspy.llm_failures import Failure


@dataclass
class CircuitBreaker:
    """Counts finished units; :meth:`record` returns why the run must stop, or None.

    Args:
        consecutive: failed units in a row, with no success yet, that trip it.
        window: finished units over which the failure share is measured.
        max_failure_share: failure share over a full window that trips it.
    """

    consecutive: int = 5
    window: int = 40
    max_failure_share: float = 0.8
    by_class: Counter = field(default_factory=Counter)
    successes: int = 0
    _streak: int = 0
    _recent: deque = field(default_factory=deque)

    def record(self, failure: Failure | None) -> str | None:
        """Count one finished unit (``failure`` None when it succeeded)."""
        self._recent.append(failure is not None)
        if len(self._recent) > self.window:
            self._recent.popleft()
        if failure is None:
            self.successes += 1
            self._streak = 0
            return None
        self.by_class[f"{failure.kind}:{failure.reason}"] += 1
        self._streak += 1
        if not self.successes and self._streak >= self.consecutive:
            return f"the first {self._streak} units all failed"
        share = sum(self._recent) / len(self._recent)
        if len(self._recent) >= self.window and share >= self.max_failure_share:
            return f"{share:.0%} of the last {len(self._recent)} units failed"
        return None

    def describe(self) -> str:
        """Failures by class, e.g. ``transient:timeout 3, record:truncated 1`` (empty: none)."""
        return ", ".join(f"{k} {v}" for k, v in self.by_class.most_common())
