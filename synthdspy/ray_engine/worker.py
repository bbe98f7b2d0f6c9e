"""The Ray Data callable class that runs generation units: the program and LMs are built once per
actor, and each batch of units runs concurrently on the actor's event loop, exactly as the local
engine runs them (:func:`synthdspy.generation.run_unit` in greenlets, LM calls on DSPy's async path).

A unit's outcome comes back as one row: its records (JSON), or its failure (class, reason, error
type and message, already scrubbed of secrets by the provider engine); plus, per batch, the
usage the actor's LMs billed, so the driver's meter and spending cap see the whole cluster.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from synthdspy import greenlet_bridge
from synthdspy.config import Experiment
from synthdspy.gates.base import Gate
from synthdspy.llm_failures import classify
from synthdspy.records import Record, Seed, SeedFieldError
from synthdspy.usage import RoleUsage

COLUMNS = ("key", "records", "kind", "reason", "error_type", "error", "usage")


def whole_run(gate: Gate) -> bool:
    """Whether ``gate`` judges a record against the whole run (it keeps state: dedup), so the
    driver, which sees every record, must run it instead of the workers."""
    return type(gate).restore is not Gate.restore


class UnitWorker:
    """Runs batches of units; built by Ray Data once per actor (``fn_constructor_kwargs``).

    Args:
        experiment: the experiment as JSON (``Experiment.model_dump(mode="json")``).
        program: the program as :meth:`SynthesisProgram.to_blob` gives it.
        concurrency: units (and requests) this actor keeps in flight.
        max_attempts: tries per unit after an unparseable answer.
        budget: the name of the run's :class:`~synthdspy.ray_engine.budget.BudgetActor` (None:
            no ``--max-usd``); a unit the cap no longer allows comes back as kind ``budget``, unrun.
    """

    def __init__(self, experiment: dict[str, Any], program: dict[str, Any], concurrency: int,
                 max_attempts: int, budget: str | None = None) -> None:
        from synthdspy.lm import build_lms
        from synthdspy.program import SynthesisProgram
        from synthdspy.ray_engine.budget import WorkerBudget
        from synthdspy.ray_engine.limiter import RemoteLimiter

        exp = Experiment.model_validate(experiment)
        self.program = SynthesisProgram.from_blob(program, "the driver's program")
        self.program.gates.gates = [g for g in self.program.gates.gates if not whole_run(g)]
        self.lms = build_lms(exp.lm)
        self.lms.concurrency = concurrency
        for role in ("generator", "judge", "reflection"):
            lm = getattr(self.lms, role)
            engines = [getattr(lm, "engine", None), getattr(lm, "_async_engine_spec", None)]
            for engine in (e for e in engines if hasattr(e, "limiter")):
                engine.limiter = RemoteLimiter(lm.model, engine.client_options.get("api_base"))
        self.max_attempts = max_attempts
        self.budget = WorkerBudget(budget, self.lms.meter)
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="synthdspy-units", daemon=True).start()

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        """Run the batch's units (columns ``key``, ``seed`` as JSON, ``rollout``); one row each."""
        units = list(zip(batch["key"], batch["seed"], batch["rollout"], strict=True))
        before = self.lms.meter.snapshot()
        rows = asyncio.run_coroutine_threadsafe(self._run(units), self.loop).result()
        spent = {role: _minus(usage, before.get(role)) for role, usage in self.lms.meter.snapshot().items()}
        rows[0]["usage"] = json.dumps({r: vars(u) for r, u in spent.items() if u.calls})
        return {c: [row.get(c, "") for row in rows] for c in COLUMNS}

    async def _run(self, units: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
        slots = asyncio.Semaphore(self.lms.concurrency)

        async def one(key: str, seed_json: str, rollout: int) -> dict[str, Any]:
            async with slots:
                if not await self.budget.open():
                    return {"key": key, "kind": "budget"}
                row = await self._unit(str(key), Seed.model_validate_json(seed_json), int(rollout))
                self.budget.report()
                return row

        return list(await asyncio.gather(*(one(*u) for u in units)))

    async def _unit(self, key: str, seed: Seed, rollout: int) -> dict[str, Any]:
        from synthdspy.generation import aborted, run_unit

        try:
            records: list[Record] = await greenlet_bridge.spawn(run_unit, self.program, seed, rollout, self.lms,
                                                               self.max_attempts)
        except SeedFieldError as exc:
            return {"key": key, "kind": "record", "reason": "seed_field", "error_type": type(exc).__name__,
                    "error": str(exc)}
        except Exception as exc:  # classified here, where the exception object lives
            failure = classify(exc)
            # run-fatal: the local engine's one-line message (role, endpoint, key variable, provider's words)
            message = str(aborted(exc, failure, self.lms)) if failure.kind == "run" else str(exc)
            return {"key": key, "kind": failure.kind, "reason": failure.reason, "error_type": type(exc).__name__,
                    "error": " ".join(message.split())[:2000]}
        return {"key": key, "records": json.dumps([r.model_dump(mode="json") for r in records])}


def _minus(after: RoleUsage, before: RoleUsage | None) -> RoleUsage:
    if before is None:
        return after
    return RoleUsage(after.calls - before.calls, after.prompt_tokens - before.prompt_tokens,
                     after.completion_tokens - before.completion_tokens, after.cost_usd - before.cost_usd,
                     after.unpriced_calls - before.unpriced_calls)
