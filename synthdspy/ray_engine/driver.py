"""``generate --engine ray``: units run on a Ray cluster, records land in the local store.

The driver keeps everything a run's correctness rests on, so a Ray run has the local engine's
record ids, unit journal, failure records, spending cap, circuit breaker and resume:

1. Units (seed, rollout) not yet in the journal are taken in generation order, in rounds sized by
   what ``n`` still needs (a first round of one unit per slot measures the records per unit).
2. Each round is a Ray Dataset of units, mapped in an actor pool (``map_batches`` with
   :class:`~synthdspy.ray_engine.worker.UnitWorker`, which builds the program and LMs once per
   actor and runs its batch concurrently); every endpoint's requests are admitted by one
   cluster-wide limiter actor (:mod:`synthdspy.ray_engine.limiter`).
3. Result blocks stream back; the driver writes each unit's records to the store, journals the
   unit, and runs the gates that judge against the whole run (dedup) itself, on every record in
   arrival order, so they see all workers' records.

A killed actor is restarted by Ray and its batch re-run: its units were not journaled, their
record ids are stable, and the store drops a record it already holds, so nothing is lost or doubled.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from synthdspy.config import Experiment
from synthdspy.configio import ConfigError
from synthdspy.generation import GenerateStats, units
from synthdspy.llm_failures import Failure, RunAbortedError, portable
from synthdspy.lm import LMs, effective_api_base
from synthdspy.ray_engine.worker import UnitWorker, whole_run
from synthdspy.records import Record, Seed
from synthdspy.run_dir import UnitJournal
from synthdspy.run_guard import CircuitBreaker
from synthdspy.store import RecordStore
from synthdspy.usage import RoleUsage


def ray_runner(exp: Experiment) -> Callable[..., GenerateStats]:
    """:func:`ray_generate` bound to ``exp``, with :func:`synthdspy.generation.generate`'s signature."""

    def run(program: Any, seeds: list[Seed], lms: LMs, store: RecordStore, n: int, **options: Any) -> GenerateStats:
        return ray_generate(program, seeds, lms, store, n, exp=exp, **options)

    return run


def connect(address: str) -> bool:
    """Join the cluster at ``address`` (``auto``, ``ray://host:10001``), or start a local Ray with
    this machine's cores when empty; True when this call started Ray (the caller shuts it down)."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")  # Ray's C++ notices on stderr
    quiet = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        if address:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        else:
            ray.init(num_cpus=os.cpu_count() or 2, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"generate.ray_address {address!r}: cannot connect to Ray: {exc}") from None
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False
    for name in ("ray", "ray.data"):  # Ray Data logs INFO lines per dataset run to the console otherwise
        logging.getLogger(name).setLevel(logging.WARNING)
    return True


def start_limiters(exp: Experiment) -> list[Any]:
    """One limiter actor per HTTP endpoint of the roles (the simulator has none)."""
    from synthdspy.ray_engine.limiter import start_limiter

    endpoints: dict[tuple[str, str | None], list] = {}
    for name in ("generator", "judge", "reflection"):
        role = getattr(exp.lm, name)
        if not role.is_simulated:
            endpoints.setdefault((role.model, effective_api_base(role)), []).append(role)
    actors = []
    for (model, base), roles in endpoints.items():
        rpms = [r.rpm for r in roles if r.rpm]
        tpms = [r.tpm for r in roles if r.tpm]
        actors.append(start_limiter(model, base, max(r.concurrency for r in roles),
                                    min(rpms) if rpms else None, min(tpms) if tpms else None))
    return actors


def ray_generate(program: Any, seeds: list[Seed], lms: LMs, store: RecordStore, n: int, *, exp: Experiment,
                 max_rollouts: int = 10, max_attempts: int = 2, show_progress: bool = True,
                 max_usd: float | None = None, unit_limit: int | None = None,
                 breaker: CircuitBreaker | None = None) -> GenerateStats:
    """Generate until ``store`` holds ``n`` passed records, on Ray (see the module docstring);
    arguments and result as :func:`synthdspy.generation.generate`.

    Raises:
        ConfigError: Ray cannot be reached at ``[generate] ray_address``.
        RunAbortedError: a run-fatal LM error on any worker, or the circuit breaker.
    """
    import ray

    journal, breaker = UnitJournal(store.directory), breaker or CircuitBreaker()
    checks = [g for g in program.gates.gates if whole_run(g)]
    if len(store) and checks:
        program.gates.restore(store.iter_records())
    started, resumed, t0, passed0 = connect(exp.generate.ray_address), len(journal.done), time.monotonic(), \
        store.n_passed
    tally = {"units": 0, "records": 0, "failed": 0, "ran": 0}
    progress = Progress(TextColumn("[bold]generate (ray)"), BarColumn(), MofNCompleteColumn(), TextColumn("passed"),
                        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), disable=not show_progress)
    stopped_by, limiters, budget = "", [], None
    try:
        limiters = start_limiters(exp)
        if max_usd is not None:  # the cap within a round too: synthdspy.ray_engine.budget
            from synthdspy.ray_engine.budget import start_budget

            budget = start_budget(max_usd, lms.meter.cost_usd)
        actors = exp.generate.ray_actors
        per_actor = max(1, math.ceil(lms.concurrency / actors))
        todo = (u for u in units(seeds, max_rollouts) if u[0] not in journal.done)
        with progress:
            bar = progress.add_task("generate", total=n, completed=min(n, store.n_passed), info="")
            while store.n_passed < n:
                if max_usd is not None and lms.meter.cost_usd >= max_usd:
                    stopped_by = "budget"
                    break
                per_unit = tally["records"] / tally["units"] if tally["units"] else 1.0
                want = math.ceil((n - store.n_passed) / max(per_unit, 1e-6))
                if not tally["units"]:
                    want = min(want, actors * per_actor)  # a first round measures records per unit
                if unit_limit is not None:
                    want = min(want, unit_limit - tally["ran"])
                    stopped_by = "unit_limit" if want <= 0 else ""
                batch = list(islice(todo, max(want, 0)))
                if not batch:
                    break
                for row in _round(exp, program, batch, actors, per_actor, max_attempts,
                                  budget[1] if budget else None):
                    if row.get("usage"):  # a batch's billed usage rides on its first row
                        lms.meter.absorb({role: RoleUsage(**u) for role, u in json.loads(row["usage"]).items()})
                    if row.get("kind") == "budget":  # not started: the cap was reached (left for a re-run)
                        tally["ran"], stopped_by = tally["ran"] - 1, "budget"
                        continue
                    trip = _finish(row, {k: (s, r) for k, s, r in batch}, store, journal, breaker, checks,
                                   tally, max_attempts)
                    if trip:
                        raise RunAbortedError(f"circuit breaker: {trip}; failures by class: {breaker.describe()}; "
                                              f"last error in {journal.fail_path}")
                    progress.update(bar, completed=min(n, store.n_passed),
                                    info=f"${lms.meter.cost_usd:.4f}  rejected {store.n_rejected}  "
                                         f"failed units {tally['failed']}")
                tally["ran"] += len(batch)
                if stopped_by == "budget":
                    break
    except BaseException:
        for actor in limiters:  # requests still waiting for admission anywhere in the cluster end now
            actor.abort.remote(portable(RunAbortedError("the run stopped")))
        raise
    finally:
        if budget is not None:
            ray.kill(budget[0])
        if started:
            ray.shutdown()
    return GenerateStats(store.n_passed, store.n_rejected, tally["failed"], tally["ran"], resumed, stopped_by,
                         dict(breaker.by_class), time.monotonic() - t0, store.n_passed - passed0)


def _round(exp: Experiment, program: Any, batch: list[tuple[str, Seed, int]], actors: int, per_actor: int,
           max_attempts: int, budget: str | None) -> Iterator[dict[str, Any]]:
    """Run ``batch`` on the actor pool (``budget``: the name of the run's budget actor, or None);
    yield one result row per unit as blocks arrive."""
    import ray.data

    rows = [{"key": key, "seed": seed.model_dump_json(), "rollout": rollout} for key, seed, rollout in batch]
    blocks = max(1, math.ceil(len(rows) / per_actor))
    kwargs = {"experiment": exp.model_dump(mode="json"), "program": program.to_blob(), "concurrency": per_actor,
              "max_attempts": max_attempts, "budget": budget}
    mapped = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
        UnitWorker, fn_constructor_kwargs=kwargs, batch_size=per_actor,
        compute=ray.data.ActorPoolStrategy(size=min(actors, blocks)), num_cpus=1)
    for block in mapped.iter_batches(batch_size=None, batch_format="pandas"):
        yield from block.to_dict("records")


def _finish(row: dict[str, Any], batch: dict[str, tuple[Seed, int]], store: RecordStore, journal: UnitJournal,
            breaker: CircuitBreaker, checks: list, tally: dict[str, int], max_attempts: int) -> str | None:
    """Store a unit's records (after the whole-run gates) or journal its failure, as the local
    engine's ``_finish`` does. Returns why the breaker tripped.

    Raises:
        RunAbortedError: the unit failed with a run-fatal error (wrong key, no quota ...).
    """
    key = row["key"]
    seed, rollout = batch[key]
    if row.get("kind"):
        failure = Failure(row["kind"], row["reason"])
        if failure.kind == "run":  # the worker wrote the local engine's one-line message
            raise RunAbortedError(row["error"])
        tally["failed"] += 1
        journal.fail(key, seed.id, rollout, RuntimeError(row["error"]), max_attempts if failure.kind == "other" else 1,
                     f"{failure.kind}:{failure.reason}", error_type=row["error_type"])
        return breaker.record(failure)
    records = [Record.model_validate(data) for data in json.loads(row["records"])]
    before = store.n_passed
    for record in records:
        for gate in checks:
            record.verdicts.append(gate(record))
        store.append(record)
    journal.finish(key, len(records))
    tally["units"] += 1
    tally["records"] += store.n_passed - before
    return breaker.record(None)
