"""DSPy's Chat and JSON adapters, counting the answers each one could and could not parse.

``[lm.<role>] adapter`` picks ``chat`` (DSPy's ChatAdapter, which falls back to the JSONAdapter for
an answer it cannot parse) or ``json``. Both count parsed and failed answers into a shared
:class:`ParseStats`, so a run summary can report each adapter's parse-failure rate (the share of a
provider's answers that were unusable in that format), which is what decides between them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import dspy
from dspy.utils.exceptions import AdapterParseError


@dataclass
class ParseStats:
    """Thread-safe counts ``{adapter: [answers parsed, answers failed]}``."""

    counts: dict[str, list[int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, adapter: str, ok: bool) -> None:
        """Count one answer of ``adapter`` (``chat`` or ``json``)."""
        with self._lock:
            row = self.counts.setdefault(adapter, [0, 0])
            row[0 if ok else 1] += 1

    def describe(self) -> str:
        """``chat 2 of 120 answers unparseable (1.7%); json 0 of 2`` (empty when nothing parsed)."""
        with self._lock:
            parts = []
            for name, (ok, bad) in sorted(self.counts.items()):
                parts.append(f"{name} {bad} of {ok + bad} answers unparseable ({bad / max(ok + bad, 1):.1%})")
            return "; ".join(parts)

    def metrics(self) -> dict[str, float]:
        """``parse.<adapter>.failure_rate`` and ``.answers`` for MLflow."""
        with self._lock:
            out: dict[str, float] = {}
            for name, (ok, bad) in self.counts.items():
                out[f"parse.{name}.answers"] = ok + bad
                out[f"parse.{name}.failure_rate"] = bad / max(ok + bad, 1)
            return out


class _Counting:
    """Counts an answer as parsed when :meth:`parse` succeeds; failures are counted where the
    adapter gives up on an answer (an empty answer fails before ``parse`` is reached)."""

    name = ""
    stats: ParseStats

    def parse(self, signature: Any, completion: str) -> dict[str, Any]:
        parsed = super().parse(signature, completion)  # type: ignore[misc]
        self.stats.add(self.name, ok=True)
        return parsed


class CountingJSONAdapter(_Counting, dspy.JSONAdapter):
    """DSPy's JSONAdapter (native structured outputs where the provider has them), counted."""

    name = "json"

    def __call__(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        try:
            return super().__call__(*args, **kwargs)
        except AdapterParseError:
            self.stats.add(self.name, ok=False)
            raise


class CountingChatAdapter(_Counting, dspy.ChatAdapter):
    """DSPy's ChatAdapter, counted: an answer it cannot parse is counted as a ``chat`` failure when
    it falls back to the JSONAdapter, whose answer is counted as ``json``."""

    name = "chat"

    def _make_json_adapter_fallback(self) -> dspy.JSONAdapter:
        self.stats.add(self.name, ok=False)
        return counting_adapter("json", self.stats)


def counting_adapter(kind: str, stats: ParseStats) -> dspy.Adapter:
    """A counting ``chat`` or ``json`` adapter reporting into ``stats``."""
    adapter = CountingJSONAdapter() if kind == "json" else CountingChatAdapter()
    adapter.stats = stats
    return adapter
