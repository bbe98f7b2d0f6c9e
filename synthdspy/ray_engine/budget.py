"""The spending cap (``generate --max-usd``) for a whole Ray cluster.

The driver checks the cap between rounds, but one round can hold every unit the run still needs.
So within a round, each worker asks the run's :class:`BudgetActor` before it starts a unit and
reports what each finished unit billed: once the cluster has spent the cap, no worker starts
another unit (the units in flight finish, as on the local engine) and the units left are handed
back unrun, for a re-run with a higher cap.
"""

from __future__ import annotations

import uuid
from typing import Any

import ray


@ray.remote(num_cpus=0)
class BudgetActor:
    """Dollars spent by the run's workers against its cap (both in USD)."""

    def __init__(self, cap_usd: float, spent_usd: float) -> None:
        self.cap_usd, self.spent_usd = cap_usd, spent_usd

    async def open(self) -> bool:
        """Whether a unit may start: less than the cap spent so far."""
        return self.spent_usd < self.cap_usd

    async def add(self, usd: float) -> None:
        """Count ``usd`` more spent (a finished unit's billed calls)."""
        self.spent_usd += usd


def start_budget(cap_usd: float, spent_usd: float) -> tuple[Any, str]:
    """A new budget actor for one run, with ``spent_usd`` already spent by it (the driver's meter);
    returns the actor and the name workers find it by."""
    name = f"synthdspy-budget-{uuid.uuid4().hex[:12]}"
    return BudgetActor.options(name=name).remote(cap_usd, spent_usd), name


class WorkerBudget:
    """A worker's side of the run's budget (``name``: :func:`start_budget`'s; None: no cap).

    Reports the cost of the worker's meter (a :class:`~synthdspy.usage.UsageMeter`) since its last
    report, so units that run concurrently on one actor are each counted once.
    """

    def __init__(self, name: str | None, meter: Any) -> None:
        self.actor = ray.get_actor(name) if name else None
        self.meter, self._reported = meter, meter.cost_usd

    async def open(self) -> bool:
        """Whether the run's cap still allows a unit to start (always, with no cap)."""
        return self.actor is None or await self.actor.open.remote()

    def report(self) -> None:
        """Send the dollars billed since the last report (without waiting for the actor)."""
        spent = self.meter.cost_usd
        if self.actor is not None and spent > self._reported:
            self.actor.add.remote(spent - self._reported)
        self._reported = spent
