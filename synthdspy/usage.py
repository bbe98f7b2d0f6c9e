"""Billed LM usage per role: calls, prompt and completion tokens, dollars, and unpriced calls."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RoleUsage:
    """Billed usage of one role: calls that reached the model (cache hits excluded)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: RoleUsage) -> RoleUsage:
        """The field-wise sum of two usages."""
        return RoleUsage(self.calls + other.calls, self.prompt_tokens + other.prompt_tokens,
                         self.completion_tokens + other.completion_tokens, self.cost_usd + other.cost_usd,
                         self.unpriced_calls + other.unpriced_calls)

    def cost_text(self) -> str:
        """The cost in words: ``$0.0120``, ``$0.0120 + 3 unpriced calls`` or ``unpriced`` (no call priced)."""
        if self.unpriced_calls == self.calls and self.calls:
            return "unpriced"
        text = f"${self.cost_usd:.4f}"
        return f"{text} + {self.unpriced_calls} unpriced calls" if self.unpriced_calls else text


@dataclass
class UsageMeter:
    """Thread-safe usage counters, one :class:`RoleUsage` per role name.

    ``gate``, when set, is called before every LM call of the metered LMs and may raise to stop
    spending (the compile budget's hard stop). ``on_cost``, when set, is called with the dollars
    spent so far after every billed call counted (``generate``'s spend ledger).
    """

    roles: dict[str, RoleUsage] = field(default_factory=dict)
    gate: Callable[[], None] | None = None
    on_cost: Callable[[float], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, role: str, usage: dict[str, Any], cost: float | None) -> None:
        """Add one call's ``usage`` (OpenAI-style token counts) and ``cost`` (USD, or None when the
        model is unpriced: counted in ``unpriced_calls``, never as $0) to ``role``."""
        with self._lock:
            r = self.roles.setdefault(role, RoleUsage())
            r.calls += 1
            r.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            r.completion_tokens += int(usage.get("completion_tokens") or 0)
            if cost is None:
                r.unpriced_calls += 1
            else:
                r.cost_usd += float(cost)
        if self.on_cost is not None:
            self.on_cost(self.cost_usd)

    def absorb(self, usages: dict[str, RoleUsage]) -> None:
        """Add other meters' counters (a Ray worker's, :mod:`synthdspy.ray_engine`) role by role."""
        with self._lock:
            for role, usage in usages.items():
                self.roles[role] = self.roles.get(role, RoleUsage()) + usage
        if self.on_cost is not None:
            self.on_cost(self.cost_usd)

    @property
    def cost_usd(self) -> float:
        """Dollars spent so far by every role (priced calls only)."""
        with self._lock:
            return sum(r.cost_usd for r in self.roles.values())

    @property
    def unpriced(self) -> bool:
        """True when some billed call had no price (its cost is not in :attr:`cost_usd`)."""
        with self._lock:
            return any(r.unpriced_calls for r in self.roles.values())

    @property
    def calls(self) -> int:
        """Billed calls so far, all roles."""
        with self._lock:
            return sum(r.calls for r in self.roles.values())

    @contextlib.contextmanager
    def track(self, role: str) -> Iterator[None]:
        """Bill every DSPy LM call made inside the block, on this thread, to ``role``.

        For LMs that are not metered themselves (any ``dspy.LM``). The block opens its own
        ``dspy.track_usage()`` tracker, so the count is right on any thread (``dspy.Parallel`` gives
        worker threads a copy of the caller's tracker, which is discarded); calls whose answer then
        failed to parse are counted, cache hits (no usage) are not. Each call is priced from
        LiteLLM's table for its model (:func:`synthdspy.pricing.token_cost`); unknown models
        (``sim/...``, local servers) count as unpriced.
        """
        import dspy

        from synthdspy.pricing import token_cost

        with dspy.track_usage() as tracker:
            try:
                yield
            finally:
                for model, entries in tracker.usage_data.items():
                    for usage in entries:
                        prompt = int(usage.get("prompt_tokens") or 0)
                        completion = int(usage.get("completion_tokens") or 0)
                        self.add(role, usage, token_cost(model, prompt, completion))

    def total(self) -> RoleUsage:
        """Every role's usage summed into one :class:`RoleUsage`."""
        return sum(self.snapshot().values(), RoleUsage())

    def snapshot(self) -> dict[str, RoleUsage]:
        """A copy of the counters."""
        with self._lock:
            return {k: RoleUsage(**vars(v)) for k, v in self.roles.items()}

    def metrics(self, prefix: str = "") -> dict[str, float]:
        """Flat metrics ``{prefix}{role}.tokens`` / ``.cost_usd`` / ``.calls`` plus totals."""
        out: dict[str, float] = {}
        for role, u in self.snapshot().items():
            out[f"{prefix}{role}.calls"] = u.calls
            out[f"{prefix}{role}.tokens"] = u.total_tokens
            out[f"{prefix}{role}.cost_usd"] = u.cost_usd
        out[f"{prefix}total.tokens"] = sum(u.total_tokens for u in self.roles.values())
        out[f"{prefix}total.cost_usd"] = sum(u.cost_usd for u in self.roles.values())
        return out

    def describe(self) -> str:
        """One line per run summary: billed tokens, cost and calls of each role, e.g.
        ``generator 12,034 tokens $0.0120 (40 calls); judge ...``."""
        parts = [f"{role} {u.total_tokens:,} tokens {u.cost_text()} ({u.calls} calls)"
                 for role, u in sorted(self.snapshot().items())]
        return "; ".join(parts) or "no billed LM calls"

