"""The gate interface shared by judged gates and deterministic verifiers."""

from __future__ import annotations

import dspy

from synthdspy.records import Record, Verdict


class Gate(dspy.Module):
    """A quality gate: ``forward(record) -> Verdict``.

    Subclasses set ``name`` (the registry name, stored in ``Verdict.gate``). Judged gates hold
    ``dspy.Predict``/``ChainOfThought`` predictors that optimizers can tune; deterministic gates
    hold none.
    """

    name: str = "gate"

    def forward(self, record: Record) -> Verdict:  # pragma: no cover - interface
        raise NotImplementedError
