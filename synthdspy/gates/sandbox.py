"""Run untrusted generated Python against its tests in a throwaway subprocess.

What :func:`run_python` guarantees, and what it does not:

- Fresh directory: the code runs with its working directory, ``HOME`` and ``TMPDIR`` set to a new
  temporary directory (the *box*), which is deleted afterwards, with a minimal environment
  (``PATH``, ``LANG``) and ``python -I -B -S`` (no user site, no ``PYTHON*`` variables, no
  site-packages unless ``site_packages=True``, no bytecode written).
- Time: a wall-clock limit (the whole process group is killed with SIGKILL) and a CPU-time limit
  (``RLIMIT_CPU``) as a backstop. Memory: ``RLIMIT_AS``. File size: ``RLIMIT_FSIZE`` (also caps
  what the code can print). No core dumps. The limits are hard limits set by the child before the
  code runs, so the code cannot raise them.
- Network: when unprivileged user namespaces work (``unshare --user --map-root-user --net`` from
  util-linux), the process runs in its own network namespace whose only interface is a loopback
  that is down: no traffic can leave, whatever the code does, native code included. Either way an
  audit hook (PEP 578) refuses every ``socket.*`` event, so an attempt is reported as
  ``blocked: network``.
- Files, processes, native code: the audit hook refuses reads outside the box, the Python
  installation and ``sys.path`` (so ``~``, ``/root``, ``/etc`` ... are refused), writes outside
  the box, process creation (``fork``, ``exec``, ``subprocess``, ``os.system``), signals to other
  processes and ``ctypes`` beyond importing it. Audit hooks are NOT a security boundary: they see
  only the Python-level operations that CPython audits (``os.stat``/``os.path.exists`` are not
  audited, so the code can learn whether a path exists), and native code in a C extension, or code
  that deliberately tampers with the interpreter, bypasses them. Running as root does not change
  this (file permissions are no second line). The guard catches accidents of generated code, not
  an adversary: run code from an adversary in a container or VM.

The result channel is a file outside the box that the bootstrap opens before the guard is
installed; the verdict is read from it, never from the code's stdout.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

BOOTSTRAP = Path(__file__).with_name("sandbox_boot.py")
UNSHARE = ("unshare", "--user", "--map-root-user", "--net")
OUTPUT_TAIL = 2000

NetworkMode = Literal["auto", "namespace", "hook"]


@functools.cache
def network_namespace_available() -> bool:
    """Whether ``unshare --user --map-root-user --net`` can start a process here (checked once)."""
    if shutil.which("unshare") is None:
        return False
    try:
        done = subprocess.run([*UNSHARE, "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@dataclass
class SandboxResult:
    """What happened to one run.

    ``status`` is one of ``passed`` (every test passed), ``failed`` (some test failed), ``blocked``
    (the guard refused an operation), ``timeout`` (wall-clock limit), ``killed`` (ended by a signal:
    CPU or file-size limit), ``error`` (the code or tests did not parse, raised at import, or set-up
    code in the tests raised), ``crashed`` (exited without finishing), ``no_tests``.
    ``passed``/``total`` count tests (``total`` from the parsed tests, so it is known even after a
    timeout); ``failures`` and ``violations`` are short messages; ``isolation`` is ``namespace`` or
    ``hook``; ``seconds`` is the wall-clock time of the subprocess.
    """

    status: str
    passed: int = 0
    total: int = 0
    failures: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    isolation: str = "hook"
    seconds: float = 0.0

    @property
    def fraction(self) -> float:
        """Share of tests that passed, 0.0 when there are none."""
        return self.passed / self.total if self.total else 0.0


def _command(root: Path, box: Path, isolation: str, memory_mb: int, timeout_s: float,
             max_file_mb: int, site_packages: bool) -> list[str]:
    python = [sys.executable, "-I", "-B"] + ([] if site_packages else ["-S"])
    args = [str(BOOTSTRAP), str(box), str(root / "result.jsonl"), str(memory_mb * 2**20),
            str(math.ceil(timeout_s) + 1), str(max_file_mb * 2**20)]
    return [*(UNSHARE if isolation == "namespace" else ()), *python, *args]


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - OUTPUT_TAIL))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _read_events(path: Path) -> list[dict]:
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
    return events


def _summarise(events: list[dict], returncode: int | None, timed_out: bool, timeout_s: float) -> SandboxResult:
    by_kind: dict[str, list[dict]] = {}
    for e in events:
        by_kind.setdefault(e.get("event", ""), []).append(e)
    tests = by_kind.get("test", [])
    result = SandboxResult(
        status="passed",
        passed=sum(1 for t in tests if t.get("passed")),
        total=next((int(p["total"]) for p in by_kind.get("plan", [])), 0),
        failures=[f"{t.get('name')}: {t.get('message')}" for t in tests if not t.get("passed")],
        violations=[f"{v.get('kind')} ({v.get('name')} {v.get('detail', '')})".replace(" )", ")")
                    for v in by_kind.get("violation", [])],
        errors=[f"{e.get('stage')}: {e.get('message')}" for e in by_kind.get("error", [])],
    )
    if result.violations:
        result.status = "blocked"
    elif timed_out:
        result.status = "timeout"
        result.errors.append(f"wall-clock limit of {timeout_s:g}s reached")
    elif returncode is not None and returncode < 0:
        result.status = "killed"
        result.errors.append(f"killed by {signal.Signals(-returncode).name}")
    elif "done" not in by_kind:
        result.status = "crashed"
        result.errors.append(f"exited with code {returncode} before finishing")
    elif result.errors:
        result.status = "error"
    elif result.total == 0:
        result.status = "no_tests"
    elif result.passed < result.total:
        result.status = "failed"
    return result


def run_python(code: str, tests: str, *, timeout_s: float = 10.0, memory_mb: int = 512,
               max_file_mb: int = 16, network: NetworkMode = "auto", site_packages: bool = False) -> SandboxResult:
    """Run ``code`` as module ``solution`` and then ``tests`` in a sandboxed subprocess.

    ``tests`` is Python source run in a namespace holding the solution's names (``from solution
    import f`` also works): each top-level ``assert`` is one test, as is each ``test*`` function and
    each ``test*`` method of a ``Test*`` class (pytest style, run without pytest; fixtures are not
    supported). Other top-level statements are set-up.

    Args:
        code: the solution source.
        tests: the tests source.
        timeout_s: wall-clock limit in seconds for the whole subprocess.
        memory_mb: address-space limit (``RLIMIT_AS``) in MiB.
        max_file_mb: largest file (and largest stdout/stderr) the code may write, in MiB.
        network: ``namespace`` requires a network namespace, ``hook`` uses only the audit hook,
            ``auto`` uses a namespace when :func:`network_namespace_available`.
        site_packages: let the code import installed third-party packages (read-only).

    Returns:
        The :class:`SandboxResult`; this function does not raise for anything the code does.

    Raises:
        RuntimeError: ``network="namespace"`` on a machine where user namespaces are unavailable.
    """
    if network == "namespace" and not network_namespace_available():
        raise RuntimeError("network='namespace' needs `unshare --user --net` (util-linux) and user namespaces")
    isolation = "namespace" if network != "hook" and network_namespace_available() else "hook"
    root = Path(tempfile.mkdtemp(prefix="synthdspy-sandbox-"))
    try:
        box = root / "box"
        box.mkdir()
        (box / "solution.py").write_text(code, encoding="utf-8")
        (box / "tests.py").write_text(tests, encoding="utf-8")
        (root / "result.jsonl").touch()
        env = {"HOME": str(box), "TMPDIR": str(box), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        cmd = _command(root, box, isolation, memory_mb, timeout_s, max_file_mb, site_packages)
        start = time.perf_counter()
        with (root / "stdout.txt").open("wb") as out, (root / "stderr.txt").open("wb") as err:
            proc = subprocess.Popen(cmd, cwd=box, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True, close_fds=True)
            timed_out = False
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_group(proc)
        result = _summarise(_read_events(root / "result.jsonl"), proc.returncode, timed_out, timeout_s)
        result.seconds = time.perf_counter() - start
        result.isolation = isolation
        result.stdout, result.stderr = _tail(root / "stdout.txt"), _tail(root / "stderr.txt")
        return result
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group of ``proc`` (anything it left behind) and reap ``proc``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
