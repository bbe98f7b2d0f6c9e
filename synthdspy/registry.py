"""Name -> class registries for generation tasks and quality gates.

A task or gate registers itself with its pydantic parameter model, so an experiment's ``[task]``
and ``[[gates]]`` tables are validated against that model and ``synthdspy tasks`` can list the
parameters with their defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import UnionType
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class Params(BaseModel):
    """Base of every task's and gate's parameter model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Entry:
    """A registered task or gate: its name, class, parameter model, one-line summary and ``source``,
    the distribution (package) that provided it when a plugin did, else ``""`` (built into synthdspy)."""

    name: str
    cls: type
    params: type[Params]
    summary: str
    source: str = ""


TASKS: dict[str, Entry] = {}
GATES: dict[str, Entry] = {}
_source = ""  # the package whose plugin is being loaded (see registering_from)


@contextmanager
def registering_from(source: str) -> Iterator[None]:
    """Within this block, tasks and gates register with ``Entry.source = source`` (a plugin's package)."""
    global _source
    previous, _source = _source, source
    try:
        yield
    finally:
        _source = previous


def first_paragraph(doc: str | None) -> str:
    """The first paragraph of a docstring (up to its first blank line) as one line of text."""
    paragraph = (doc or "").strip().split("\n\n", 1)[0]
    return " ".join(paragraph.split())


def _register(table: dict[str, Entry], kind: str, name: str, params: type[Params]) -> Callable[[T], T]:
    def deco(cls: T) -> T:
        if name in table:
            raise ValueError(f"{kind} {name!r} is registered twice")
        table[name] = Entry(name, cls, params, first_paragraph(getattr(cls, "__doc__", "")), _source)  # type: ignore[arg-type]
        return cls

    return deco


def register_task(name: str, params: type[Params]) -> Callable[[T], T]:
    """Class decorator: register a generation task (a ``dspy.Module``) under ``name``."""
    return _register(TASKS, "task", name, params)


def register_gate(name: str, params: type[Params]) -> Callable[[T], T]:
    """Class decorator: register a quality gate (a ``dspy.Module`` returning a Verdict) under ``name``."""
    return _register(GATES, "gate", name, params)


def type_label(annotation: Any) -> str:
    """A parameter type as ``synthdspy tasks`` shows it, with the choices of a ``Literal`` spelled out:
    ``Literal["a", "b"]`` -> ``'a' | 'b'``, ``list[Literal["a", "b"]]`` -> ``list['a' | 'b']``,
    ``int | None`` -> ``int | None``, ``dict[str, float]`` -> ``dict[str, float]``."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (Union, UnionType):
        return " | ".join(type_label(a) for a in args)
    if origin is not None and args:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(type_label(a) for a in args)}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def describe(entry: Entry) -> list[tuple[str, str, Any]]:
    """(parameter, type label (see :func:`type_label`), default) rows for ``entry``'s parameter model."""
    rows = []
    for fname, field in entry.params.model_fields.items():
        default = field.get_default(call_default_factory=True) if not field.is_required() else "(required)"
        rows.append((fname, type_label(field.annotation), default))
    return rows
