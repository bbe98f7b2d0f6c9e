"""``generate`` in batch mode: rounds of units, one provider batch per endpoint and round.

Each round (the issue's design; OpenAI Batch semantics in :mod:`synthdspy.batch.client`):

1. open batches (this run's, or a killed run's from ``batches.jsonl``) are polled until they end;
   each answer is written to DSPy's response cache under the online call's key (and metered at
   batch prices), each failed or expired request is counted for resubmission;
2. units are taken in the online loop's order (:func:`synthdspy.generation.units`) in waves: a
   wave starts once the last has ended, with the units ``n`` still needs at the yield per unit
   seen so far (the first wave: half of ``n`` units, so a task that makes several records per
   unit does not pay for twice the units). Every unit of the wave runs until its first LM call
   without a cached answer (:class:`~synthdspy.batch.defer.Deferred`), or to its end; finished
   units are stored in unit order (an online run's order at concurrency 1);
3. the deferred calls go out as one batch per endpoint. A unit of depth d (its task call, then
   the gates' judge calls) takes d rounds; resubmitted requests add rounds.

With ``generate.batch_wait = false`` a run submits or polls once and returns with ``stopped_by =
"batch_pending"``; a re-run (or one after a kill) polls the same batch instead of resubmitting.
"""

from __future__ import annotations

import dataclasses
import json
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from synthdspy.batch.client import BatchState, Endpoint, OpenAIBatches, batch_cost, endpoint_for
from synthdspy.batch.defer import Collector, Deferred, DeferringEngine, store_answer
from synthdspy.batch.ledger import Ledger
from synthdspy.batch.outcomes import answer_problem, request_error
from synthdspy.config import Experiment
from synthdspy.configio import ConfigError
from synthdspy.generation import GenerateStats, _finish, _Loop, run_unit, units
from synthdspy.llm_failures import RunAbortedError
from synthdspy.lm import ROLES, LMs
from synthdspy.pricing import token_cost
from synthdspy.run_dir import UnitJournal
from synthdspy.run_guard import CircuitBreaker


def generate_runner(exp: Experiment, online: Any) -> Any:
    """The generate function for ``exp``: ``online`` (:func:`synthdspy.generation.generate`), or
    in batch mode (``[generate] batch = true``, ``--batch``) :func:`batch_generate` bound to ``exp``."""
    if not exp.generate.batch:
        return online

    def run(program: Any, seeds: list, lms: LMs, store: Any, n: int, **options: Any) -> GenerateStats:
        return batch_generate(program, seeds, lms, store, n, exp=exp, **options)

    return run


@dataclasses.dataclass
class _Batching:
    """The batch side of a run: endpoints by group, prices by role, the collector and ledger."""

    ledger: Ledger
    collector: Collector
    clients: dict[str, OpenAIBatches]
    prices: dict[str, tuple[str, Any]]
    lms: LMs
    poll_s: float
    wait: bool
    progress: Progress
    task: Any

    def submit(self, round_no: int) -> None:
        """Send this round's deferred calls, one batch per endpoint, and record the job ids."""
        calls = self.collector.take()
        for group in dict.fromkeys(c.group for c in calls):
            batch = [c for c in calls if c.group == group]
            lines = [{"custom_id": c.digest, "body": c.body} for c in batch]
            batch_id = _provider_call(group, self.clients[group].submit, lines, {"synthdspy_round": str(round_no)})
            self.ledger.submitted(batch_id, group, round_no, batch)

    def finish_open(self) -> bool:
        """Poll the open batches until they end and store their outcomes; False when one is still
        running and the run does not wait."""
        for event in self.ledger.open_batches():
            client = self.clients.get(event["group"])
            if client is None:
                raise ConfigError(f"batch {event['batch_id']} went to {event['group']}, which no role of this "
                                  "experiment uses now; restore the [lm] settings or remove generate/batches.jsonl")
            while True:
                state = _provider_call(event["group"], client.retrieve, event["batch_id"])
                self._show(event, state)
                if state.ended:
                    break
                if not self.wait:
                    return False
                time.sleep(self.poll_s)
            self._collect(event, client, state)
        return True

    def _show(self, event: dict, state: BatchState) -> None:
        counts = f"{state.completed:,}/{state.total:,} done" + (f", {state.failed:,} failed" if state.failed else "")
        self.progress.update(self.task, total=max(state.total, 1), completed=state.completed + state.failed,
                             visible=True, info=f"round {event['round']} {event['batch_id']} {state.status} ({counts})")

    def _collect(self, event: dict, client: OpenAIBatches, state: BatchState) -> None:
        requests = self.ledger.requests(event["batch_id"])
        lines = _provider_call(event["group"], client.results, state)
        seen: set[str] = set()
        answered = failed = 0
        for line in lines:
            request = requests.get(line.get("custom_id"))
            if request is None:
                continue
            seen.add(line["custom_id"])
            if self._outcome(line["custom_id"], request, line):
                answered += 1
            else:
                failed += 1
        for digest, request in requests.items():  # in no file (a failed or cancelled batch): send again
            if digest not in seen:
                failed += 1
                self._failed(digest, request["role"], {"status": None, "code": state.status,
                                                       "message": f"batch ended {state.status} without it"})
        self.ledger.collected(event["batch_id"], state.status, answered, failed)

    def _outcome(self, digest: str, request: dict, line: dict) -> bool:
        role, response = request["role"], line.get("response") or {}
        if response.get("status_code") == 200 and line.get("error") is None:
            body = response["body"]
            model, price = self.prices[role]
            usage = body.get("usage") or {}
            cost = batch_cost(model, usage, price)
            online = token_cost(model, int(usage.get("prompt_tokens") or 0),
                                int(usage.get("completion_tokens") or 0), price)
            self.lms.meter.add(role, usage, cost)  # billed at the batch price, cut or refused answers too
            problem = answer_problem(body, role)
            self.ledger.answered(digest, role, request["key"], body, cost, online)
            if problem is None:
                store_answer(request["key"], body)
                return True
            self.collector.final[digest] = problem
            self.ledger.failed(digest, role, {"status": 200, "code": type(problem).__name__, "message": str(problem)},
                               final=True)
            return False
        error = line.get("error") or (response.get("body") or {}).get("error") or {}
        self._failed(digest, role, {"status": response.get("status_code"), "code": error.get("code"),
                                    "message": str(error.get("message") or "")[:500]})
        return False

    def _failed(self, digest: str, role: str, error: dict) -> None:
        status = error.get("status")
        transient = status is None or status == 429 or status >= 500
        final = not transient or not self.collector.failed_attempt(digest, request_error(error, role))
        if final and not transient:
            self.collector.final[digest] = request_error(error, role)
        self.ledger.failed(digest, role, error, final)


def _provider_call(group: str, fn: Any, *args: Any) -> Any:
    """``fn(*args)`` against the batch endpoint ``group``, retried 3 times on a transient error;
    any other error stops the run in one line."""
    from synthdspy.llm_failures import classify

    for attempt in range(4):
        try:
            return fn(*args)
        except Exception as exc:
            failure = classify(exc)
            if failure.kind != "transient" or attempt == 3:
                message = " ".join(str(exc).split())[:300]
                raise RunAbortedError(f"{failure.reason} error from the batch API of {group}: {message}") from None
            time.sleep(min(2.0**attempt, 30.0))
    raise AssertionError("unreachable")


def _batching(exp: Experiment, lms: LMs, progress: Progress, task: Any) -> _Batching:
    """Swap each HTTP role's engine for a deferring one and build the batch clients.

    Raises:
        ConfigError: no role is on an HTTP provider, or one is on a provider without a batch API.
    """
    collector, clients, prices = Collector(), {}, {}
    for name in ROLES:
        role = getattr(exp.lm, name)
        prices[name] = (role.model, role.price)
        if role.is_simulated:
            continue  # in-process: answers at once, never deferred
        endpoint: Endpoint = endpoint_for(name, role)
        clients.setdefault(endpoint.group, OpenAIBatches(endpoint))
        lm = getattr(lms, name)
        engine = DeferringEngine(lm.engine, name, endpoint.wire_model, endpoint.group, collector)
        setattr(lms, name, lm.copy(engine=engine))
    if not clients:
        raise ConfigError("generate.batch: every role is the in-process simulator (sim/...); batch mode needs an "
                          "HTTP provider (lm.<role>.model = \"openai/...\")")
    ledger = Ledger(Path(exp.output.dir) / "generate")
    return _Batching(ledger, collector, clients, prices, lms, exp.generate.batch_poll_s, exp.generate.batch_wait,
                     progress, task)


def batch_generate(program: Any, seeds: list, lms: LMs, store: Any, n: int, *, exp: Experiment,
                   max_rollouts: int = 10, max_attempts: int = 2, show_progress: bool = True,
                   max_usd: float | None = None, unit_limit: int | None = None,
                   breaker: CircuitBreaker | None = None) -> GenerateStats:
    """Generate until ``store`` holds ``n`` passed records, through the provider's batch API (see
    the module doc); arguments as :func:`synthdspy.generation.generate`, ``exp`` for the roles'
    endpoints, prices and ``[generate]`` settings. Writes ``generate/batch_summary.json``.

    Raises:
        ConfigError: a role's provider has no batch API, or a seed lacks a task field.
        RunAbortedError: a run-fatal error from the batch API, or the circuit breaker.
    """
    journal = UnitJournal(store.directory)
    if len(store):
        program.gates.restore(store.iter_records())
    progress = Progress(TextColumn("[bold]generate"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), disable=not show_progress)
    records = progress.add_task("records", total=n, completed=min(n, store.n_passed), info="passed")
    batch_task = progress.add_task("batch", total=1, visible=False, info="")
    run = _batching(exp, lms, progress, batch_task)
    run.ledger.restore(run.collector, lambda e: request_error(e["error"], e["role"]))
    loop = _Loop(n, store, lms, breaker or CircuitBreaker(), passed_start=store.n_passed)
    resumed, ran, stopped_by = len(journal.done), 0, ""
    todo, active = units(seeds, max_rollouts), []
    round_no = run.ledger.rounds()
    with progress:
        while True:
            if not run.finish_open():
                stopped_by = "batch_pending"
                break
            wave = not active  # units start in waves: the next once this one has ended
            while wave and not stopped_by and loop.store.n_passed + len(active) * loop.per_unit() < n:
                if not loop.finished_units and len(active) >= max(lms.concurrency, -(-n // 2)):
                    break  # the yield per unit is unknown yet: half of n units, then what it shows
                if max_usd is not None and lms.meter.cost_usd >= max_usd:
                    stopped_by = "budget"
                elif unit_limit is not None and ran + len(active) >= unit_limit:
                    stopped_by = "unit_limit"
                elif (nxt := next(todo, None)) is None:
                    break
                elif nxt[0] not in journal.done:
                    active.append(nxt)
            if not active:
                break
            done = _run_round(program, active, run.lms, max_attempts)
            while active and active[0][0] in done:  # stored in unit order
                key, seed, rollout = active.pop(0)
                ran += 1
                if trip := _finish(done.pop(key), key, seed, rollout, journal, loop, max_attempts):
                    raise RunAbortedError(f"circuit breaker: {trip}; failures by class: {loop.breaker.describe()}; "
                                          f"last error in {journal.fail_path}")
            progress.update(records, completed=min(n, store.n_passed), info=f"passed  {loop.info()}")
            if run.collector.calls:
                round_no += 1
                run.submit(round_no)
    summary = _summary(run, round_no, stopped_by)
    if show_progress:
        Console().print(summary["line"], highlight=False)
    return GenerateStats(store.n_passed, store.n_rejected, loop.failed, ran, resumed, stopped_by,
                         dict(loop.breaker.by_class), time.monotonic() - loop.started,
                         store.n_passed - loop.passed_start)


def _run_round(program: Any, active: list, lms: LMs, max_attempts: int) -> dict[str, Future]:
    """Run each active unit to its end or its first uncached call; {unit key: finished future}."""
    done: dict[str, Future] = {}
    for key, seed, rollout in active:
        fut: Future = Future()
        try:
            fut.set_result(run_unit(program, seed, rollout, lms, max_attempts))
        except Deferred:
            continue
        except Exception as exc:
            fut.set_exception(exc)
        done[key] = fut
    return done


def _summary(run: _Batching, rounds: int, stopped_by: str) -> dict[str, Any]:
    """Write ``batch_summary.json`` (whole run: every invocation) and return it with a ``line``."""
    totals = run.ledger.totals()
    saved = totals["online_usd"] - totals["cost_usd"]
    share = saved / totals["online_usd"] if totals["online_usd"] else 0.0
    line = (f"batch: {totals['answers']:,} answers in {rounds} rounds ({totals['failed_attempts']} failed attempts); "
            f"${totals['cost_usd']:.4f} at batch prices, ${totals['online_usd']:.4f} online (saved ${saved:.4f}, "
            f"{share:.0%})")
    if stopped_by == "batch_pending":
        line += "; a batch is still running: run the same command again to collect it"
    summary = {**totals, "rounds": rounds, "saved_usd": saved, "saved_share": share, "stopped_by": stopped_by,
               "line": line}
    run.ledger.events_path.with_name("batch_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
