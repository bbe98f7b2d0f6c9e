"""The gate interface shared by judged gates and deterministic verifiers."""

from __future__ import annotations

from collections.abc import Iterable

import dspy

from synthdspy.records import Record, Verdict


class Gate(dspy.Module):
    """A quality gate: ``forward(record) -> Verdict``.

    Subclasses set ``name`` (the registry name, stored in ``Verdict.gate``). Judged gates hold
    ``dspy.Predict``/``ChainOfThought`` predictors that optimizers can tune; deterministic gates
    hold none.
    """

    name: str = "gate"
    blocking: bool = False  # True: CPU-heavy or waits on a process (run off the generation event loop)

    def forward(self, record: Record) -> Verdict:  # pragma: no cover - interface
        raise NotImplementedError

    def restore(self, records: Iterable[Record]) -> None:
        """Rebuild run state from ``records`` a previous invocation stored, before a resumed run.

        Gates that judge each record on its own keep no state and ignore this; stateful gates (dedup)
        override it so that a resumed run behaves like one that was never interrupted.
        """
