"""The ``[output]`` and ``[tracking]`` tables every configuration file shares (experiment, train, tune).

Both mean the same in each kind of file: ``[output] dir`` is where the command writes (default
``runs/<name>``, the file's ``name``; ``--output/-o`` overrides it), and ``[tracking]`` is MLflow's
``enabled``, ``uri`` (default ``sqlite:///<output dir>/mlflow.db``), ``experiment`` and ``autolog``.
The keys used before them (``output_dir`` at the top of a train or tune file, or of its ``[train]``
table) are still read for one release, with a warning naming the file, the line and the new key.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from synthdspy.configio import ConfigError

_HEADER = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+")


class ConfigDeprecationWarning(FutureWarning):
    """A configuration key that still works but is replaced; shown to users by default."""


class OutputConfig(BaseModel):
    """``[output]``: ``dir``, where the command writes (``None``: ``runs/<name>``)."""

    model_config = ConfigDict(extra="forbid")
    dir: Path | None = None


class TrackingConfig(BaseModel):
    """``[tracking]``: MLflow.

    ``enabled``: log runs at all; ``uri``: the tracking URI (default: SQLite in the output
    directory); ``experiment``: the MLflow experiment; ``autolog``: trace the LM calls with
    ``mlflow.dspy.autolog`` (train and tune make no LM calls, so there it changes nothing).
    Generate traces only ``trace_units`` units (the first to start) plus, with ``trace_failures``,
    the failed ones, each span's inputs/outputs cut to ``trace_max_chars`` characters
    (:mod:`synthdspy.trace_sampling`); its records table holds at most ``table_rows`` records
    (:mod:`synthdspy.mlflow_records`).
    """

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    uri: str | None = None
    experiment: str = "synthdspy"
    autolog: bool = True
    trace_units: int = Field(20, ge=0)
    trace_failures: bool = True
    trace_max_chars: int = Field(2000, ge=100)
    table_rows: int = Field(10_000, ge=0)


def default_output(output: OutputConfig, name: str) -> OutputConfig:
    """``output`` with ``dir`` resolved: as written, else ``runs/<name>``."""
    return output if output.dir is not None else output.model_copy(update={"dir": Path("runs") / name})


def key_line(path: str | Path, table: str, key: str) -> int:
    """The line (from 1) where ``key`` is set inside ``[table]`` (``""``: the top level) of TOML file
    ``path``; 0 when it is not found there (set by ``--set``, or the file cannot be read)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return 0
    current = ""
    assignment = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for number, line in enumerate(lines, 1):
        header = _HEADER.match(line)
        if header:
            current = header.group(1)
        elif current == table and assignment.match(line):
            return number
    return 0


def migrate_output_dir(data: Any, source: str, table: str = "") -> Any:
    """Move a legacy ``output_dir`` key of ``data`` (the ``[table]`` of file ``source``; ``""``: the
    top level) into ``output.dir``, warning once with the file, the line and the new key. Anything
    but a dict is returned as it is (pydantic reports it).

    Returns:
        ``data`` itself, changed in place.

    Raises:
        ConfigError: both ``output_dir`` and ``[output] dir`` are set.
    """
    if not isinstance(data, dict) or "output_dir" not in data:
        return data
    legacy = data.pop("output_dir")
    key, new = (f"{table}.output_dir", f"[{table}.output] dir") if table else ("output_dir", "[output] dir")
    output = data.setdefault("output", {})
    if isinstance(output, dict) and output.get("dir") is not None:
        raise ConfigError(f"{source}: {key}: set only {new} (output_dir is its deprecated name)")
    if isinstance(output, dict):
        output["dir"] = legacy
    warnings.warn_explicit(f"{key} is deprecated; use {new} (accepted until the next release)",
                           ConfigDeprecationWarning, source, key_line(source, table, "output_dir"))
    return data
