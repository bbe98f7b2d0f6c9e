"""Name -> class registries for generation tasks and quality gates.

A task or gate registers itself with its pydantic parameter model, so an experiment's ``[task]``
and ``[[gates]]`` tables are validated against that model and ``synthdspy tasks`` can list the
parameters with their defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

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


def _register(table: dict[str, Entry], kind: str, name: str, params: type[Params]) -> Callable[[T], T]:
    def deco(cls: T) -> T:
        if name in table:
            raise ValueError(f"{kind} {name!r} is registered twice")
        doc = (getattr(cls, "__doc__", "") or "").strip().splitlines()
        table[name] = Entry(name, cls, params, doc[0] if doc else "", _source)  # type: ignore[arg-type]
        return cls

    return deco


def register_task(name: str, params: type[Params]) -> Callable[[T], T]:
    """Class decorator: register a generation task (a ``dspy.Module``) under ``name``."""
    return _register(TASKS, "task", name, params)


def register_gate(name: str, params: type[Params]) -> Callable[[T], T]:
    """Class decorator: register a quality gate (a ``dspy.Module`` returning a Verdict) under ``name``."""
    return _register(GATES, "gate", name, params)


def describe(entry: Entry) -> list[tuple[str, str, Any]]:
    """(parameter, type, default) rows for ``entry``'s parameter model."""
    rows = []
    for fname, field in entry.params.model_fields.items():
        ann = getattr(field.annotation, "__name__", None) or str(field.annotation).replace("typing.", "")
        default = field.get_default(call_default_factory=True) if not field.is_required() else "(required)"
        rows.append((fname, ann, default))
    return rows
