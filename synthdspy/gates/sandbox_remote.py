"""The harness's side of the channel to the solution process (standard library only; run inside the
sandbox by :mod:`synthdspy.gates.sandbox_boot`, never imported by synthdspy).

The tests run in the harness; the solution's functions, classes and objects stay in the solution
process and appear here as :class:`Remote` references. Calling one, reading an attribute, iterating
and the other operations become requests; what comes back is either builtin data of an exact
builtin type or another reference. Comparing a reference with a builtin value asks the solution
process for the builtin value the object stands for (a Counter's dict, a numpy scalar's float) and
compares the two builtin values here, so the solution's ``__eq__`` is never what decides: an object
whose ``__eq__`` always says yes equals nothing. Two references are compared by the solution,
which defined both.
"""

from __future__ import annotations

import builtins
import operator
import signal
import subprocess

from sandbox_wire import DATA_TYPES, MUTABLE, ProtocolError, decode, encode, receive, send

TYPE_CHECKING = False  # what typing.TYPE_CHECKING is at run time, without importing typing (slow to start)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, BinaryIO, ClassVar, NoReturn


class SolutionGone(RuntimeError):
    """The solution process has exited or broke the channel; no further request can be answered."""


class NotPassable(TypeError):
    """A test passed the solution something that cannot cross to its process (a local function)."""


class Channel:
    """Requests to the solution process and their replies, with ``violation`` messages forwarded."""

    def __init__(self, process: subprocess.Popen, requests: BinaryIO, replies: BinaryIO,
                 emit: Callable[..., None]) -> None:
        self.process, self.requests, self.replies, self.emit = process, requests, replies, emit
        self.remotes: dict[int, Remote] = {}
        self.mirrors: dict[int, type] = {}
        self.gone = ""

    def request(self, op: str, *args: Any, **kwargs: Any) -> Any:
        """Ask the solution process to carry out ``op`` on ``args``; its result, or its exception raised
        here (as the builtin exception class, or a local stand-in class for one the solution defined)."""
        if self.gone:
            raise SolutionGone(self.gone)
        message = {"op": op, "args": [encode(a, self._local) for a in args],
                   "kwargs": {k: encode(v, self._local) for k, v in kwargs.items()}}
        try:
            send(self.requests, message)
        except OSError:
            self._lost()
        reply = self._reply()
        if "exc" in reply:
            raise self._exception(reply["exc"])
        for arg, new in zip(args, reply.get("back") or [], strict=False):
            self._copy_back(arg, new)
        return self._decode(reply.get("ok"))

    def _reply(self) -> dict[str, Any]:
        while True:
            message = receive(self.replies)
            if message is None:
                self._lost()
            elif "violation" in message:
                found = message["violation"] if type(message["violation"]) is dict else {}
                self.emit(event="violation", **{k: str(found.get(k, ""))[:200] for k in ("kind", "name", "detail")})
            elif "ok" in message or "exc" in message:
                return message
            else:
                raise ProtocolError("a reply holds neither a value nor an exception")

    def _lost(self) -> NoReturn:
        try:
            code = self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        if code < 0:
            self.gone = f"the solution process was killed by {signal.Signals(-code).name}"
            self.emit(event="killed", signal=signal.Signals(-code).name)
        else:
            self.gone = f"the solution process exited with code {code}"
            self.emit(event="error", stage="solution", message=self.gone)
        raise SolutionGone(self.gone)

    def close(self) -> None:
        """End the solution process: the tests are over, nothing it does from now on counts."""
        self.requests.close()
        self.process.kill()
        self.process.wait()

    def _local(self, value: Any) -> dict[str, Any]:
        if isinstance(value, Remote):
            return {"r": object.__getattribute__(value, "_sandbox_ref")}
        if isinstance(value, type) and issubclass(value, BaseException):
            if "_sandbox_chain" in value.__dict__:
                return {"e": value.__dict__["_sandbox_chain"]}
            if value.__module__ == "builtins":
                return {"e": [[value.__name__, None]]}
        raise NotPassable(f"the solution runs in its own process: a {type(value).__name__} cannot be passed "
                          "to it (only builtin values and objects it returned)")

    def _decode(self, value: Any) -> Any:
        return decode(value, self._resolve)

    def _resolve(self, tag: str, body: Any) -> Any:
        if tag == "r" and type(body) is int:
            return self.remotes.setdefault(body, Remote(body))
        if tag == "e" and type(body) is list and body:
            return self._mirror(body)
        raise ProtocolError(f"unknown value tag {tag!r}")

    def _mirror(self, chain: list[Any]) -> type:
        """The exception class ``chain`` (its MRO as [name, reference or None for a builtin]) names: the
        builtin class itself, or a local subclass standing in for a class the solution defined."""
        base: type = BaseException
        for i in range(len(chain) - 1, -1, -1):
            entry = chain[i]
            if type(entry) is not list or len(entry) != 2 or type(entry[0]) is not str:
                raise ProtocolError("malformed exception class")
            name, ref = entry
            if ref is None:
                found = getattr(builtins, name, None)
                if not (isinstance(found, type) and issubclass(found, BaseException)):
                    raise ProtocolError(f"{name} is not a builtin exception")
                base = found
            elif type(ref) is int:
                if ref not in self.mirrors:
                    self.mirrors[ref] = type(name, (base,), {"__module__": "solution", "_sandbox_chain": chain[i:]})
                base = self.mirrors[ref]
            else:
                raise ProtocolError("malformed exception class")
        return base

    def _exception(self, info: Any) -> BaseException:
        if type(info) is not dict:
            raise ProtocolError("malformed exception")
        cls = self._decode(info.get("cls"))
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise ProtocolError("malformed exception")
        message, args = str(info.get("message", "")), self._decode(info.get("args", {"t": []}))
        try:
            exc = cls(*args) if type(args) is tuple else cls(message)
        except Exception:  # noqa: BLE001 - a class whose constructor wants other arguments
            exc = RuntimeError(f"{cls.__name__}: {message}")
        exc._sandbox_where = str(info.get("where", ""))  # type: ignore[attr-defined]
        return exc

    def _copy_back(self, arg: Any, new: Any) -> None:
        """Give a list/dict/set/bytearray argument the contents the call left it with over there."""
        if type(arg) not in MUTABLE or new is None:
            return
        value = self._decode(new)
        if type(value) is not type(arg):
            raise ProtocolError("an argument changed type")
        if isinstance(arg, list | bytearray):
            arg[:] = value
        else:
            arg.clear()
            arg.update(value)


def _forward(op: str) -> Callable[..., Any]:
    def method(self: Remote, *args: Any) -> Any:
        return self.channel.request(op, self, *args)
    return method


def _compare(op: str) -> Callable[[Remote, Any], Any]:
    def method(self: Remote, other: Any) -> Any:
        if isinstance(other, Remote):
            return self.channel.request(op, self, other)
        if type(other) not in DATA_TYPES:
            return NotImplemented
        try:
            value = self.channel.request("data", self)
        except (TypeError, ValueError):
            return NotImplemented
        if type(value) not in DATA_TYPES:
            return NotImplemented
        return getattr(operator, op)(value, other)
    return method


def _binary(op: str, reflected: bool = False) -> Callable[[Remote, Any], Any]:
    def method(self: Remote, other: Any) -> Any:
        try:
            return self.channel.request(op, *((other, self) if reflected else (self, other)))
        except NotPassable:
            return NotImplemented
    return method


class Remote:
    """An object of the solution's that stays in the solution process (see the module doc)."""

    __slots__ = ("_sandbox_ref",)
    channel: ClassVar[Channel]

    def __init__(self, ref: int) -> None:
        object.__setattr__(self, "_sandbox_ref", ref)

    def __getattr__(self, name: str) -> Any:
        return self.channel.request("getattr", self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        self.channel.request("setattr", self, name, value)

    def __delattr__(self, name: str) -> None:
        self.channel.request("delattr", self, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.channel.request("call", self, *args, **kwargs)

    def __instancecheck__(self, instance: Any) -> bool:
        try:
            return self.channel.request("isinstance", instance, self) is True
        except NotPassable:
            return False

    __eq__, __ne__, __lt__, __le__, __gt__, __ge__ = (_compare(op) for op in ("eq", "ne", "lt", "le", "gt", "ge"))
    __hash__ = _forward("hash")
    __len__, __iter__, __next__, __reversed__, __bool__ = (
        _forward(op) for op in ("len", "iter", "next", "reversed", "bool"))
    __str__, __repr__, __format__, __int__, __float__, __index__, __round__ = (
        _forward(op) for op in ("str", "repr", "format", "int", "float", "index", "round"))
    __getitem__, __setitem__, __delitem__, __contains__ = (
        _forward(op) for op in ("getitem", "setitem", "delitem", "contains"))
    __neg__, __pos__, __abs__, __invert__ = (_forward(op) for op in ("neg", "pos", "abs", "invert"))
    __add__, __sub__, __mul__, __matmul__, __truediv__, __floordiv__, __mod__, __pow__ = (
        _binary(op) for op in ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "pow"))
    __and__, __or__, __xor__, __lshift__, __rshift__ = (
        _binary(op) for op in ("and_", "or_", "xor", "lshift", "rshift"))
    __radd__, __rsub__, __rmul__, __rmatmul__, __rtruediv__, __rfloordiv__, __rmod__, __rpow__ = (
        _binary(op, reflected=True) for op in ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "pow"))
