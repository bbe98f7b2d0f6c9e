"""Running a tuning experiment: preflight, tickets, workers, progress, report.

:func:`tune` owns the experiment: it checks the data and the objective once (one data
preparation), fails the zombie trials of a killed run, issues the missing tickets (see
:func:`synthdspy.tuning.storage.issue_tickets`), opens the MLflow parent run, starts the workers
(threads for one, processes for several), shows progress, and writes the report. Workers on other
machines join with ``join=True`` (``synthdspy tune EXP --storage URL --join``): they only claim
and run tickets. A killed study resumes by running :func:`tune` again: finished trials are kept.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from synthdspy import tracking
from synthdspy.configio import ConfigError
from synthdspy.tuning.config import TuneConfig
from synthdspy.tuning.objective import TrialContext, mlflow_params, run_trial, split_weights, worst_splits
from synthdspy.tuning.space import natural_weights, uniform_weights
from synthdspy.tuning.storage import (
    KINDS,
    beating,
    claim,
    fail_running,
    fail_stale,
    heartbeat,
    issue_tickets,
    open_storage,
    open_study,
    running_elsewhere,
    storage_url,
)

PARENT_RUN_ATTR = "mlflow_parent_run_id"


@dataclass
class Preflight:
    """What one data preparation tells about the experiment: split names and group sizes (tokens)."""

    splits: list[str]
    sizes: dict[str, int]


def preflight(config: TuneConfig) -> Preflight:
    """Prepare the training data once: check the objective's patterns and measure each group.

    Raises:
        ConfigError: unreadable sources, a pattern matching no split, or a group without training
            documents.
    """
    from synthdspy.training.data import prepare

    data = prepare(config.train)
    names = [e.name for e in data.eval_sets]
    split_weights(config.objective.target, names)
    worst_splits(config.objective.worst_over, names)
    sizes = {}
    for group in config.search.groups:
        src, _, value = group.partition("/")
        cells = [c for c in data.cells if (c.group == group if value else c.source == src)]
        if not cells:
            have = sorted({c.group for c in data.cells})
            raise ConfigError(f"search.groups.{group}: no training documents (groups: {have})")
        sizes[group] = sum(len(c.tokens) for c in cells)
    return Preflight(splits=names, sizes=sizes)


def baseline_tickets(config: TuneConfig, sizes: dict[str, int]) -> list[dict]:
    """User attributes of the fixed-baseline tickets: ``baseline`` name and ``weights``."""
    out = []
    if config.baselines.uniform:
        out.append({"baseline": "uniform", "weights": uniform_weights(list(config.search.groups))})
    if config.baselines.natural:
        out.append({"baseline": "natural", "weights": natural_weights(sizes)})
    return out


def run_worker(config: TuneConfig, url: str, worker: int, parent_run_id: str | None, tracking_uri: str | None) -> int:
    """Claim and run tickets of every study (baselines, tuner, random search, in that order) until
    none is left. On a storage with heartbeats it also fails the trials of dead workers (each
    becomes a new ticket, :func:`synthdspy.tuning.storage.heartbeat`) and waits while other
    workers' trials run, so a trial whose worker dies is run again by a live one.

    Returns:
        The number of trials this worker ran.

    Raises:
        Whatever a trial raises besides :class:`optuna.TrialPruned` (the trial is marked FAIL).
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url, config.study)
    if tracking_uri is not None:
        tracking.configure(tracking_uri, config.tracking.experiment, config.out_dir)
    studies = [(open_study(config, storage, kind, worker), TrialContext(config, kind, worker, parent_run_id,
                                                                        tracking_uri)) for kind in KINDS]
    ran = 0
    while True:
        if beating(storage):
            for study, _ in studies:
                fail_stale(study)
        claimed = next(((study, ctx, trial) for study, ctx in studies
                        if (trial := claim(study, storage)) is not None), None)
        if claimed is None:
            if beating(storage) and any(running_elsewhere(study) for study, _ in studies):
                time.sleep(min(config.study.heartbeat_s, 5))
                continue
            return ran
        study, ctx, trial = claimed
        with heartbeat(storage, trial):
            try:
                value = run_trial(trial, ctx)
            except optuna.TrialPruned:
                study.tell(trial, state=TrialState.PRUNED)
            except BaseException:
                study.tell(trial, state=TrialState.FAIL)
                raise
            else:
                study.tell(trial, value)
        ran += 1


def _worker_main(spec_path: str) -> None:
    """Entry point of a worker process: runs the worker described by the JSON file ``spec_path``.

    Exits when its parent dies, so that killing ``synthdspy tune`` stops its workers too.
    """
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    parent = os.getppid()

    def watchdog() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watchdog, daemon=True).start()
    config = TuneConfig.model_validate(spec["config"])
    run_worker(config, spec["url"], spec["worker"], spec["parent_run_id"], spec["tracking_uri"])


@dataclass
class Progress:
    """A progress snapshot of one study kind: ``finished`` of ``total``, ``pruned``, ``running``,
    ``failed``, and the best target so far (None before the first complete trial)."""

    kind: str
    total: int
    finished: int
    pruned: int
    running: int
    failed: int
    best: float | None


def snapshot(studies: dict[str, optuna.Study], totals: dict[str, int]) -> list[Progress]:
    """Progress of every study, read from the storage."""
    out = []
    for kind, study in studies.items():
        trials = study.get_trials(deepcopy=False)
        count = {s: sum(t.state == s for t in trials) for s in TrialState}
        values = [t.values[0] for t in trials if t.state == TrialState.COMPLETE]
        out.append(
            Progress(
                kind=kind,
                total=totals[kind],
                finished=count[TrialState.COMPLETE] + count[TrialState.PRUNED],
                pruned=count[TrialState.PRUNED],
                running=count[TrialState.RUNNING],
                failed=count[TrialState.FAIL],
                best=min(values) if values else None,
            )
        )
    return out


def progress_printer(emit: Callable[[str], None]) -> Callable[[list[Progress]], None]:
    """An ``on_progress`` callback for :func:`tune` off a terminal (a log file, a pipe), where a live
    table shows nothing until the end: ``emit`` gets one line per trial finished since the last
    snapshot, ``"tuned: trial 3/24 finished (1 pruned, 0 failed); best target 1.2345"``."""
    seen: dict[str, int] = {}

    def on_progress(rows: list[Progress]) -> None:
        for p in rows:
            best = "-" if p.best is None else f"{p.best:.4f}"
            for k in range(seen.get(p.kind, 0) + 1, p.finished + 1):
                emit(f"{p.kind}: trial {k}/{p.total} finished ({p.pruned} pruned, {p.failed} failed); "
                     f"best target {best}")
            seen[p.kind] = max(seen.get(p.kind, 0), p.finished)

    return on_progress


def _parent_run(config: TuneConfig, study: optuna.Study, join: bool) -> tuple[str | None, str | None]:
    """The MLflow parent run (created once per study, its id kept as a study attribute) and the URI."""
    if not config.tracking.enabled:
        return None, None
    uri = tracking.configure(config.tracking.uri, config.tracking.experiment, config.out_dir)
    run_id = study.user_attrs.get(PARENT_RUN_ATTR)
    if run_id is None and not join:
        params = {k: getattr(config, k).model_dump(mode="json") for k in ("study", "search", "objective", "baselines")}
        params["train"] = config.train.model_dump(mode="json")
        with tracking.run(config.name, params=mlflow_params(params), tags={"kind": "tune"}) as active:
            run_id = active.info.run_id
        study.set_user_attr(PARENT_RUN_ATTR, run_id)
    return run_id, uri


def _start_workers(
    config: TuneConfig, url: str, workers: int, parent: str | None, uri: str | None
) -> list[Callable[[], int | None]]:
    """Start the workers; returns one poll function per worker (None while it runs, else its exit code)."""
    if workers == 1:
        errors: list[BaseException] = []
        done = threading.Event()

        def target() -> None:
            try:
                run_worker(config, url, 0, parent, uri)
            except BaseException as exc:  # re-raised by the coordinator
                errors.append(exc)
            finally:
                done.set()

        threading.Thread(target=target, daemon=True).start()

        def poll() -> int | None:
            if not done.is_set():
                return None
            if errors:
                raise errors[0]
            return 0

        return [poll]
    logs = config.out_dir / "workers"
    logs.mkdir(parents=True, exist_ok=True)
    polls = []
    for k in range(workers):
        spec = {"config": config.model_dump(mode="json"), "url": url, "worker": k,
                "parent_run_id": parent, "tracking_uri": uri}
        fd, path = tempfile.mkstemp(prefix=f"worker-{k}-", suffix=".json", dir=logs)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(spec, fh)
        log = (logs / f"worker-{k}.log").open("w", encoding="utf-8")
        proc = subprocess.Popen(
            [sys.executable, "-c", f"from synthdspy.tuning.study import _worker_main; _worker_main({path!r})"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        polls.append(proc.poll)
    return polls


def tune(
    config: TuneConfig,
    workers: int = 1,
    join: bool = False,
    on_progress: Callable[[list[Progress]], None] | None = None,
    poll_s: float = 1.0,
):
    """Run (or resume, or join) the tuning experiment and return its :class:`TuneSummary`.

    Args:
        config: the validated experiment.
        workers: worker processes on this machine (1: a thread of this process).
        join: only run tickets of a study that another ``tune`` owns (no zombie cleanup, no new
            tickets, no report; returns None).
        on_progress: called with a snapshot every ``poll_s`` seconds and once at the end.

    Raises:
        ConfigError: a bad experiment (see :func:`preflight`); RuntimeError: a worker failed (its
            log is in ``OUTPUT/workers/``).
    """
    from synthdspy.tuning.report import summarize, write_report

    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = storage_url(config)
    storage: BaseStorage = open_storage(url, config.study)
    studies = {kind: open_study(config, storage, kind) for kind in KINDS}
    totals = {"baselines": len(baseline_tickets(config, {g: 1 for g in config.search.groups})),
              "tuned": config.study.n_trials, "random": config.random_trials}
    if not join:
        pre = preflight(config)
        for study in studies.values():
            fail_running(study, storage)
        issue_tickets(studies["baselines"], 0, baseline_tickets(config, pre.sizes))
        issue_tickets(studies["tuned"], totals["tuned"])
        issue_tickets(studies["random"], totals["random"])
    parent, uri = _parent_run(config, studies["tuned"], join)
    start = time.perf_counter()
    polls = _start_workers(config, url, workers, parent, uri)
    codes: list[int | None] = [None] * workers
    while any(c is None for c in codes):
        time.sleep(poll_s)
        codes = [c if c is not None else p() for c, p in zip(codes, polls, strict=True)]
        if on_progress is not None:
            on_progress(snapshot(studies, totals))
    bad = [k for k, c in enumerate(codes) if c != 0]
    if bad:
        logs = config.out_dir / "workers"
        tail = (logs / f"worker-{bad[0]}.log").read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"workers {bad} failed; see {logs}/worker-<k>.log. Worker {bad[0]} ended with:\n{tail}")
    if join:
        return None
    summary = summarize(config, studies, elapsed_s=time.perf_counter() - start)
    write_report(config, studies, summary, parent, uri)
    return summary
