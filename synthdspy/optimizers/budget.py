"""One budget model for every optimizer: metric calls, LM calls or dollars.

Two mechanisms work together:

1. Each optimizer's own knobs are sized from ``metric_calls`` (:func:`optimizer_knobs`): GEPA takes
   it natively as ``max_metric_calls``; MIPROv2's trials, BootstrapFewShotWithRandomSearch's
   candidate programs and SIMBA's steps are derived from it and the validation-set size, so the
   optimizer plans to finish within it.
2. A hard stop (:class:`BudgetGuard`) is checked before every LM call and every metric call during
   optimization: once a limit is reached, calls raise :class:`BudgetExhausted`. The optimizers
   count such failures as zero-score evaluations and keep the best candidate scored before the
   stop, so no further money is spent. An LM call already in flight when the limit is reached
   completes, so LM calls and dollars can overshoot by at most ``concurrency`` calls.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from synthdspy.config import BudgetConfig
from synthdspy.lm import UsageMeter


class BudgetExhausted(RuntimeError):
    """Raised by LM and metric calls once a compile's budget is spent."""


@dataclass
class BudgetGuard:
    """The hard stop: counts metric calls and LM requests, reads billed dollars from the LM meter.

    ``lm_calls`` counts LM requests, cache hits included, reserved before each request is made, so
    the limit is never overshot and a re-run against a warm cache stops at the same point (the
    compile stays reproducible). ``usd`` counts billed dollars (cache hits are free); a request in
    flight when the limit is reached completes, so dollars may overshoot by at most ``concurrency``
    requests. Limits named in ``native`` are enforced by the optimizer itself (GEPA's
    ``max_metric_calls``): they are counted and reported, not raised on.
    """

    limits: BudgetConfig
    meter: UsageMeter
    native: tuple[str, ...] = ()
    metric_calls: int = 0
    lm_requests: int = 0
    exhausted: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _usd_start: float = 0.0

    def __post_init__(self) -> None:
        self._usd_start = self._usd()

    def _usd(self) -> float:
        return sum(u.cost_usd for u in self.meter.snapshot().values())

    def used(self) -> dict[str, float]:
        """Spend since the guard was created: metric calls, LM requests, billed dollars."""
        return {"metric_calls": self.metric_calls, "lm_calls": self.lm_requests, "usd": self._usd() - self._usd_start}

    def _stop(self, key: str) -> None:
        self.exhausted = f"{key} budget of {getattr(self.limits, key)} reached"
        raise BudgetExhausted(self.exhausted)

    def _over(self, key: str, value: float) -> bool:
        limit = getattr(self.limits, key)
        return limit is not None and key not in self.native and value >= limit

    def check_lm(self) -> None:
        """Before an LM request: raise :class:`BudgetExhausted` if a limit is reached, else reserve it."""
        with self._lock:
            if self._over("lm_calls", self.lm_requests):
                self._stop("lm_calls")
            if self._over("usd", self._usd() - self._usd_start):
                self._stop("usd")
            self.lm_requests += 1

    def check_metric(self) -> None:
        """Before a metric evaluation: raise :class:`BudgetExhausted` if a limit is reached, else count it."""
        with self._lock:
            if self._over("metric_calls", self.metric_calls):
                self._stop("metric_calls")
            if self._over("usd", self._usd() - self._usd_start):
                self._stop("usd")
            self.metric_calls += 1

    def report(self) -> dict[str, object]:
        """Limits, spend, whether spend is within the limits, and whether the hard stop fired."""
        used = self.used()
        within = all(getattr(self.limits, k) is None or used[k] <= getattr(self.limits, k) for k in used)
        return {"limits": self.limits.model_dump(), "used": used, "within_budget": within,
                "stopped_by_budget": self.exhausted}


GEPA_MINIBATCH = 3  # dspy.GEPA's default reflection_minibatch_size


def optimizer_knobs(optimizer: str, budget: BudgetConfig, n_train: int, n_val: int, num_candidates: int) -> dict:
    """Optimizer settings that plan to stay within ``budget.metric_calls`` (empty when it is unset).

    Estimates per optimizer (metric calls): MIPROv2 ~ bootstrapping n_train per candidate set plus
    n_val per trial; BootstrapRS ~ (n_train + n_val) per candidate program; SIMBA ~ bsize *
    (num_candidates + 1) per step; GEPA may finish the iteration it is in when its own count runs
    out (a reflection minibatch plus a validation pass), so it is given that much less.
    """
    calls = budget.metric_calls
    if calls is None:
        return {}
    if optimizer == "gepa":  # GEPA checks its budget between iterations: leave room for one more
        return {"max_metric_calls": max(n_val + 1, calls - GEPA_MINIBATCH - n_val)}
    if optimizer == "mipro":
        return {"num_trials": max(1, (calls - num_candidates * n_train) // max(1, n_val))}
    if optimizer == "bootstrap_rs":
        return {"num_candidate_programs": max(1, calls // max(1, n_train + n_val) - 3)}
    bsize = min(n_train, 4)
    return {"max_steps": max(1, calls // max(1, bsize * (num_candidates + 1))), "bsize": bsize}
