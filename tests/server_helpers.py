"""Real servers for multi-machine tests: a PostgreSQL cluster (Debian's ``postgresql`` package) and
an ``mlflow server`` on it, both on 127.0.0.1 and torn down after the block.

As root (CI), PostgreSQL refuses to run, so its binaries run as the ``postgres`` system user
(``runuser``); its data directory lives in a fresh directory under /tmp that user can reach.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now."""
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin() -> Path:
    """The directory of ``initdb`` and ``postgres``.

    Raises:
        FileNotFoundError: PostgreSQL is not installed (``apt-get install postgresql``).
    """
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise FileNotFoundError("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: "
                                "apt-get install postgresql")
    return Path(found[-1]).parent


def _wait(check, what: str, timeout: float, proc: subprocess.Popen) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.3)
    raise TimeoutError(f"{what} did not start in {timeout:.0f} s")


@contextlib.contextmanager
def postgres_server(databases: tuple[str, ...] = ("optuna", "mlflow")) -> Iterator[str]:
    """Start a throw-away PostgreSQL cluster on a free port with ``databases`` created; yields the
    SQLAlchemy URL prefix ``postgresql+psycopg2://synthdspy@127.0.0.1:PORT`` (append ``/<db>``)."""
    import psycopg2

    home = Path(tempfile.mkdtemp(prefix="synthdspy-pg-", dir="/tmp"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, bin_dir, port = home / "data", postgres_bin(), free_port()
    subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "synthdspy",
                    "--no-sync"], check=True, capture_output=True)
    proc = subprocess.Popen([*as_user, str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(home),
                             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def connect():  # noqa: ANN202
            return psycopg2.connect(host="127.0.0.1", port=port, user="synthdspy", dbname="postgres")

        _wait(lambda: connect().close() is None, "postgres", 60, proc)
        con = connect()
        con.autocommit = True
        with con.cursor() as cur:
            for name in databases:
                cur.execute(f"CREATE DATABASE {name}")
        con.close()
        yield f"postgresql+psycopg2://synthdspy@127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def mlflow_server(backend_uri: str, artifacts: Path) -> Iterator[str]:
    """Start ``mlflow server`` with ``backend_uri`` as its backend store and ``artifacts`` as its
    artifact destination; yields its tracking URI ``http://127.0.0.1:PORT``."""
    port = free_port()
    log = (artifacts.parent / "mlflow-server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri,
                             "--artifacts-destination", str(artifacts), "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: urllib.request.urlopen(f"{url}/health", timeout=2).status == 200, "mlflow server", 120, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
