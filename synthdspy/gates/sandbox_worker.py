"""The solution process of the ``code_tests`` sandbox (run inside it, never imported by synthdspy).

Started by :mod:`synthdspy.gates.sandbox_boot` only, as ``main(["-c", REQUEST_FD, REPLY_FD, BOX])``
(see :func:`synthdspy.gates.sandbox_bwrap.harness_command`). The harness sends requests, one JSON
line each, on ``REQUEST_FD``: first ``load`` (the solution's source, run as module ``solution``),
then operations on the objects the solution made (``call``, ``getattr``, ``eq``, ``len``, ``iter``
...; see ``OPS``). Every request gets one reply on ``REPLY_FD``: ``{"ok": value}`` (plus ``back``,
the new contents of list/dict/set/bytearray arguments after a ``call``) or ``{"exc": exception}``.
Values are encoded by :mod:`synthdspy.gates.sandbox_wire`; objects that are not plain data stay
here and travel as references. This process holds no channel to the verdict: whatever it sends is data or a
reference, and the harness decides what passed.

Before the solution runs, an audit hook (PEP 578) refuses network use, process creation, ``ctypes``
and file access outside the box, the Python installation and ``sys.path``, and reports each refusal
as a ``violation`` message. The hook is defence in depth against accidents; the boundary is the
operating-system sandbox around this process (bubblewrap), which the hook does not replace.
"""

from __future__ import annotations

import builtins
import numbers
import operator
import os
import sys
import types

from sandbox_wire import MUTABLE, ProtocolError, decode, encode, receive, send, syntax_error, where

TYPE_CHECKING = False  # what typing.TYPE_CHECKING is at run time, without importing typing (slow to start)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, BinaryIO

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
DATA_BASES = (bool, int, float, complex, str, bytes, bytearray, tuple, list, dict, set, frozenset)
NUMBER_BASES = ((numbers.Integral, int), (numbers.Real, float), (numbers.Complex, complex))


class SandboxViolation(PermissionError):
    """Raised inside the sandbox for an operation the guard blocks (network, process, native, file)."""


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _paths(args: tuple[Any, ...]) -> list[Any]:
    return [a for a in args if isinstance(a, str | bytes | os.PathLike) and not isinstance(a, bool)]


def make_guard(box: str, read_roots: list[str],
               report: Callable[[str, str, str], None]) -> Callable[[str, tuple[Any, ...]], None]:
    """The audit hook: allow reads under ``box`` and ``read_roots``, writes under ``box`` only, and no
    network, process creation, signals to other processes or ctypes use beyond ``import ctypes``
    (which opens the running process, as numpy does at import). ``report(kind, event, detail)`` is
    called before the hook raises :class:`SandboxViolation`."""
    box = os.path.realpath(box)
    readable = [box, *read_roots]

    def allowed(path: Any, roots: list[str]) -> bool:
        return isinstance(path, int) or _under(os.path.realpath(os.fsdecode(path)), roots)

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


def as_data(obj: Any) -> Any:
    """``obj`` as the builtin value it stands for (a Counter as a dict, a namedtuple as a tuple, a
    numpy scalar as an int or float); TypeError for an object that stands for none."""
    for base in DATA_BASES:
        if isinstance(obj, base):
            return base(obj)
    for abc, base in NUMBER_BASES:
        if isinstance(obj, abc):
            return base(obj)
    raise TypeError(f"a {type(obj).__name__} is not a builtin value")


OPS: dict[str, Callable[..., Any]] = {
    "call": lambda f, *args, **kwargs: f(*args, **kwargs),
    "getattr": getattr, "setattr": setattr, "delattr": delattr, "isinstance": isinstance, "data": as_data,
    "len": len, "iter": iter, "next": next, "bool": bool, "str": str, "repr": repr, "hash": hash,
    "int": int, "float": float, "index": operator.index, "format": format, "round": round,
    "reversed": reversed, "contains": operator.contains,
    **{name: getattr(operator, name) for name in (
        "getitem", "setitem", "delitem", "eq", "ne", "lt", "le", "gt", "ge", "neg", "pos", "abs", "invert",
        "add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "pow", "and_", "or_", "xor",
        "lshift", "rshift")},
}


class Worker:
    """Runs the solution and answers the harness's requests about the objects it made."""

    def __init__(self, requests: BinaryIO, replies: BinaryIO, box: str) -> None:
        self.requests, self.replies, self.box = requests, replies, box
        self.sources: dict[str, str] = {}  # the solution's file -> its source, to quote failing lines
        self.objects: dict[int, Any] = {}
        self.refs: dict[int, int] = {}  # id(object) -> reference, so one object keeps one reference

    def ref(self, value: Any) -> int:
        """The reference of ``value``, kept alive here for the harness to name later."""
        if id(value) not in self.refs:
            self.refs[id(value)] = len(self.objects)
            self.objects[len(self.objects)] = value
        return self.refs[id(value)]

    def _other(self, value: Any) -> dict[str, Any]:
        if isinstance(value, type) and issubclass(value, BaseException):
            return {"e": [[c.__name__, None if c.__module__ == "builtins" else self.ref(c)]
                          for c in value.__mro__[:-1]]}
        return {"r": self.ref(value)}

    def _resolve(self, tag: str, body: Any) -> Any:
        if tag == "r" and type(body) is int and body in self.objects:
            return self.objects[body]
        if tag == "e" and type(body) is list and body and type(body[0]) is list and len(body[0]) == 2:
            name, ref = body[0]
            if ref is None and isinstance(getattr(builtins, str(name), None), type):
                return getattr(builtins, name)
            return self._resolve("r", ref)
        raise ProtocolError(f"unknown reference {tag}:{str(body)[:50]}")

    def encode(self, value: Any) -> Any:
        """Data as data, everything else (and data too deep to encode) as a reference."""
        try:
            return encode(value, self._other)
        except RecursionError:
            return self._other(value)

    def load(self, source: str) -> dict[str, Any]:
        """Run ``source`` as module ``solution`` under the guard; its public names."""
        path = os.path.join(self.box, "solution.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(source)
        self.sources[path] = source
        try:
            code = compile(source, path, "exec")
        except SyntaxError as exc:
            raise SyntaxError(syntax_error(exc)) from None
        roots = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
        read_roots = sorted({os.path.realpath(p) for p in [*sys.path, *roots] if p and os.path.isabs(p)})
        sys.path.insert(0, self.box)
        sys.addaudithook(make_guard(self.box, read_roots, self.report))
        module = types.ModuleType("solution")
        module.__file__ = path
        sys.modules["solution"] = module
        exec(code, module.__dict__)
        return {k: v for k, v in module.__dict__.items() if not k.startswith("__")}

    def report(self, kind: str, event: str, detail: str) -> None:
        """Tell the harness about an operation the guard refused."""
        send(self.replies, {"violation": {"kind": kind, "name": event, "detail": detail}})

    def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        """Carry out one request; the reply (never raises)."""
        try:
            args = [decode(a, self._resolve) for a in message.get("args", [])]
            kwargs = {str(k): decode(v, self._resolve) for k, v in dict(message.get("kwargs", {})).items()}
            if message.get("op") == "load":
                return {"ok": self.encode(self.load(str(args[0])))}
            result = OPS[str(message.get("op"))](*args, **kwargs)
            reply: dict[str, Any] = {"ok": self.encode(result)}
            if message.get("op") == "call":
                reply["back"] = [self.encode(a) if type(a) in MUTABLE else None for a in args]
            return reply
        except BaseException as exc:  # noqa: BLE001 - any failure of the solution is a reply
            return {"exc": self.exception(exc)}

    def exception(self, exc: BaseException) -> dict[str, Any]:
        """An exception as its class chain, arguments, message and the solution line that raised it."""
        try:
            message = str(exc)
        except BaseException:  # noqa: BLE001 - an exception whose str() fails is still reported
            message = "<unprintable>"
        return {"cls": self._other(type(exc)), "args": self.encode(exc.args), "message": message[:2000],
                "where": where(exc, self.sources)}

    def serve(self) -> None:
        """Answer requests until the harness closes the request channel."""
        while (message := receive(self.requests)) is not None:
            reply = self.handle(message)
            try:
                send(self.replies, reply)
            except ValueError as exc:  # an int too large for JSON, say
                send(self.replies, {"exc": self.exception(exc)})


def main(argv: list[str]) -> int:
    """Serve the harness on the channels named in ``argv`` (see module doc)."""
    with os.fdopen(int(argv[1]), "rb") as requests, os.fdopen(int(argv[2]), "wb") as replies:
        Worker(requests, replies, argv[3]).serve()
    return 0
