"""MLflow wiring shared by compile, generate, train, tune and diversity runs.

The default tracking URI is a SQLite file inside the run's output directory, so no server is
needed; ``mlflow ui --backend-store-uri sqlite:///OUTPUT/mlflow.db`` shows it.
Parameters are flattened from nested configs and scrubbed of secrets before they are logged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

# A key whose last word names a credential ("api_key", "hf_token", "client_secret", "Authorization");
# not "api_key_env" (names an environment variable) nor "max_tokens" (a count).
SECRET_KEY_PATTERN = re.compile(
    r"(^|[._-])(api[_-]?key|secret([_-]?(access[_-]?)?key)?|token|password|passwd|authorization)$", re.IGNORECASE
)
REDACTED = "***"


def default_tracking_uri(output_dir: str | Path) -> str:
    """SQLite tracking URI for ``output_dir/mlflow.db`` (the directory is created)."""
    path = Path(output_dir).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path / 'mlflow.db'}"


def ensure_sqlite_store(path: Path) -> None:
    """Create MLflow's SQLite database at ``path`` atomically, or check an existing one.

    MLflow creates its tables in several migrations; a process killed meanwhile leaves a database
    that every later run refuses. So a new database is built under a temporary name and linked
    into place (``os.link`` is atomic and never replaces a database another process linked first),
    and an existing one must have MLflow's ``alembic_version`` table.

    Raises:
        ConfigError: ``path`` exists but is not a complete MLflow database (the message says to
            move it aside).
    """
    import sqlite3

    from synthdspy.configio import ConfigError

    if path.exists():
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
                ok = db.execute("select count(*) from sqlite_master where name='alembic_version'").fetchone()[0]
                ok = ok and db.execute("select count(*) from alembic_version").fetchone()[0]
        except sqlite3.DatabaseError:
            ok = False
        if not ok:
            raise ConfigError(f"{path}: not a complete MLflow database (a run was killed while creating it?); "
                              f"move it aside (mv {path} {path}.broken) and run again")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    template = _empty_store_template()
    if template is not None:
        shutil.copyfile(template, tmp)
    else:
        _create_store(tmp, path.parent / "mlartifacts")
    with contextlib.suppress(FileExistsError):  # another process put its complete database in place first
        os.link(tmp, path)
    tmp.unlink()


def _create_store(path: Path, artifacts: Path) -> None:
    """An empty MLflow SQLite database at ``path`` (MLflow's migrations: about 1-3 s)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    SqlAlchemyStore(f"sqlite:///{path}", artifacts.resolve().as_uri()).engine.dispose()


def _empty_store_template() -> Path | None:
    """A migrated, empty MLflow database for this MLflow version, built once in the user cache
    (``$XDG_CACHE_HOME/synthdspy``, default ``~/.cache/synthdspy``) and copied for every new output
    directory, so a run does not pay MLflow's migrations; None when the cache is not writable.
    synthdspy logs only to experiments it creates with their own artifact location, so the template's
    ``Default`` experiment (artifact root in the cache) is never written to."""
    import mlflow

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "synthdspy"
    template = cache / f"mlflow-{mlflow.__version__}-empty.db"
    if template.exists():
        return template
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / f".{template.name}.tmp-{os.getpid()}"
        _create_store(tmp, cache / "mlartifacts")
        with contextlib.suppress(FileExistsError):
            os.link(tmp, template)
        tmp.unlink()
    except OSError:
        return None
    return template


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings to ``{"a.b.c": value}``; lists become their string form.

    Keys that look like secrets (api_key, token, password ...) get the value ``***``; keys ending
    in ``_env`` name an environment variable, not a secret, and are kept.
    """
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif SECRET_KEY_PATTERN.search(str(key)) and value not in (None, ""):
            flat[name] = REDACTED
        else:
            flat[name] = value if isinstance(value, (int, float, bool, str)) or value is None else str(value)
    return flat


def redact(data: Any) -> Any:
    """``data`` (nested dicts and lists) with the value of every credential-like key (as in
    :func:`flatten`) replaced by ``***``; the structure is kept."""
    if isinstance(data, Mapping):
        return {k: REDACTED if SECRET_KEY_PATTERN.search(str(k)) and v not in (None, "") else redact(v)
                for k, v in data.items()}
    if isinstance(data, list):
        return [redact(v) for v in data]
    return data


def configure(tracking_uri: str | None, experiment: str, output_dir: str | Path, this_thread: bool = True) -> str:
    """Point MLflow at ``tracking_uri`` (default: SQLite in ``output_dir``) and select ``experiment``.

    With a SQLite store, an experiment created here keeps its artifacts in ``mlartifacts/`` beside
    the database file (MLflow's own default is ``./mlruns`` under the current directory, which
    would scatter a run's files away from its output directory). A tracking server decides for
    itself. An active model (set by ``mlflow.dspy.load_model``) that this store does not hold is
    cleared in this thread unless ``this_thread`` is false (see :class:`BackgroundSetup`).

    Returns:
        The tracking URI in use.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    for noisy in ("alembic", "mlflow.store.db.utils", "mlflow.tracing.export.async_export_queue"):
        logging.getLogger(noisy).setLevel(logging.WARNING)  # table creation and exit-time flush notices
    uri = tracking_uri or default_tracking_uri(output_dir)
    if uri.startswith("sqlite:///"):
        ensure_sqlite_store(Path(uri.removeprefix("sqlite:///")))
    mlflow.set_tracking_uri(uri)
    if uri.startswith("sqlite:///") and mlflow.get_experiment_by_name(experiment) is None:
        artifacts = Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts"
        with contextlib.suppress(MlflowException):  # another worker created it first
            mlflow.create_experiment(experiment, artifact_location=artifacts.resolve().as_uri())
    mlflow.set_experiment(experiment)
    if this_thread:
        _forget_foreign_active_model()
    return uri


def is_local_store(tracking_uri: str | None) -> bool:
    """Whether ``tracking_uri`` is a local SQLite file (``None``: the default one in the output
    directory), whose set-up cannot fail for a reason worth checking before paid work starts."""
    return tracking_uri is None or tracking_uri.startswith("sqlite:///")


class BackgroundSetup:
    """:func:`configure` run in a background thread; :meth:`result` waits for it.

    Importing MLflow and opening its SQLite store take 2-3 s of CPU on 2 cores. A caller whose
    next step waits on the network (the first rate-limited LM requests of ``generate``) lets that
    set-up overlap the wait and calls :meth:`result` when it needs the run. With ``after`` (a
    predicate, e.g. "the first LM request has been answered") the set-up starts only once it holds,
    or after ``max_delay_s``, or when :meth:`result` is called, so it does not compete for the
    interpreter with the imports and work that the first request waits on; :meth:`cancel` skips it.
    """

    def __init__(self, tracking_uri: str | None, experiment: str, output_dir: str | Path,
                 after: Callable[[], bool] | None = None, max_delay_s: float = 10.0) -> None:
        self._go, self._cancelled = threading.Event(), False
        ready = after or (lambda: True)

        def setup() -> str:
            deadline = time.monotonic() + max_delay_s
            while not ready() and not self._go.wait(0.02) and time.monotonic() < deadline:
                pass
            return "" if self._cancelled else configure(tracking_uri, experiment, output_dir, False)

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-setup")
        self._future: Future[str] = pool.submit(setup)
        pool.shutdown(wait=False)

    def cancel(self) -> None:
        """Skip a set-up that has not begun (the caller failed before it needed a run)."""
        self._cancelled = True
        self._go.set()

    def result(self) -> str:
        """The tracking URI in use, once set up (MLflow's errors are raised here).

        MLflow keeps the active model per thread, so a foreign one is cleared in the caller's."""
        self._go.set()
        uri = self._future.result()
        _forget_foreign_active_model()
        return uri


def _forget_foreign_active_model() -> None:
    """Clear MLflow's process-wide active model when the store now in use does not hold it.

    ``mlflow.dspy.load_model`` makes the loaded model active, and MLflow then links every metric
    logged in the process to it; after switching to another store (a later run's output directory)
    that link would fail on the store's foreign key and abort the run."""
    import mlflow
    from mlflow.exceptions import MlflowException

    active = mlflow.get_active_model_id()
    if active is None:
        return
    try:
        mlflow.get_logged_model(active)
    except MlflowException:
        mlflow.clear_active_model()


@contextlib.contextmanager
def run(
    name: str,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    nested: bool = False,
) -> Iterator[Any]:
    """Start an MLflow run with flattened, secret-free ``params``; yields the active run.

    Parameter values longer than MLflow's 6000-character limit are truncated.
    """
    import mlflow

    with mlflow.start_run(run_name=name, nested=nested, tags=dict(tags or {})) as active:
        if params:
            flat = {k: str(v)[:6000] for k, v in flatten(params).items()}
            items = list(flat.items())
            for i in range(0, len(items), 100):
                mlflow.log_params(dict(items[i : i + 100]))
        yield active


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Log the finite numeric entries of ``metrics`` to the active run (others are skipped)."""
    import math

    import mlflow

    clean = {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
    }
    if clean:
        mlflow.log_metrics(clean, step=step)


def ui_command(tracking_uri: str) -> str:
    """The shell command that opens the MLflow UI on ``tracking_uri``."""
    return f"mlflow ui --backend-store-uri {tracking_uri}"


_SECRET_ENV: set[str] = set()


def register_secret_env(name: str) -> None:
    """Mark the environment variable ``name`` as holding a secret (an experiment's ``api_key_env``),
    so :func:`scrub_env_secrets` redacts its value whatever the variable is called."""
    _SECRET_ENV.add(name)


def scrub_env_secrets(text: str) -> str:
    """``text`` with the value of every secret environment variable replaced by ``***``: variables
    with a credential-like name (``*_API_KEY``, ``*_TOKEN`` ...) and those registered with
    :func:`register_secret_env`. Values shorter than 8 characters are left alone."""
    for key, value in os.environ.items():
        secret = key in _SECRET_ENV or SECRET_KEY_PATTERN.search(key)
        if value and len(value) >= 8 and secret and value in text:
            text = text.replace(value, REDACTED)
    return text
