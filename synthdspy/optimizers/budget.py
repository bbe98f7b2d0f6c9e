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
    """Counts metric calls and reads the LM meter; :meth:`check` raises once a limit is reached."""

    limits: BudgetConfig
    meter: UsageMeter
    metric_calls: int = 0
    exhausted: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _start: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._start = self._totals()

    def _totals(self) -> dict[str, float]:
        usage = self.meter.snapshot().values()
        return {"lm_calls": sum(u.calls for u in usage), "usd": sum(u.cost_usd for u in usage)}

    def used(self) -> dict[str, float]:
        """Spend since the guard was created: metric calls, LM calls, dollars."""
        now = self._totals()
        return {"metric_calls": self.metric_calls, "lm_calls": now["lm_calls"] - self._start["lm_calls"],
                "usd": now["usd"] - self._start["usd"]}

    def check(self, metric_call: bool = False) -> None:
        """Raise :class:`BudgetExhausted` when a limit is reached; count a metric call otherwise."""
        with self._lock:
            used = self.used()
            for key in ("metric_calls", "lm_calls", "usd"):
                limit = getattr(self.limits, key)
                if limit is not None and used[key] >= limit:
                    self.exhausted = f"{key} budget of {limit} reached"
                    raise BudgetExhausted(self.exhausted)
            if metric_call:
                self.metric_calls += 1

    def report(self) -> dict[str, object]:
        """Limits, spend and whether the hard stop fired, for reports and MLflow."""
        return {"limits": self.limits.model_dump(), "used": self.used(), "stopped_by_budget": self.exhausted}


def optimizer_knobs(optimizer: str, budget: BudgetConfig, n_train: int, n_val: int, num_candidates: int) -> dict:
    """Optimizer settings that plan to stay within ``budget.metric_calls`` (empty when it is unset).

    Estimates per optimizer (metric calls): MIPROv2 ~ bootstrapping n_train per candidate set plus
    n_val per trial; BootstrapRS ~ (n_train + n_val) per candidate program; SIMBA ~ bsize *
    (num_candidates + 1) per step; GEPA counts exactly.
    """
    calls = budget.metric_calls
    if calls is None:
        return {}
    if optimizer == "gepa":
        return {"max_metric_calls": calls}
    if optimizer == "mipro":
        return {"num_trials": max(1, (calls - num_candidates * n_train) // max(1, n_val))}
    if optimizer == "bootstrap_rs":
        return {"num_candidate_programs": max(1, calls // max(1, n_train + n_val) - 3)}
    bsize = min(n_train, 4)
    return {"max_steps": max(1, calls // max(1, bsize * (num_candidates + 1))), "bsize": bsize}
