"""Which generate units MLflow traces, and how much of each span it keeps.

Tracing every unit of a large run made MLflow's database grow with seed size × units (a 1 MB seed
file gave a 1.17 GB ``mlflow.db``). With ``[tracking] autolog`` on, :func:`unit_traces` takes
MLflow's DSPy callback (which ``mlflow.dspy.autolog`` installs for every DSPy call) out of DSPy's
global callbacks and :func:`traced_attempt` hands it back only inside the units that are traced,
through ``dspy.context(callbacks=...)``:

* the first ``[tracking] trace_units`` units (default 20) to start, in full;
* with ``trace_failures`` (default true), every retry of a unit whose first attempt failed, in
  full (its successful calls replay from DSPy's cache), and for a unit that fails for good without
  having been traced, one ``unit`` span holding its seed id, rollout and error;
* every span's inputs and outputs cut to ``trace_max_chars`` characters of JSON (default 2,000) by
  an MLflow span processor (``mlflow.tracing.configure(span_processors=...)``), so even a traced
  unit over a huge seed stays small.

So the traces take space proportional to ``trace_units`` plus the failures, not to the seeds.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from synthdspy.records import Seed

if TYPE_CHECKING:
    from mlflow.entities import LiveSpan

    from synthdspy.config_tables import TrackingConfig

_ACTIVE: contextvars.ContextVar[UnitTracer | None] = contextvars.ContextVar("synthdspy_unit_tracer", default=None)


class UnitTracer:
    """The tracing budget of one generate run (thread-safe).

    Args:
        units: how many units to trace in full, the first to start.
        failures: trace retries and failed units too.
        callback: MLflow's DSPy callback (``mlflow.dspy.callback.MlflowCallback``).
    """

    def __init__(self, units: int, failures: bool, callback: Any) -> None:
        self.units, self.failures, self.callback = units, failures, callback
        self.traced = 0  # units traced in full because they started early
        self.failure_spans = 0  # one-span traces of untraced failed units
        self._lock = threading.Lock()

    def take(self) -> bool:
        """True (and one unit of the budget spent) while fewer than ``units`` units were traced."""
        with self._lock:
            if self.traced >= self.units:
                return False
            self.traced += 1
            return True

    def failure_span(self, seed: Seed, rollout: int, exc: BaseException) -> None:
        """Log a one-span trace ``unit`` (status ERROR) with the seed id, rollout and error."""
        import mlflow
        from mlflow.entities import SpanEvent, SpanStatusCode, SpanType

        with mlflow.start_span(name="unit", span_type=SpanType.CHAIN) as span:
            span.set_inputs({"seed_id": seed.id, "rollout": rollout, "seed": seed.data})
            span.set_attributes({"synthdspy.traced": "failure only", "synthdspy.error": type(exc).__name__,
                                 "synthdspy.seed_id": seed.id, "synthdspy.rollout": rollout})  # never cut
            span.add_event(SpanEvent.from_exception(exc))  # type: ignore[arg-type]
            span.set_status(SpanStatusCode.ERROR)
        with self._lock:
            self.failure_spans += 1


def truncating(max_chars: int) -> Callable[[LiveSpan], None]:
    """An MLflow span processor that replaces a span's inputs or outputs whose JSON is longer than
    ``max_chars`` characters by the first ``max_chars`` characters of that JSON plus a note of how
    many were cut."""

    def truncate_span(span: LiveSpan) -> None:
        for value, put in ((span.inputs, span.set_inputs), (span.outputs, span.set_outputs)):
            if value is None:
                continue
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
            if len(text) > max_chars:
                put(f"{text[:max_chars]}... [{len(text) - max_chars} more characters cut: "
                    "[tracking] trace_max_chars]")

    return truncate_span


@contextlib.contextmanager
def unit_traces(cfg: TrackingConfig) -> Iterator[UnitTracer | None]:
    """Inside the block, generate units are traced as the module docstring says; yields the
    :class:`UnitTracer` (None when ``cfg.autolog`` is off or autolog installed no callback).

    Enter it inside ``synthdspy.pipeline.autolog_traces`` (which installs MLflow's callback). On
    exit, MLflow's asynchronous trace export is flushed.
    """
    if not cfg.autolog:
        yield None
        return
    import dspy
    import mlflow
    from mlflow.dspy.callback import MlflowCallback

    callback = next((c for c in dspy.settings.callbacks if isinstance(c, MlflowCallback)), None)
    if callback is None:
        yield None
        return
    dspy.configure(callbacks=[c for c in dspy.settings.callbacks if c is not callback])
    tracer = UnitTracer(cfg.trace_units, cfg.trace_failures, callback)
    token = _ACTIVE.set(tracer)
    try:
        with mlflow.tracing.configure(span_processors=[truncating(cfg.trace_max_chars)]):
            yield tracer
    finally:
        _ACTIVE.reset(token)
        dspy.configure(callbacks=[*dspy.settings.callbacks, callback])
        mlflow.flush_trace_async_logging()  # the traces are in the store when generate returns


@contextlib.contextmanager
def traced_attempt(attempt: int) -> Iterator[bool]:
    """Run one attempt of a unit traced or not (see the module docstring); yields whether it is.

    Outside :func:`unit_traces` it changes nothing (and yields False).
    """
    tracer = _ACTIVE.get()
    if tracer is None or not (tracer.take() if attempt == 0 else tracer.failures):
        yield False
        return
    import dspy

    with dspy.context(callbacks=[*dspy.settings.callbacks, tracer.callback]):
        yield True


def trace_failure(seed: Seed, rollout: int, exc: BaseException) -> None:
    """Give a unit that failed for good, untraced, its one-span failure trace (when the active
    :func:`unit_traces` has ``trace_failures``; otherwise nothing)."""
    tracer = _ACTIVE.get()
    if tracer is not None and tracer.failures:
        tracer.failure_span(seed, rollout, exc)
