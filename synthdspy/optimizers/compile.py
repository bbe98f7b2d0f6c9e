"""``compile``: optimize a synthesis program's task prompts with a DSPy optimizer against the objective.

The unit of optimization is a *batch of seeds* (``compile.batch_size``): the student generates the
batch's records and :class:`~synthdspy.metrics.objective.Objective` scores them together, so the
set-level diversity (one cluster-agent round over the batch's records) reaches per-example
optimizers. Gates are frozen (they belong to the metric). Cluster-agent criteria are generated
once from baseline records of the train seeds and frozen for the whole compile. Baseline and
compiled programs are evaluated the same way on held-out (dev) batches. The budget bounds the
optimizer; the criteria and the two held-out evaluations are set-up costs outside it, reported
separately.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dspy

from synthdspy.config import Experiment
from synthdspy.generation import aborted
from synthdspy.llm_failures import RunAbortedError, classify
from synthdspy.lm import LMs, roles_context
from synthdspy.metrics.diversity.scorers import DiversityScorer, make_scorer
from synthdspy.metrics.objective import BatchScores, Objective
from synthdspy.optimizers.budget import BudgetGuard, optimizer_knobs
from synthdspy.program import SynthesisProgram
from synthdspy.records import Record, Seed
from synthdspy.tasks.base import Task


class BatchGenerator(dspy.Module):
    """The compile student: the task applied to every seed of a batch.

    ``forward(seeds)`` returns ``dspy.Prediction(records=[...])`` (ungated).
    """

    def __init__(self, task: Task) -> None:
        super().__init__()
        self.task = task

    def forward(self, seeds: list[Seed]) -> dspy.Prediction:
        records: list[Record] = []
        for seed in seeds:
            records.extend(self.task(seed))
        return dspy.Prediction(records=records)


class _NeverRaises(dspy.Module):
    """Runs the student on a batch for a held-out evaluation; a batch that raises yields no records
    (so it scores 0) and its error, instead of an exception that evaluation wrappers (MLflow's DSPy
    autolog) turn into a ``None`` score."""

    def __init__(self, student: BatchGenerator) -> None:
        super().__init__()
        self.student = student

    def forward(self, seeds: list[Seed]) -> dspy.Prediction:
        try:
            return self.student(seeds=seeds)
        except Exception as exc:  # noqa: BLE001 - any failure of one batch is that batch's score of 0
            fatal = classify(exc).kind == "run"
            return dspy.Prediction(records=[], error=f"{type(exc).__name__}: {' '.join(str(exc).split())}",
                                   fatal=exc if fatal else None)


def seed_batches(seeds: list[Seed], size: int) -> list[dspy.Example]:
    """Consecutive batches of ``size`` seeds as DSPy examples with input ``seeds`` (last may be short)."""
    return [dspy.Example(seeds=seeds[i : i + size]).with_inputs("seeds") for i in range(0, len(seeds), size)]


@dataclass
class Evaluation:
    """A program's objective components on held-out seed batches, with the usage it cost.

    ``diversity_interval`` is the bootstrap interval (low, high) of the per-batch diversity;
    ``errors`` the error of each batch that raised (it scored 0).
    """

    mean: BatchScores
    batches: list[BatchScores]
    records: list[Record]
    usage: dict[str, float]
    seconds: float
    diversity_interval: tuple[float, float] | None = None
    errors: list[str] = field(default_factory=list)

    def metrics(self, prefix: str) -> dict[str, float]:
        """Flat metrics for MLflow and reports, prefixed (``baseline.quality`` ...)."""
        out = {f"{prefix}.{k}": float(v) for k, v in self.mean.as_dict().items()}
        out.update({f"{prefix}.{k}": v for k, v in self.usage.items()})
        out[f"{prefix}.seconds"] = self.seconds
        out[f"{prefix}.failed_batches"] = float(len(self.errors))
        if self.diversity_interval:
            out[f"{prefix}.diversity_low"], out[f"{prefix}.diversity_high"] = self.diversity_interval
        return out


def _usage_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0.0) for k in after}


def _mean(batches: list[BatchScores]) -> BatchScores:
    n = max(1, len(batches))
    parts = sorted({k for b in batches for k in b.diversity_parts})
    return BatchScores(
        quality=sum(b.quality for b in batches) / n,
        pass_rate=sum(b.pass_rate for b in batches) / n,
        diversity=sum(b.diversity for b in batches) / n,
        score=sum(b.score for b in batches) / n,
        n_records=sum(b.n_records for b in batches),
        diversity_parts={k: sum(b.diversity_parts.get(k, 0.0) for b in batches) / n for k in parts},
    )


def evaluate(student: BatchGenerator, examples: list[dspy.Example], objective: Objective, lms: LMs) -> Evaluation:
    """Run ``student`` on each batch (``lms.concurrency`` threads) and score it with ``objective``.

    A batch that raises scores 0, is counted in the mean, and its error is kept.

    Raises:
        RunAbortedError: a batch failed with a run-fatal LM error (wrong key, no quota, unknown
            model), or every batch failed (a dead endpoint): scores of 0 would be meaningless.
    """
    from synthdspy.metrics.diversity.cluster_agent import bootstrap_interval

    before = lms.meter.metrics()
    start = time.perf_counter()
    def metric(example: dspy.Example, prediction: dspy.Prediction, trace: Any = None) -> Any:
        try:  # a judge that fails (a gate's LM call) fails the batch like a generator that fails
            return objective(example, prediction, trace)
        except Exception as exc:  # noqa: BLE001 - the batch scores 0 with its error noted
            error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            prediction.error = getattr(prediction, "error", None) or error
            prediction.fatal = exc if classify(exc).kind == "run" else None
            return 0.0

    evaluator = dspy.Evaluate(devset=examples, metric=metric, num_threads=lms.concurrency,
                              display_progress=sys.stderr.isatty(), max_errors=len(examples) + 1,
                              provide_traceback=False)
    result = evaluator(_NeverRaises(student))
    batches: list[BatchScores] = []
    records: list[Record] = []
    errors: list[str] = []
    for _example, prediction, _score in result.results:
        batches.append(getattr(prediction, "scores", None) or BatchScores(0.0, 0.0, 0.0, 0.0, 0))
        records.extend(getattr(prediction, "records", None) or [])
        if getattr(prediction, "error", None):
            errors.append(prediction.error)
            if getattr(prediction, "fatal", None) is not None:
                raise aborted(prediction.fatal, classify(prediction.fatal), lms)
    if examples and len(errors) == len(examples):
        raise RunAbortedError(f"every one of the {len(examples)} held-out batches failed, so the LMs are not "
                              f"answering; first error: {errors[0][:300]}")
    interval = None
    if len(batches) >= 2:
        ci = bootstrap_interval([b.diversity for b in batches])
        interval = (ci.low, ci.high)
    return Evaluation(_mean(batches), batches, records, _usage_delta(before, lms.meter.metrics()),
                      time.perf_counter() - start, interval, errors)


def make_optimizer(exp: Experiment, objective: Objective, lms: LMs, n_train: int, valset: list[dspy.Example]):
    """The DSPy optimizer named by ``exp.compile.optimizer``, sized by the budget.

    Returns:
        (optimizer, compile kwargs beyond student/trainset).
    """
    c = exp.compile
    n_val = len(valset)
    knobs = optimizer_knobs(c.optimizer, c.budget, n_train, n_val, c.num_candidates)
    many = 10**6  # failures after a budget stop count as zero scores instead of aborting the optimizer
    if c.optimizer == "mipro":
        kwargs: dict[str, Any] = dict(
            metric=objective, prompt_model=lms.reflection, task_model=lms.generator,
            max_bootstrapped_demos=c.max_bootstrapped_demos, max_labeled_demos=c.max_labeled_demos,
            num_threads=lms.concurrency, seed=c.seed, verbose=False, max_errors=many,
        )
        trials = knobs.get("num_trials", c.num_trials)
        if c.auto is not None and trials is None:
            kwargs["auto"] = c.auto
        else:
            kwargs.update(auto=None, num_candidates=c.num_candidates)
            trials = trials or c.num_candidates * 2
        return dspy.MIPROv2(**kwargs), {"valset": valset, "num_trials": trials, "minibatch": False, "seed": c.seed}
    if c.optimizer == "gepa":
        budget = {"max_metric_calls": knobs["max_metric_calls"]} if knobs else {"auto": c.auto or "light"}
        return dspy.GEPA(metric=objective, reflection_lm=lms.reflection, num_threads=lms.concurrency,
                         seed=c.seed, track_stats=True, failure_score=0.0, **budget), {"valset": valset}
    if c.optimizer == "simba":
        bsize = knobs.get("bsize", min(n_train, 4))
        return dspy.SIMBA(metric=objective, bsize=bsize, num_candidates=c.num_candidates,
                          max_steps=knobs.get("max_steps", 4), max_demos=c.max_bootstrapped_demos,
                          prompt_model=lms.reflection, num_threads=lms.concurrency), {"seed": c.seed}
    return dspy.BootstrapFewShotWithRandomSearch(
        metric=objective, max_bootstrapped_demos=c.max_bootstrapped_demos,
        max_labeled_demos=c.max_labeled_demos,
        num_candidate_programs=knobs.get("num_candidate_programs", c.num_candidates),
        num_threads=lms.concurrency, max_errors=many,
    ), {"valset": valset}


def freeze_criteria(exp: Experiment, lms: LMs, student: BatchGenerator, train_ex: list[dspy.Example],
                    out_dir: Path | None):
    """Cluster-agent criteria for this compile: loaded from ``objective.cluster_agent.criteria``, or
    generated from the baseline's records on the train batches under the judge LM (J, M, k from
    the config) and saved to ``out_dir/criteria.json``.

    Raises:
        RuntimeError: criteria generation failed (every round malformed).
    """
    from synthdspy.metrics.diversity.cluster_agent import ClusterAgentConfig, CriteriaGenerator, DiversityCriteria

    cfg = exp.objective.cluster_agent
    if cfg.criteria:
        return DiversityCriteria.load(cfg.criteria)
    field = exp.objective.diversity_field
    texts = [getattr(r, field) for ex in train_ex for r in student(seeds=ex.seeds).records]
    config = ClusterAgentConfig(criteria_samples=min(cfg.criteria_samples, len(texts)),
                                criteria_rounds=cfg.criteria_rounds, n_criteria=cfg.n_criteria,
                                seed=exp.compile.seed, num_threads=lms.concurrency)
    with dspy.context(lm=lms.judge):
        criteria = CriteriaGenerator()(texts=texts, config=config).criteria
    if out_dir is not None:
        criteria.save(out_dir / "criteria.json")
    return criteria


def build_scorers(exp: Experiment, lms: LMs, criteria: Any) -> dict[str, DiversityScorer]:
    """The diversity scorers the objective weights (the cluster-agent under the judge LM)."""
    scorers: dict[str, DiversityScorer] = {}
    for name, weight in exp.objective.diversity_metrics.items():
        if weight <= 0:
            continue
        if name == "cluster_agent":
            verify = exp.objective.cluster_agent.verify
            scorers[name] = make_scorer(name, criteria=criteria, lm=lms.judge, verify=verify)
        else:
            scorers[name] = make_scorer(name)
    return scorers


def evaluated_candidates(compiled: dspy.Module, limit: int = 30) -> list[tuple[float, dspy.Module]]:
    """(score on the optimizer's validation batches, program) of the candidates the optimizer
    evaluated, best first: GEPA's ``detailed_results`` (with ``track_stats``), or the
    ``candidate_programs`` that MIPROv2, BootstrapFewShotWithRandomSearch and SIMBA attach."""
    details = getattr(compiled, "detailed_results", None)
    if details is not None:
        pairs = list(zip(details.val_aggregate_scores, details.candidates, strict=False))
    else:
        pairs = [(c["score"], c["program"]) for c in getattr(compiled, "candidate_programs", None) or []]
    return sorted(pairs, key=lambda p: p[0], reverse=True)[:limit]


@dataclass
class CompileResult:
    """What a compile produced: the compiled program, both held-out evaluations, and the budget.

    ``criteria_usage`` is what generating the cluster-agent criteria cost (empty usage when they were
    loaded or not needed); like the held-out evaluations it is a set-up cost outside the budget.
    """

    program: SynthesisProgram
    baseline: Evaluation
    compiled: Evaluation
    optimize_usage: dict[str, float]
    optimize_seconds: float
    budget: dict[str, Any]
    criteria: Any = None
    criteria_usage: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    candidates: list[tuple[float, dspy.Module]] = field(default_factory=list)


def compile_program(exp: Experiment, lms: LMs, train: list[Seed], dev: list[Seed],
                    out_dir: Path | None = None,
                    traced: Callable[[], AbstractContextManager] = contextlib.nullcontext) -> CompileResult:
    """Evaluate the baseline on ``dev``, optimize the task's prompts on ``train``, evaluate the result.

    ``traced`` wraps the two held-out evaluations (the pipeline passes MLflow tracing). The returned
    program holds the compiled task state and the experiment's (frozen) gates.
    """
    program = SynthesisProgram.from_experiment(exp)
    train_ex = seed_batches(train, exp.compile.batch_size)
    dev_ex = seed_batches(dev, exp.compile.batch_size)
    with roles_context(lms):
        baseline_student = BatchGenerator(program.task)
        criteria = None
        before = lms.meter.metrics()
        if exp.objective.diversity > 0 and exp.objective.diversity_metrics.get("cluster_agent", 0) > 0:
            criteria = freeze_criteria(exp, lms, baseline_student, train_ex, out_dir)
        criteria_usage = _usage_delta(before, lms.meter.metrics())
        scorers = build_scorers(exp, lms, criteria)
        held_out = Objective(exp.objective, program.gates, scorers)
        with traced():
            baseline = evaluate(baseline_student, dev_ex, held_out, lms)

        before = lms.meter.metrics()
        start = time.perf_counter()
        native = ("metric_calls",) if exp.compile.optimizer == "gepa" else ()  # GEPA's max_metric_calls
        guard = BudgetGuard(exp.compile.budget, lms.meter, native=native)
        objective = Objective(exp.objective, program.gates, scorers, with_feedback=exp.compile.optimizer == "gepa",
                              guard=guard)
        optimizer, compile_kwargs = make_optimizer(exp, objective, lms, len(train_ex), train_ex)
        student = BatchGenerator(program.task.deepcopy())
        lms.meter.gate = guard.check_lm
        notes: list[str] = []
        try:
            compiled_student = optimizer.compile(student, trainset=train_ex, **compile_kwargs)
        except Exception as exc:
            if guard.exhausted is None:
                raise
            notes.append(f"{guard.exhausted} before {exp.compile.optimizer} returned a program "
                         f"({type(exc).__name__}: {str(exc)[:200]}); the variant keeps the baseline prompts")
            compiled_student = student
        finally:
            lms.meter.gate = None
        if not notes and _prompts(compiled_student) == _prompts(baseline_student):
            what = (f"was stopped by the budget ({guard.exhausted}) before it found a" if guard.exhausted
                    else "found no")
            notes.append(f"{exp.compile.optimizer} {what} candidate better than the starting prompts on the "
                         "train batches; the variant keeps them")
        optimize_seconds = time.perf_counter() - start
        optimize_usage = _usage_delta(before, lms.meter.metrics())
        with traced():
            compiled = evaluate(compiled_student, dev_ex, held_out, lms)
    for name, ev in (("baseline", baseline), ("compiled", compiled)):
        if ev.errors:
            notes.append(f"{len(ev.errors)} of {len(dev_ex)} held-out batches of the {name} raised and scored 0 "
                         f"(first: {ev.errors[0][:200]})")
    program.task = compiled_student.task
    program.refresh_hash()
    return CompileResult(program, baseline, compiled, optimize_usage, optimize_seconds, guard.report(), criteria,
                         criteria_usage, notes, evaluated_candidates(compiled_student))


def _prompts(student: dspy.Module) -> dict[str, tuple[str, int]]:
    """Each predictor's (instructions, number of demos): what an optimizer can change."""
    return {name: (p.signature.instructions, len(p.demos)) for name, p in student.named_predictors()}
