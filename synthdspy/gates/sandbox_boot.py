"""The test harness of the ``code_tests`` sandbox (run inside it, never imported by synthdspy).

Started by :func:`synthdspy.gates.sandbox.run_python` only, through
:func:`synthdspy.gates.sandbox_bwrap.harness_command` (``main(["-c", RESULT_FD])``, job on stdin).

The job (JSON on stdin) holds the solution, the tests, the limits and the command of the solution
process. The harness lowers its resource limits (hard limits, inherited by the solution process),
makes itself non-dumpable (so a process of the same user cannot ptrace it or open its
``/proc/PID/mem`` and ``/proc/PID/fd``), starts the solution process
(:mod:`synthdspy.gates.sandbox_worker`) without ``RESULT_FD`` and without the tests, and runs the
tests here against references to the solution's objects (:mod:`synthdspy.gates.sandbox_remote`).
It writes one JSON object per line to ``RESULT_FD``: ``test`` (name, passed, message), ``error``
(stage, message), ``violation`` (kind, name, detail), ``killed`` (signal) and ``done``. The
solution never runs in this process, so it cannot write to the result channel, patch this code
or hand the tests an object of its own to compare.
"""

from __future__ import annotations

import ast
import ctypes
import json
import os
import resource
import subprocess
import sys
import types

from sandbox_remote import Channel, Remote, SolutionGone
from sandbox_wire import count_tests, describe, syntax_error, where

TYPE_CHECKING = False  # what typing.TYPE_CHECKING is at run time, without importing typing (slow to start)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

PR_SET_DUMPABLE = 4


def set_limits(memory_bytes: int, cpu_seconds: int, fsize_bytes: int, processes: int | None) -> None:
    """Lower soft and hard limits: address space, CPU seconds (SIGXCPU), file size, core dumps and,
    when ``processes`` is given, the number of processes and threads of this user (in a user
    namespace of its own, the sandbox's processes only)."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_bytes, fsize_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if processes is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))


def forbid_inspection() -> None:
    """Make this process non-dumpable: no ptrace and no ``/proc/PID/{mem,fd,environ}`` for its peers."""
    if ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError("prctl(PR_SET_DUMPABLE, 0) failed")


def describe_failure(exc: BaseException, sources: dict[str, str]) -> str:
    """``ExcType: message`` plus the line of the solution (for an exception raised over there) or
    of ``sources`` (file name -> source: the tests) where it was raised."""
    location = getattr(exc, "_sandbox_where", "") or where(exc, sources)
    return describe(type(exc).__name__, str(exc), location)


def run_tests(tests: str, tree: ast.Module, namespace: dict[str, Any], emit: Callable[..., None]) -> None:
    """Run top-level statements in order (each ``assert`` is one test, other statements set up),
    then every ``test*`` function and ``Test*`` class method; emit one ``test`` event per test."""
    tests_file = namespace["__file__"]
    sources = {tests_file: tests}
    for node in tree.body:
        code = compile(ast.Module(body=[node], type_ignores=[]), tests_file, "exec")
        try:
            exec(code, namespace)
        except BaseException as exc:  # noqa: BLE001 - any failure of generated code is a result
            if isinstance(node, ast.Assert):
                segment = ast.get_source_segment(tests, node) or ""
                emit(event="test", name=f"line {node.lineno}", passed=False,
                     message=f"{segment[:200]} -> {describe_failure(exc, sources)}")
            else:
                emit(event="error", stage="tests", message=f"line {node.lineno}: {describe_failure(exc, sources)}")
            continue
        if isinstance(node, ast.Assert):
            emit(event="test", name=f"line {node.lineno}", passed=True, message="")
    for name in count_tests(tree):
        if name.startswith("line "):
            continue
        cls_name, _, method = name.rpartition(".")
        try:
            target = getattr(namespace[cls_name](), method) if cls_name else namespace[name]
            target()
        except BaseException as exc:  # noqa: BLE001 - any failure of generated code is a result
            emit(event="test", name=name, passed=False, message=describe_failure(exc, sources))
        else:
            emit(event="test", name=name, passed=True, message="")


def start_solution(command: list[str], box: str, emit: Callable[..., None]) -> Channel:
    """Start the solution process on two fresh pipes; the channel to it."""
    request_read, request_write = os.pipe()
    reply_read, reply_write = os.pipe()
    process = subprocess.Popen([*command, str(request_read), str(reply_write), box], cwd=box,
                               stdin=subprocess.DEVNULL, pass_fds=(request_read, reply_write), close_fds=True)
    os.close(request_read)
    os.close(reply_write)
    channel = Channel(process, os.fdopen(request_write, "wb"), os.fdopen(reply_read, "rb"), emit)
    Remote.channel = channel
    return channel


def load_solution(channel: Channel, source: str, emit: Callable[..., None]) -> dict[str, Any] | None:
    """Run the solution over there; its public names (references and data), or None when it failed."""
    try:
        exports = channel.request("load", source)
    except SolutionGone:
        return None
    except SyntaxError as exc:
        emit(event="error", stage="parse", message=str(exc))
        return None
    except BaseException as exc:  # noqa: BLE001 - any failure of generated code is a result
        emit(event="error", stage="solution", message=describe_failure(exc, {}))
        return None
    if type(exports) is not dict:
        emit(event="error", stage="solution", message="the solution process answered out of turn")
        return None
    return exports


def main(argv: list[str]) -> int:
    """Run the job on stdin (see the module doc), reporting to the file descriptor ``argv[1]``."""
    job = json.loads(sys.stdin.buffer.read())
    sys.stdin.close()
    set_limits(job["memory_bytes"], job["cpu_seconds"], job["fsize_bytes"], job["processes"])
    forbid_inspection()
    os.set_inheritable(int(argv[1]), False)
    out = os.fdopen(int(argv[1]), "w", buffering=1, encoding="utf-8")

    def emit(**event: Any) -> None:
        out.write(json.dumps(event) + "\n")

    box = job["box"]
    tests_file = os.path.join(box, "tests.py")
    try:
        tree = ast.parse(job["tests"], tests_file)
    except SyntaxError as exc:
        emit(event="error", stage="parse", message=syntax_error(exc))
        emit(event="done")
        return 0
    channel = start_solution(job["worker"], box, emit)
    exports = load_solution(channel, job["solution"], emit)
    if exports is not None:
        module = types.ModuleType("solution")
        module.__dict__.update(exports)
        sys.modules["solution"] = module
        namespace = {**exports, "__name__": "tests", "__file__": tests_file, "__builtins__": __builtins__}
        run_tests(job["tests"], tree, namespace, emit)
    emit(event="done")
    channel.close()
    return 0
