"""The MLflow run of one ``synthdspy generate``: opened as late as the run allows, or not at all."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synthdspy import tracking


class GenerateTracking:
    """Context manager around one ``generate``'s MLflow run.

    MLflow's set-up (import, SQLite store: 2-3 s of CPU on 2 cores) runs in a background thread
    (:class:`~synthdspy.tracking.BackgroundSetup`) while the first LM requests wait on the network;
    with ``after`` it starts once that predicate holds (the first request answered), not before.
    The run is opened before the first LM call only when it must be: traces (``[tracking]
    autolog``) need it, and a remote store is checked before any money is spent; otherwise it is
    opened once the units have run. With ``[tracking] enabled = false`` nothing is set up or logged
    (``run_id`` and ``uri`` are then empty strings).
    """

    def __init__(self, exp: Any, name: str, params: dict[str, Any], tags: dict[str, str],
                 after: Callable[[], bool] | None = None) -> None:
        self.enabled = bool(exp.tracking.enabled)
        self.traced = self.enabled and bool(exp.tracking.autolog)
        self._table_rows = int(exp.tracking.table_rows)
        self.uri = ""
        self._early = self.traced or not tracking.is_local_store(exp.tracking.uri)
        self._setup = (tracking.BackgroundSetup(exp.tracking.uri, exp.tracking.experiment, Path(exp.output.dir),
                                                after=None if self._early else after) if self.enabled else None)
        self._run_args = (name, params, tags)
        self._stack = contextlib.ExitStack()
        self._active: Any = None

    def __enter__(self) -> GenerateTracking:
        if self._early:
            self._start()
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        if self._setup is not None and self._active is None:
            self._setup.cancel()  # failed before any run was opened: no MLflow set-up to wait for at exit
        return self._stack.__exit__(*exc)

    @property
    def run_id(self) -> str:
        """The MLflow run's id ("" when tracking is off or the run has not started)."""
        return self._active.info.run_id if self._active is not None else ""

    def _start(self) -> bool:
        """Open the run (waiting for the set-up) unless it is open or tracking is off; whether a run is open."""
        if self._setup is None:
            return False
        if self._active is None:
            self.uri = self._setup.result()
            name, params, tags = self._run_args
            self._active = self._stack.enter_context(tracking.run(name, params=params, tags=tags))
        return True

    def log_units(self, store: Any, lms: Any) -> None:
        """After the units ran (or failed): record counts, LM usage, parse failures and the unit and
        failure journals of ``store`` (a :class:`~synthdspy.store.RecordStore`)."""
        if not self._start():
            return
        import mlflow

        tracking.log_metrics({"passed": store.n_passed, "rejected": store.n_rejected, **lms.meter.metrics(),
                              **lms.parse_stats.metrics()})
        for name in ("units.jsonl", "failures.jsonl"):
            if (store.directory / name).exists():
                mlflow.log_artifact(str(store.directory / name))

    def log_unchanged(self, stats: Any, exported: int) -> None:
        """A re-run that changed nothing: the counts, and tag ``outputs = unchanged`` (the records
        table and gate report are those of the run that made the exports)."""
        if not self._start():
            return
        import mlflow

        tracking.log_metrics({"failed_units": stats.failed_units, "exported": exported})
        mlflow.set_tags({"stopped_by": stats.stopped_by, "outputs": "unchanged"})

    def log_outputs(self, generate_dir: Path, store: Any, facts: Any, stats: Any, exported: int) -> None:
        """After a finished run: the records table (at most ``[tracking] table_rows`` rows), gate
        report and card facts (``facts``, a callable returning them), the failed-unit and exported
        counts, and why it stopped."""
        if not self._start():
            return
        import mlflow

        from synthdspy.mlflow_records import log_generate_artifacts

        log_generate_artifacts(generate_dir, store.directory, facts(), max_rows=self._table_rows)
        tracking.log_metrics({"failed_units": stats.failed_units, "exported": exported})
        mlflow.set_tag("stopped_by", stats.stopped_by)
