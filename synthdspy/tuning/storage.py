"""Optuna storages, studies, samplers and pruners of a tuning experiment.

One experiment keeps three studies in one storage: ``<name>`` (the tuner), ``<name>/random``
(the random-search baseline) and ``<name>/baselines`` (the fixed mixtures). Storage strings:
``sqlite:///path.db`` and any other SQLAlchemy URL (Optuna's RDB storage), or ``journal:PATH``
(Optuna's journal file, safe for several processes on one machine or a shared file system with
working locks). On an RDB storage running trials record heartbeats, so a worker that dies
mid-trial is found by the others, which fail its trial and run it again (:func:`heartbeat`).

SQLite needs two changes to be shared by several worker processes. Optuna claims a WAITING trial by
reading its state and then writing RUNNING in one session, relying on ``SELECT ... FOR UPDATE``,
which SQLite ignores; and Python's ``sqlite3`` opens the transaction only at the write, so two
processes could both read WAITING and both claim the trial. Every SQLite transaction therefore
starts with ``BEGIN IMMEDIATE`` (SQLAlchemy's documented pysqlite recipe), which takes the write
lock before the read; other processes wait for it, up to a long lock timeout.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import optuna
import sqlalchemy
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from synthdspy.configio import ConfigError
from synthdspy.tuning.config import StudySpec, TuneConfig

KINDS = ("baselines", "tuned", "random")
"""Study kinds, in the order a worker runs its share of each."""

SQLITE_TIMEOUT_S = 120


def storage_url(config: TuneConfig) -> str:
    """The configured storage string, or ``sqlite:///OUTPUT/optuna.db`` (directory created)."""
    if config.study.storage:
        return config.study.storage
    out = config.out_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{out / 'optuna.db'}"


def open_storage(url: str, spec: StudySpec | None = None) -> BaseStorage:
    """Open ``url`` (see the module docstring). With ``spec``, an RDB storage records heartbeats
    (``spec.heartbeat_s``, ``spec.grace_s``) and retries a stale trial up to ``spec.max_retries``
    times (Optuna's ``RetryHeartbeatStaleTrialCallback``); a journal file has no heartbeat.

    Raises:
        ConfigError: an unusable storage string.
    """
    if url.startswith("journal:"):
        path = url.removeprefix("journal:")
        if not path:
            raise ConfigError("study.storage: 'journal:' needs a file path, e.g. journal:runs/tune/x/journal.log")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(path))
    sqlite = url.startswith("sqlite")
    # isolation_level=None: the driver leaves transactions to SQLAlchemy (see _begin_immediate)
    engine = {"connect_args": {"timeout": SQLITE_TIMEOUT_S, "isolation_level": None}} if sqlite else {}
    try:
        with warnings.catch_warnings():  # Optuna marks its heartbeat experimental (stable since 2.9)
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            beat = {} if spec is None else {
                "heartbeat_interval": spec.heartbeat_s, "grace_period": spec.grace_s,
                "heartbeat_stale_trial_callback": RetryHeartbeatStaleTrialCallback(max_retry=spec.max_retries)}
            rdb = RDBStorage(url, engine_kwargs=engine, **beat)
    except Exception as exc:  # SQLAlchemy raises many types for a bad URL or an unreachable server
        raise ConfigError(f"study.storage: cannot open {url!r}: {exc}") from None
    if sqlite:
        sqlalchemy.event.listen(rdb.engine, "begin", _begin_immediate)
    # get_storage adds Optuna's trial cache, as create_study would: claims and reads share it
    return optuna.storages.get_storage(rdb)


def _begin_immediate(conn: sqlalchemy.Connection) -> None:
    """Open every SQLite transaction with the write lock held (see the module docstring)."""
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def study_name(config: TuneConfig, kind: str) -> str:
    """The study name of ``kind`` (one of :data:`KINDS`)."""
    return config.name if kind == "tuned" else f"{config.name}/{kind}"


def directions(config: TuneConfig) -> list[str]:
    """``["minimize"]``, or two for (target, worst split) when ``objective.multi``."""
    return ["minimize", "minimize"] if config.objective.multi else ["minimize"]


def make_sampler(config: TuneConfig, kind: str, worker: int = 0) -> optuna.samplers.BaseSampler:
    """The sampler of study ``kind`` for worker ``worker``, seeded with ``seed + 1000 * kind + worker``.

    Raises:
        ConfigError: ``cmaes`` without the ``cmaes`` package.
    """
    seed = config.seed + 1000 * KINDS.index(kind) + worker
    if kind != "tuned" or config.study.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    n0 = config.study.n_startup_trials
    if config.study.sampler == "tpe":
        with warnings.catch_warnings():  # multivariate/group are stable in use, flagged experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=n0, multivariate=True, group=True, constant_liar=True
            )
    if config.study.sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=n0)
    try:
        import cmaes  # noqa: F401
    except ImportError:
        raise ConfigError("study.sampler = 'cmaes' needs the cmaes package (pip install cmaes)") from None
    return optuna.samplers.CmaEsSampler(
        seed=seed, n_startup_trials=n0, independent_sampler=optuna.samplers.RandomSampler(seed=seed)
    )


def make_pruner(config: TuneConfig, kind: str) -> optuna.pruners.BasePruner:
    """The pruner of study ``kind``: none for the fixed baselines, else ``config.pruner``.

    Median: ``n_startup_trials = max(1, study.n_startup_trials // 2)`` finished trials first, no
    pruning before ``prune_warmup`` of the steps. Hyperband (Li et al. 2018): resources in optimizer
    steps, from one evaluation interval to the whole run, reduction factor 3.
    """
    if kind == "baselines" or config.pruner == "none":
        return optuna.pruners.NopPruner()
    total = config.train.total_steps
    if config.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=max(1, config.study.n_startup_trials // 2),
            n_warmup_steps=int(config.study.prune_warmup * total),
        )
    interval = min(config.train.trainer.eval_interval, total)
    return optuna.pruners.HyperbandPruner(min_resource=interval, max_resource=total, reduction_factor=3)


def open_study(config: TuneConfig, storage: BaseStorage, kind: str, worker: int = 0) -> optuna.Study:
    """Create or load the study of ``kind`` with its sampler and pruner."""
    return optuna.create_study(
        storage=storage,
        study_name=study_name(config, kind),
        directions=directions(config),
        sampler=make_sampler(config, kind, worker),
        pruner=make_pruner(config, kind),
        load_if_exists=True,
    )


BUDGET_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


def finished(study: optuna.Study) -> int:
    """Trials that count towards the budget: COMPLETE and PRUNED."""
    return len(study.get_trials(deepcopy=False, states=BUDGET_STATES))


def fail_running(study: optuna.Study, storage: BaseStorage) -> int:
    """Mark every RUNNING trial FAIL (zombies of a killed run); returns how many.

    Only the process that owns the study may call this, before any worker starts.
    """
    zombies = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in zombies:  # FrozenTrial exposes no public id; Optuna's own queue uses _trial_id too
        storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    return len(zombies)


def issue_tickets(study: optuna.Study, target: int, user_attrs: list[dict] | None = None) -> int:
    """Enqueue WAITING trials ("tickets") so that finished + waiting trials reach ``target``.

    The budget lives in the storage as tickets, and workers only ever run a ticket they have
    claimed (:func:`claim`), so any number of workers, on any machines, run exactly ``target``
    trials between them, none twice. ``user_attrs`` gives each ticket's attributes instead (the
    fixed baselines); those already finished or waiting, by their ``baseline`` name, are skipped.

    Returns:
        The number of tickets issued.
    """
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    if user_attrs is not None:
        done = {t.user_attrs.get("baseline") for t in study.get_trials(deepcopy=False, states=BUDGET_STATES)}
        done |= {t.user_attrs.get("baseline") for t in waiting}
        todo = [a for a in user_attrs if a["baseline"] not in done]
        for attrs in todo:
            study.enqueue_trial({}, user_attrs=attrs)
        return len(todo)
    n = max(0, target - finished(study) - len(waiting))
    for _ in range(n):
        study.enqueue_trial({})
    return n


def claim(study: optuna.Study, storage: BaseStorage) -> optuna.Trial | None:
    """Claim one WAITING ticket of ``study`` atomically and return it as a running trial, or None.

    The claim is the storage's WAITING -> RUNNING transition, which succeeds for one caller only
    (the mechanism of :meth:`optuna.Study.ask`, minus its fallback of creating a new trial).
    With heartbeats, the ticket's heartbeat is recorded just before the claim, so a worker that dies
    right after claiming leaves a trial that the others find stale (Optuna skips trials with no
    heartbeat at all); a claim lost to another worker leaves a heartbeat that worker renews at once.
    """
    beats = beating(storage)
    for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        if beats:
            storage.record_heartbeat(t._trial_id)  # type: ignore[attr-defined]
        if storage.set_trial_state_values(t._trial_id, TrialState.RUNNING):
            return optuna.Trial(study, t._trial_id)
    return None


def fail_stale(study: optuna.Study) -> None:
    """Fail ``study``'s trials whose worker stopped beating; each becomes a retry ticket (Optuna's
    ``fail_stale_trials`` and the storage's ``RetryHeartbeatStaleTrialCallback``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def beating(storage: BaseStorage) -> bool:
    """Whether ``storage`` records trial heartbeats (an RDB storage opened with a study spec)."""
    interval = getattr(storage, "get_heartbeat_interval", None)  # RDB storages (and Optuna's cache over them)
    return interval is not None and interval() is not None


@contextlib.contextmanager
def heartbeat(storage: BaseStorage, trial: optuna.Trial) -> Iterator[None]:
    """Record ``trial``'s heartbeat now and every heartbeat interval while the block runs (a
    daemon thread); nothing on a storage without heartbeats."""
    if not beating(storage):
        yield
        return
    storage.record_heartbeat(trial._trial_id)  # type: ignore[attr-defined]
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(storage.get_heartbeat_interval()):  # type: ignore[attr-defined]
            storage.record_heartbeat(trial._trial_id)  # type: ignore[attr-defined]

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial.number}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def running_elsewhere(study: optuna.Study) -> bool:
    """Whether ``study`` has RUNNING trials (another worker's, alive or not yet found stale)."""
    return bool(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
