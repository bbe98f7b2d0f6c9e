"""Bootstrap run as a script inside the ``code_tests`` sandbox process (never imported by synthdspy).

Usage (by :func:`synthdspy.gates.sandbox.run_python` only)::

    python -I -B [-S] sandbox_boot.py BOX RESULT MEMORY_BYTES CPU_SECONDS FSIZE_BYTES

``BOX`` holds ``solution.py`` and ``tests.py``; ``RESULT`` is a file outside ``BOX`` that receives
one JSON object per line: ``plan`` (number of tests), ``test`` (name, passed, message),
``violation`` (kind, event, detail), ``error`` (the solution or the tests could not run) and
``done``. The script lowers its own resource limits (hard limits, so the code cannot raise them
again), opens ``RESULT``, installs an audit hook (PEP 578) and only then runs the solution and the
tests. Audit hooks see the Python-level operations listed in the CPython audit events table; they
are a guard against accidents of generated code, not a security boundary: native code (C
extensions) and deliberate tampering with this process are out of their reach.
"""

from __future__ import annotations

import ast
import json
import os
import resource
import sys
import traceback
import types
from collections.abc import Callable
from typing import Any, TextIO

NETWORK_PREFIXES = ("socket.",)
PROCESS_EVENTS = frozenset({
    "os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn", "os.system", "os.startfile",
    "subprocess.Popen", "os.kill", "os.killpg", "pty.spawn",
})
NATIVE_PREFIXES = ("ctypes.",)
READ_EVENTS = frozenset({"os.listdir", "os.scandir", "glob.glob", "os.getxattr", "os.listxattr", "os.chdir"})
WRITE_EVENTS = frozenset({
    "os.chmod", "os.chown", "os.chflags", "os.lchmod", "os.lchown", "os.lchflags", "os.link", "os.mkdir",
    "os.mkfifo", "os.mknod", "os.remove", "os.rename", "os.rmdir", "os.symlink", "os.truncate", "os.utime",
    "os.removexattr", "os.setxattr", "os.chroot", "tempfile.mkstemp", "tempfile.mkdtemp",
    "shutil.copyfile", "shutil.copymode", "shutil.copystat", "shutil.copytree", "shutil.chown",
    "shutil.make_archive", "shutil.move", "shutil.rmtree", "shutil.unpack_archive",
})
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class SandboxViolation(PermissionError):
    """Raised inside the sandbox for an operation the guard blocks (network, process, native, file)."""


def set_limits(memory_bytes: int, cpu_seconds: int, fsize_bytes: int) -> None:
    """Lower soft and hard limits: address space, CPU seconds (SIGXCPU), file size, core dumps."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_bytes, fsize_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _paths(args: tuple[Any, ...]) -> list[Any]:
    return [a for a in args if isinstance(a, str | bytes | os.PathLike | int) and not isinstance(a, bool)]


def make_guard(box: str, read_roots: list[str], result_fd: int,
               report: Callable[[str, str, str], None]) -> Callable[[str, tuple[Any, ...]], None]:
    """The audit hook: allow reads under ``box`` and ``read_roots``, writes under ``box`` only, and no
    network, process creation, signals to other processes or ctypes use beyond ``import ctypes``
    (which opens the running process, as numpy does at import: every other ``ctypes.*`` event, such
    as loading a library or looking up a C function, is refused). ``report(kind, event, detail)``
    is called before the hook raises :class:`SandboxViolation`."""
    box = os.path.realpath(box)
    readable = [box, os.path.realpath(__file__), *read_roots]

    def allowed(path: Any, roots: list[str]) -> bool:
        if isinstance(path, int):
            return path != result_fd
        return _under(os.path.realpath(os.fsdecode(path)), roots)

    def block(kind: str, event: str, detail: str) -> None:
        report(kind, event, detail)
        raise SandboxViolation(f"sandbox blocked {kind}: {event} {detail}".strip())

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event.startswith(NETWORK_PREFIXES):
            block("network", event, "")
        elif event in PROCESS_EVENTS:
            block("process", event, str(args[:1])[:200])
        elif event.startswith(NATIVE_PREFIXES) and not (event == "ctypes.dlopen" and args[0] is None):
            block("native", event, str(args[:1])[:200])
        elif event == "open":
            path, mode, flags = (tuple(args) + (None, None))[:3]
            writing = (isinstance(flags, int) and flags & WRITE_FLAGS) or (
                isinstance(mode, str) and any(c in mode for c in "wax+"))
            if not allowed(path, [box] if writing else readable):
                block("filesystem", event, repr(path))
        elif event in READ_EVENTS or event in WRITE_EVENTS:
            roots = readable if event in READ_EVENTS else [box]
            for path in _paths(args):
                if not allowed(path, roots):
                    block("filesystem", event, repr(path))

    return hook


def count_tests(tree: ast.Module) -> list[str]:
    """Names of the tests in ``tree``: each top-level ``assert`` (``line N``), each top-level
    ``test*`` function and each ``test*`` method of a top-level ``Test*`` class."""
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Assert):
            names.append(f"line {node.lineno}")
        elif isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            names.append(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            names += [f"{node.name}.{m.name}" for m in node.body
                      if isinstance(m, ast.FunctionDef) and m.name.startswith("test")]
    return names


def describe_failure(exc: BaseException) -> str:
    """``ExcType: message`` plus the line of ``tests.py`` (or ``solution.py``) where it was raised."""
    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.endswith(("tests.py", "solution.py")):
            where = f" at {os.path.basename(frame.filename)}:{frame.lineno}: {(frame.line or '').strip()}"
    message = str(exc)[:300]
    return f"{type(exc).__name__}{': ' + message if message else ''}{where}"


def run_tests(tests: str, tree: ast.Module, namespace: dict[str, Any],
              emit: Callable[..., None]) -> None:
    """Run top-level statements in order (each ``assert`` is one test, other statements set up),
    then every ``test*`` function and ``Test*`` class method; emit one ``test`` event per test."""
    tests_file = namespace["__file__"]
    for node in tree.body:
        code = compile(ast.Module(body=[node], type_ignores=[]), tests_file, "exec")
        try:
            exec(code, namespace)
        except BaseException as exc:  # noqa: BLE001 - any failure of generated code is a result
            if isinstance(node, ast.Assert):
                segment = ast.get_source_segment(tests, node) or ""
                emit(event="test", name=f"line {node.lineno}", passed=False,
                     message=f"{segment[:200]} -> {describe_failure(exc)}")
            else:
                emit(event="error", stage="tests", message=f"line {node.lineno}: {describe_failure(exc)}")
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
            emit(event="test", name=name, passed=False, message=describe_failure(exc))
        else:
            emit(event="test", name=name, passed=True, message="")


def main(argv: list[str]) -> int:
    """Run ``BOX/solution.py`` then ``BOX/tests.py`` under the limits and the guard (see module doc)."""
    box, result_path, memory, cpu, fsize = argv[1], argv[2], int(argv[3]), int(argv[4]), int(argv[5])
    set_limits(memory, cpu, fsize)
    out: TextIO = open(result_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - kept open

    def emit(**event: Any) -> None:
        out.write(json.dumps(event) + "\n")

    solution_file, tests_file = os.path.join(box, "solution.py"), os.path.join(box, "tests.py")
    with open(solution_file, encoding="utf-8") as f:
        solution = f.read()
    with open(tests_file, encoding="utf-8") as f:
        tests = f.read()
    try:
        tree = ast.parse(tests, tests_file)
        solution_code = compile(solution, solution_file, "exec")
    except SyntaxError as exc:
        emit(event="error", stage="parse", message=f"SyntaxError in {os.path.basename(exc.filename or '')}:"
             f"{exc.lineno}: {exc.msg}")
        emit(event="done")
        return 0
    emit(event="plan", total=len(count_tests(tree)))
    roots = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    read_roots = sorted({os.path.realpath(p) for p in [*sys.path, *roots] if p and os.path.isabs(p)})
    sys.path.insert(0, box)
    sys.addaudithook(make_guard(box, read_roots, out.fileno(),
                                lambda kind, ev, detail: emit(event="violation", kind=kind, name=ev, detail=detail)))
    module = types.ModuleType("solution")
    module.__file__ = solution_file
    sys.modules["solution"] = module
    try:
        exec(solution_code, module.__dict__)
    except BaseException as exc:  # noqa: BLE001 - any failure of generated code is a result
        emit(event="error", stage="solution", message=describe_failure(exc))
        emit(event="done")
        return 0
    namespace = {k: v for k, v in module.__dict__.items() if not k.startswith("__")}
    namespace.update(__name__="tests", __file__=tests_file, __builtins__=__builtins__)
    run_tests(tests, tree, namespace, emit)
    emit(event="done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
