"""What the ``code_tests`` harness, the solution process and the gate share (standard library only).

The harness (:mod:`synthdspy.gates.sandbox_boot`) and the solution process
(:mod:`synthdspy.gates.sandbox_worker`) run inside the sandbox as scripts and import this module by
file; the gate imports it to count tests itself. Between the two processes, values travel as JSON
through :func:`encode` and :func:`decode`: a value whose type is exactly a builtin data type
(``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes``, ``bytearray``, ``list``,
``tuple``, ``dict``, ``set``, ``frozenset``, ``slice``) crosses as data and is rebuilt with that exact
type on the other side; anything else (an instance of a subclass included) is handed to the
caller's ``other`` function, which turns it into a reference. No other code runs while decoding.
"""

from __future__ import annotations

import json
import os

TYPE_CHECKING = False  # what typing.TYPE_CHECKING is at run time, without importing typing (slow to start)
if TYPE_CHECKING:
    import ast
    from collections.abc import Callable
    from typing import Any, BinaryIO

SCALARS = (type(None), bool, int, float, str)
SEQUENCES: dict[type, str] = {list: "l", tuple: "t", set: "s", frozenset: "f"}
BUILDERS: dict[str, Callable[[list[Any]], Any]] = {"l": list, "t": tuple, "s": set, "f": frozenset}
DATA_TYPES = frozenset({*SCALARS, complex, bytes, bytearray, list, tuple, dict, set, frozenset, slice})
MUTABLE = (list, dict, set, bytearray)
MESSAGE_LIMIT = 300


class ProtocolError(RuntimeError):
    """A message between the harness and the solution process is malformed."""


def encode(value: Any, other: Callable[[Any], dict[str, Any]]) -> Any:
    """The JSON-ready form of ``value``: exact builtin data as tagged JSON, the rest ``other(value)``."""
    kind = type(value)
    if kind in SCALARS:
        return value
    if kind in SEQUENCES:
        return {SEQUENCES[kind]: [encode(item, other) for item in value]}
    if kind is dict:
        return {"d": [[encode(k, other), encode(v, other)] for k, v in value.items()]}
    if kind is bytes:
        return {"b": value.hex()}
    if kind is bytearray:
        return {"y": value.hex()}
    if kind is complex:
        return {"c": [value.real, value.imag]}
    if kind is slice:
        return {"sl": [encode(value.start, other), encode(value.stop, other), encode(value.step, other)]}
    return other(value)


def _items(body: Any) -> list[Any]:
    if type(body) is not list:
        raise ProtocolError(f"expected a list, got {type(body).__name__}")
    return body


def decode(obj: Any, other: Callable[[str, Any], Any]) -> Any:
    """Rebuild a value :func:`encode` produced; tags it does not know go to ``other(tag, body)``."""
    if type(obj) in SCALARS:
        return obj
    if type(obj) is not dict or len(obj) != 1:
        raise ProtocolError(f"malformed value of type {type(obj).__name__}")
    ((tag, body),) = obj.items()
    if tag in BUILDERS:
        return BUILDERS[tag]([decode(item, other) for item in _items(body)])
    if tag == "d":
        pairs = [_items(pair) for pair in _items(body)]
        if any(len(pair) != 2 for pair in pairs):
            raise ProtocolError("malformed dict entry")
        return {decode(k, other): decode(v, other) for k, v in pairs}
    if tag in ("b", "y") and type(body) is str:
        return (bytes if tag == "b" else bytearray).fromhex(body)
    if tag == "c" and len(_items(body)) == 2 and all(type(x) in (int, float) for x in body):
        return complex(body[0], body[1])
    if tag == "sl" and len(_items(body)) == 3:
        return slice(*(decode(item, other) for item in body))
    return other(tag, body)


def send(stream: BinaryIO, message: dict[str, Any]) -> None:
    """Write ``message`` as one JSON line and flush."""
    stream.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
    stream.flush()


def receive(stream: BinaryIO) -> dict[str, Any] | None:
    """The next JSON-object line of ``stream``; ``None`` at end of stream."""
    line = stream.readline()
    if not line:
        return None
    try:
        message = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"unreadable message: {str(exc)[:100]}") from None
    if type(message) is not dict:
        raise ProtocolError("a message is not a JSON object")
    return message


def count_tests(tree: ast.Module) -> list[str]:
    """Names of the tests in ``tree``: each top-level ``assert`` (``line N``), each top-level
    ``test*`` function and each ``test*`` method of a top-level ``Test*`` class. (Nodes are told
    apart by class name, so that the solution process, which imports this module, need not import
    :mod:`ast`.)"""
    names: list[str] = []
    for node in tree.body:
        kind = type(node).__name__
        if kind == "Assert":
            names.append(f"line {node.lineno}")
        elif kind == "FunctionDef" and node.name.startswith("test"):  # type: ignore[attr-defined]
            names.append(node.name)  # type: ignore[attr-defined]
        elif kind == "ClassDef" and node.name.startswith("Test"):  # type: ignore[attr-defined]
            names += [f"{node.name}.{m.name}" for m in node.body  # type: ignore[attr-defined]
                      if type(m).__name__ == "FunctionDef" and m.name.startswith("test")]
    return names


def syntax_error(exc: SyntaxError) -> str:
    """``SyntaxError in FILE:LINE: message``."""
    return f"SyntaxError in {os.path.basename(exc.filename or '')}:{exc.lineno}: {exc.msg}"


def where(exc: BaseException, sources: dict[str, str]) -> str:
    """`` at FILE:LINE: source`` of the innermost frame of the traceback that runs one of ``sources``
    (file name -> source text), or ``""``."""
    found, tb = "", exc.__traceback__
    while tb is not None:
        name, number = tb.tb_frame.f_code.co_filename, tb.tb_lineno
        if name in sources:
            lines = sources[name].splitlines()
            line = lines[number - 1].strip() if 0 < number <= len(lines) else ""
            found = f" at {os.path.basename(name)}:{number}: {line}"
        tb = tb.tb_next
    return found


def describe(kind: str, message: str, location: str) -> str:
    """``ExcType: message at FILE:LINE: source`` (message cut to a few hundred characters)."""
    message = message[:MESSAGE_LIMIT]
    return f"{kind}{': ' + message if message else ''}{location}"
