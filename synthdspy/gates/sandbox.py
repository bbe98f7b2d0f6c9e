"""Run untrusted generated Python against its tests, and decide the verdict outside its reach.

Isolation (``SandboxResult.isolation``):

- ``bubblewrap`` (the default, and the only mode the ``code_tests`` gate uses unless told
  otherwise): everything runs inside bubblewrap, an operating-system boundary described in
  :mod:`synthdspy.gates.sandbox_bwrap`: own user, PID, network and mount namespaces, no network
  route, no view of this machine's files beyond the Python installation (read-only), a small
  private tmpfs as the only writable place, no capabilities, and every process ended with the run.
  Without a working ``bwrap``, :func:`run_python` refuses with :class:`SandboxUnavailable`.
- ``none`` (``unsandboxed=True``, the gate's ``allow_unsandboxed``): the same harness as plain
  subprocesses of this user, in a temporary directory, with only the resource limits and the
  solution process's audit hook. UNSAFE: that hook is no boundary (native code, ``_posixsubprocess``
  and introspection get around it), so the code can read and write what this user can, use the
  network and leave processes behind. Use it only for code you would run yourself.

Limits, in both modes: a wall-clock limit (the process group is killed with SIGKILL), and hard
rlimits on CPU time, address space (per process), file size (which also caps what the code can
print) and core dumps; under bubblewrap also on the number of processes and threads (32, counted
in the sandbox's own user namespace) and a ``/box`` of 4 x ``max_file_mb``.

The verdict: the tests run in a harness process (:mod:`synthdspy.gates.sandbox_boot`), the solution
in a separate, unprivileged solution process that the harness talks to through pipes; results go
to a file descriptor only the harness holds. This module counts the tests itself from the tests'
source, accepts a result only for a test it counted, and at most once, and clamps the score to
[0, 1]; a result stream that breaks these rules fails the run (status ``invalid``, score 0).
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from synthdspy.gates.sandbox_bwrap import (
    BOX,
    HARNESS,
    INSIDE,
    INSTALL_HINT,
    bubblewrap_problem,
    harness_command,
    minimal_env,
    wrap,
)
from synthdspy.gates.sandbox_wire import count_tests, syntax_error

OUTPUT_TAIL = 2000
PROCESSES = 32
BOX_FILES = 4


class SandboxUnavailable(RuntimeError):
    """Bubblewrap cannot run here, and running untrusted code without it was not allowed."""


def refusal(problem: str) -> str:
    """The one-line error for a machine where bubblewrap does not work."""
    return (f"code_tests refuses to run untrusted code without bubblewrap ({problem}): {INSTALL_HINT}, "
            "or set allow_unsandboxed = true on the gate (unsafe: the code then runs with your user's rights)")


def require_bubblewrap() -> None:
    """Raise :class:`SandboxUnavailable` (with :func:`refusal`'s message) unless bubblewrap works here."""
    problem = bubblewrap_problem()
    if problem is not None:
        raise SandboxUnavailable(refusal(problem))


@dataclass
class SandboxResult:
    """What happened to one run.

    ``status`` is one of ``passed`` (every test passed), ``failed`` (some test failed), ``blocked``
    (the audit hook refused an operation), ``timeout`` (wall-clock limit), ``killed`` (the solution
    process was ended by a signal: CPU or file-size limit), ``error`` (the code or tests did not
    parse, the solution raised at import or exited, or set-up code in the tests raised),
    ``crashed`` (the harness exited without finishing), ``invalid`` (the harness reported results
    that do not match the tests; nothing counts), ``no_tests``. ``passed``/``total`` count tests
    (``total`` from the parsed tests, so it is known even after a timeout); ``failures``,
    ``violations`` and ``errors`` are short messages; ``isolation`` is ``bubblewrap`` or ``none``;
    ``seconds`` is the wall-clock time of the run.
    """

    status: str
    passed: int = 0
    total: int = 0
    failures: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    isolation: str = "bubblewrap"
    seconds: float = 0.0

    @property
    def fraction(self) -> float:
        """Share of tests that passed, in [0, 1]; 0.0 when there are none."""
        return min(1.0, max(0.0, self.passed / self.total)) if self.total else 0.0


def expected_tests(tests: str) -> list[str] | str:
    """The test names of ``tests`` counted here, never by the sandbox; a message when it does not parse."""
    try:
        return count_tests(ast.parse(tests, "tests.py"))
    except SyntaxError as exc:
        return syntax_error(exc)
    except (ValueError, RecursionError, MemoryError) as exc:
        return f"tests.py cannot be parsed: {type(exc).__name__}"


def _tail(stream: IO[bytes]) -> str:
    size = stream.seek(0, os.SEEK_END)
    stream.seek(max(0, size - OUTPUT_TAIL))
    return stream.read().decode("utf-8", errors="replace")


def _read_events(stream: IO[bytes]) -> list[dict[str, Any]]:
    stream.seek(0)
    events = []
    for line in stream.read().decode("utf-8", errors="replace").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            event = json.loads(line)
            if isinstance(event, dict):
                events.append(event)
    return events


def summarise(events: list[dict[str, Any]], names: list[str], returncode: int | None, timed_out: bool,
              timeout_s: float) -> SandboxResult:
    """The result of a run from the harness's events, checked against the test ``names`` counted here."""
    remaining = Counter(names)
    result = SandboxResult(status="passed", total=len(names))
    invalid: list[str] = []
    killed, done = "", False
    for e in events:
        kind = e.get("event")
        if kind == "test":
            name = str(e.get("name"))
            if remaining[name] <= 0:
                invalid.append(f"a result for {name[:80]!r}, which is not a test or already has one")
                continue
            remaining[name] -= 1
            if e.get("passed") is True:
                result.passed += 1
            else:
                result.failures.append(f"{name}: {e.get('message')}")
        elif kind == "violation":
            result.violations.append(f"{e.get('kind')} ({e.get('name')} {e.get('detail', '')})".replace(" )", ")"))
        elif kind == "error":
            result.errors.append(f"{e.get('stage')}: {e.get('message')}")
        elif kind == "killed":
            killed = killed or str(e.get("signal"))
        elif kind == "done":
            done = True
    if invalid:
        result.status, result.passed = "invalid", 0
        result.errors.insert(0, f"the harness reported {invalid[0]}")
    elif result.violations:
        result.status = "blocked"
    elif timed_out:
        result.status = "timeout"
        result.errors.append(f"wall-clock limit of {timeout_s:g}s reached")
    elif killed:
        result.status = "killed"
        result.errors.insert(0, f"killed by {killed}")
    elif not done:
        result.status = "crashed"
        result.errors.append(f"exited with code {returncode} before finishing")
    elif result.errors:
        result.status = "error"
    elif result.total == 0:
        result.status = "no_tests"
    elif result.passed < result.total:
        result.status = "failed"
    return result


def run_python(code: str, tests: str, *, timeout_s: float = 10.0, memory_mb: int = 512, max_file_mb: int = 16,
               site_packages: bool = False, unsandboxed: bool = False) -> SandboxResult:
    """Run ``code`` as module ``solution`` in one process and ``tests`` against it in another.

    ``tests`` is Python source that sees the solution's names (``from solution import f`` also
    works): each top-level ``assert`` is one test, as is each ``test*`` function and each ``test*``
    method of a ``Test*`` class (pytest style, run without pytest; fixtures are not supported).
    Other top-level statements are set-up. The solution's objects stay in its process: builtin
    values (exact builtin types) are copied between the two, other objects are used through
    references, and a list, dict, set or bytearray passed to a solution function gets back the
    contents the function left it with. Only builtin values and the solution's own objects can be
    passed to it (not a function defined in the tests).

    Args:
        code: the solution source.
        tests: the tests source.
        timeout_s: wall-clock limit in seconds for the whole run.
        memory_mb: address-space limit (``RLIMIT_AS``) of each process, in MiB.
        max_file_mb: largest file (and largest stdout/stderr) the code may write, in MiB.
        site_packages: let the solution import installed third-party packages (read-only).
        unsandboxed: run without bubblewrap (UNSAFE, see the module doc) instead of refusing.

    Returns:
        The :class:`SandboxResult`; this function does not raise for anything the code does.

    Raises:
        SandboxUnavailable: bubblewrap does not work here and ``unsandboxed`` is false.
    """
    isolation = "none" if unsandboxed else "bubblewrap"
    names = expected_tests(tests)
    if isinstance(names, str):
        return SandboxResult(status="error", errors=[f"parse: {names}"], isolation=isolation)
    if not unsandboxed:
        require_bubblewrap()
    with (tempfile.TemporaryDirectory(prefix="synthdspy-sandbox-", ignore_cleanup_errors=True) as run_dir,
          tempfile.TemporaryFile() as results, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err):
        job: dict[str, Any] = dict(solution=code, tests=tests, memory_bytes=memory_mb * 2**20,
                                   cpu_seconds=math.ceil(timeout_s) + 1, fsize_bytes=max_file_mb * 2**20)
        harness, job["worker"] = harness_command(site_packages, str(HARNESS[0].parent) if unsandboxed else INSIDE)
        if unsandboxed:
            box = Path(run_dir) / "box"
            box.mkdir()
            job.update(box=str(box), processes=None)
            command = [*harness, str(results.fileno())]
            env = {"HOME": str(box), "TMPDIR": str(box), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        else:
            job.update(box=BOX, processes=PROCESSES)
            command = wrap([*harness, str(results.fileno())], Path(run_dir), BOX_FILES * job["fsize_bytes"],
                           site_packages)
            box, env = Path(run_dir), minimal_env()
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=box, env=env, stdin=subprocess.PIPE, stdout=out, stderr=err,
                                pass_fds=(results.fileno(),), start_new_session=True)
        timed_out = threading.Event()
        timer = threading.Timer(timeout_s, lambda: (timed_out.set(), _kill_group(proc)))
        timer.start()  # a blocking wait and a timer, not Popen.wait(timeout)'s polling with sleeps
        try:
            with contextlib.suppress(BrokenPipeError), proc.stdin as job_pipe:
                job_pipe.write(json.dumps(job).encode())
            proc.wait()
        finally:
            timer.cancel()
            _kill_group(proc)
        result = summarise(_read_events(results), names, proc.returncode, timed_out.is_set(), timeout_s)
        result.seconds, result.isolation = time.perf_counter() - start, isolation
        result.stdout, result.stderr = _tail(out), _tail(err)
        return result


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group of ``proc`` (anything it left behind), unless ``proc`` is reaped already."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

