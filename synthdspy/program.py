"""``SynthesisProgram``: seeds -> task -> gates -> records, built from an experiment config.

The program's named predictors are the task's and the judged gates'. ``synthdspy compile`` tunes
the task's predictors only: the gates are the metric's instruments and stay frozen, otherwise an
optimizer could raise its score by making its own judge lenient.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import dspy

from synthdspy import __version__, greenlet_bridge
from synthdspy.catalog import GATES, TASKS
from synthdspy.config import Experiment, GateConfig, TaskConfig, check_components
from synthdspy.configio import ConfigError
from synthdspy.gates.base import Gate
from synthdspy.records import Record, Seed, SeedFieldError, content_hash
from synthdspy.tasks.base import Task

PROGRAM_FORMAT = "synthdspy.program/1"
log = logging.getLogger(__name__)


def build_task(cfg: TaskConfig) -> Task:
    """Instantiate the registered task named in ``cfg`` with its validated parameters."""
    entry = TASKS[cfg.name]
    return entry.cls(**entry.params.model_validate(cfg.params).model_dump())


def build_gate(cfg: GateConfig) -> Gate:
    """Instantiate the registered gate named in ``cfg`` with its validated parameters."""
    entry = GATES[cfg.name]
    return entry.cls(**entry.params.model_validate(cfg.params).model_dump())


class GateChain(dspy.Module):
    """The ordered gates; ``forward(record)`` appends every gate's verdict to ``record.verdicts``.
    A ``blocking`` gate runs on a worker thread when called inside a generation unit's greenlet
    (:func:`synthdspy.greenlet_bridge.call_blocking`), so it does not stall the event loop."""

    def __init__(self, gates: list[Gate]) -> None:
        super().__init__()
        self.gates = gates

    def forward(self, record: Record) -> Record:
        for gate in self.gates:
            verdict = greenlet_bridge.call_blocking(gate, record) if gate.blocking else gate(record)
            record.verdicts.append(verdict)
        return record

    def restore(self, records: Iterable[Record]) -> None:
        """Hand ``records`` stored by an earlier run to the stateful gates (those overriding
        :meth:`Gate.restore`); with none, ``records`` is not read at all."""
        stateful = [g for g in self.gates if type(g).restore is not Gate.restore]
        if not stateful:
            return
        records = list(records) if len(stateful) > 1 else records
        for gate in stateful:
            gate.restore(records)


class SynthesisProgram(dspy.Module):
    """One generation task followed by an ordered chain of gates.

    ``forward(seed, rollout=0)`` returns the task's records, each with one verdict per gate
    (rejected records are returned too: callers keep them with their reasons). ``origin`` is empty,
    or, for a program file whose task is not its experiment's, what a seed error is prefixed with
    (see :meth:`for_experiment`).
    """

    origin: str = ""

    def __init__(self, task_cfg: TaskConfig, gate_cfgs: list[GateConfig]) -> None:
        super().__init__()
        self.task_cfg = task_cfg
        self.gate_cfgs = list(gate_cfgs)
        self.task = build_task(task_cfg)
        self.gates = GateChain([build_gate(g) for g in gate_cfgs])
        self.refresh_hash()

    @classmethod
    def from_experiment(cls, exp: Experiment) -> SynthesisProgram:
        """The program an experiment describes, with its starting (uncompiled) prompts."""
        return cls(exp.task, exp.gates)

    def refresh_hash(self) -> str:
        """Recompute the program hash from configs and predictor state (call after loading demos)."""
        state = {name: p.dump_state() for name, p in self.named_predictors()}
        self.program_hash = content_hash(
            self.task_cfg.model_dump(), [g.model_dump() for g in self.gate_cfgs], state, length=12
        )
        self.task.program_hash = self.program_hash
        return self.program_hash

    @classmethod
    def for_experiment(cls, exp: Experiment, program_path: str | Path | None = None) -> SynthesisProgram:
        """The program ``generate`` runs: the experiment's own, or the program file at ``program_path``.

        A program file whose task or gates differ from the experiment's ``[task]``/``[[gates]]`` is
        used as it is (its task and gates win), with one warning naming both. When its task is
        another one, a seed lacking a field that task needs raises an error that starts by naming
        the program file and its task: the experiment's ``[seeds] fields`` were mapped for its own
        task, so the seed file is not what is wrong.

        Raises:
            ConfigError: see :meth:`load_program`.
        """
        if program_path is None:
            return cls.from_experiment(exp)
        program = cls.load_program(program_path)
        ours, theirs = _describe(program.task_cfg, program.gate_cfgs), _describe(exp.task, exp.gates)
        if ours != theirs:
            log.warning("%s: the program file's task %s and gates %s differ from experiment %r ([task] %s, "
                        "[[gates]] %s); generating with the program file's task and gates", program_path, ours[0],
                        ours[1], exp.name, theirs[0], theirs[1])
        if program.task_cfg.name != exp.task.name:
            program.origin = (f"{program_path}: a {program.task_cfg.name!r} program, but experiment {exp.name!r} "
                              f"is for task {exp.task.name!r} (its [seeds] fields are mapped for that task)")
        return program

    def generate(self, seed: Seed, rollout: int = 0) -> list[Record]:
        """The task's records for ``seed`` without gates.

        Raises:
            SeedFieldError: the seed lacks a field the task needs (prefixed with ``origin`` when set).
        """
        try:
            return self.task(seed, rollout=rollout)
        except SeedFieldError as exc:
            if not self.origin:
                raise
            raise SeedFieldError(f"{self.origin}; {exc}") from None

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:
        return [self.gates(r) for r in self.generate(seed, rollout)]

    def save_program(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write configs and predictor state (instructions, demos) as JSON; no LM settings, no keys."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = {**self.to_blob(), **(extra or {})}
        path.write_text(json.dumps(blob, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
        return path

    def to_blob(self) -> dict[str, Any]:
        """The program as the JSON-ready object :meth:`save_program` writes and :meth:`from_blob` reads."""
        return {
            "format": PROGRAM_FORMAT,
            "synthdspy_version": __version__,
            "program_hash": self.program_hash,
            "task": self.task_cfg.model_dump(mode="json"),
            "gates": [g.model_dump(mode="json") for g in self.gate_cfgs],
            "state": {name: _clean_state(p.dump_state()) for name, p in self.named_predictors()},
        }

    @classmethod
    def load_program(cls, path: str | Path) -> SynthesisProgram:
        """Rebuild a program saved by :meth:`save_program`.

        Raises:
            ConfigError: the file is unreadable or not a synthdspy program, names an unknown task
                or gate or invalid parameters, or its predictors do not match (the message names
                the file and what is wrong).
        """
        path = Path(path)
        try:
            blob = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: not a readable program file: {exc}") from None
        return cls.from_blob(blob, str(path))

    @classmethod
    def from_blob(cls, blob: Any, path: str) -> SynthesisProgram:
        """Rebuild a program from the JSON object :meth:`save_program` writes (read from ``path``,
        named in errors).

        Raises:
            ConfigError: as :meth:`load_program`.
        """
        if not isinstance(blob, dict) or blob.get("format") != PROGRAM_FORMAT:
            found = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
            raise ConfigError(f"{path}: format {found!r}, expected a {PROGRAM_FORMAT!r} object")
        try:
            task = TaskConfig(**blob["task"])
            gates = [GateConfig(**g) for g in blob["gates"]]
            states = dict(blob["state"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: malformed program ({type(exc).__name__}: {exc}); expected the "
                              "keys task, gates and state written by save_program") from None
        check_components(task, gates, str(path))
        program = cls(task, gates)
        predictors = dict(program.named_predictors())
        if set(predictors) != set(states):
            raise ConfigError(f"{path}: predictors {sorted(states)} do not match {sorted(predictors)}")
        for name, state in states.items():
            predictors[name].load_state(state)
        program.refresh_hash()
        return program


def _describe(task: TaskConfig, gates: list[GateConfig]) -> tuple[str, str]:
    """(``'name' (param=value, ...)``, ``name(param=value), ...``) of a task and its gates, for messages."""
    def one(cfg: TaskConfig | GateConfig) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in sorted(cfg.params.items()))

    params = one(task)
    shown = [f"{g.name}({one(g)})" if g.params else g.name for g in gates]
    return f"{task.name!r}" + (f" ({params})" if params else ""), ", ".join(shown) or "(none)"


def _clean_state(state: dict[str, Any]) -> dict[str, Any]:
    """Predictor state with its LM settings blanked (they could carry endpoints or keys)."""
    return {**state, "lm": None}
