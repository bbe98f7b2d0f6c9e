"""Loading TOML configuration files into pydantic models, with ``--set`` overrides and clear errors.

Shared by both halves of synthdspy (the experiment schema in :mod:`synthdspy.config` and the
training schema in :mod:`synthdspy.training.config`), so that every configuration error reads
the same way: the file, the dotted key, and what was expected.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """A user error in a configuration file or override; the message names file, key and expectation."""


_INDEXED = re.compile(r"(.+)\[(\d+)\]")


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """Parse one ``key.path=value`` override.

    The value is read as a TOML value when it parses as one (``3``, ``0.5``, ``true``,
    ``"text"``, ``[1, 2]``), otherwise it is kept as a bare string, so ``--set
    lm.generator.model=openai/gpt-4o-mini`` needs no quoting. A part written ``name[i]``
    addresses item ``i`` of an array (``gates[0].threshold=8``).

    Returns:
        (path, value): the dotted key split into its parts (array indices as ints), and the
        parsed value.

    Raises:
        ConfigError: when ``text`` has no ``=`` or an empty key.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {text!r}: expected KEY.PATH=VALUE, for example compile.optimizer=mipro")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    path: list[str | int] = []
    for part in key.split("."):
        indexed = _INDEXED.fullmatch(part)
        path += [indexed.group(1), int(indexed.group(2))] if indexed else [part]
    return path, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``key.path=value`` override set (intermediate tables created).

    Raises:
        ConfigError: when an override is malformed or walks through a key that is not a table.
    """
    out = json.loads(json.dumps(data))
    for text in overrides:
        path, value = parse_override(text)
        node: Any = out
        for i, part in enumerate(path):
            last = i == len(path) - 1
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    size = f"has {len(node)} items" if isinstance(node, list) else "is not an array"
                    raise ConfigError(f"override {text!r}: {_where(path[:i])} {size}; no item [{part}]")
                if last:
                    node[part] = value
                else:
                    node = node[part]
                continue
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {_where(path[:i])} is a value, not a table")
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, [] if isinstance(path[i + 1], int) else {})
    return out


def _where(path: list[str | int]) -> str:
    """A parsed key path written back (``gates[0].threshold``)."""
    return "".join(f"[{p}]" if isinstance(p, int) else ("." if i else "") + p for i, p in enumerate(path))


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file into a dict.

    Raises:
        ConfigError: when the file is missing or is not valid TOML (the parser's line and column).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such configuration file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def format_validation_error(source: str, exc: ValidationError, prefix: str = "") -> str:
    """Render a pydantic error as ``source: key.path: what was expected (got value)`` lines;
    ``prefix`` is prepended to every key path (for models validated below the top level)."""
    lines = []
    for err in exc.errors():
        key = ".".join([prefix, *(str(p) for p in err["loc"])] if prefix else [str(p) for p in err["loc"]])
        key = key or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        got = err.get("input")
        shown = "" if isinstance(got, dict) or err["type"] == "missing" else f" (got {got!r})"
        lines.append(f"{source}: {key}: {msg}{shown}")
    return "\n".join(lines)


def validate(model: type[M], data: dict[str, Any], source: str) -> M:
    """Validate ``data`` against ``model``.

    Raises:
        ConfigError: listing every invalid key with what was expected.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None


def load_model(model: type[M], path: str | Path, overrides: list[str] | None = None,
               migrate: Callable[[dict[str, Any], str], dict[str, Any]] | None = None) -> M:
    """Read ``path`` (TOML), apply ``overrides``, then ``migrate(data, str(path))`` (which renames
    deprecated keys), and validate the result against ``model``.

    Raises:
        ConfigError: missing file, invalid TOML, malformed override or invalid key.
    """
    data = apply_overrides(read_toml(path), overrides or [])
    if migrate is not None:
        data = migrate(data, str(path))
    return validate(model, data, str(path))
