"""``compile``: optimize a synthesis program's task prompts with a DSPy optimizer against the objective.

The unit of optimization is a *batch of seeds* (``compile.batch_size``): the student generates the
batch's records and :class:`~synthdspy.metrics.objective.Objective` scores them together. Gates are
frozen (they belong to the metric). Baseline and compiled programs are evaluated the same way on
the dev split.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import dspy

from synthdspy.config import Experiment
from synthdspy.lm import LMs, roles_context
from synthdspy.metrics.objective import BatchScores, Objective
from synthdspy.program import SynthesisProgram
from synthdspy.records import Record, Seed
from synthdspy.tasks.base import Task


class BatchGenerator(dspy.Module):
    """The compile student: the task applied to every seed of a batch.

    ``forward(seeds)`` returns ``dspy.Prediction(records=[...])`` (ungated). A seed whose
    generation fails contributes no records, so a batch with failures scores lower.
    """

    def __init__(self, task: Task) -> None:
        super().__init__()
        self.task = task

    def forward(self, seeds: list[Seed]) -> dspy.Prediction:
        records: list[Record] = []
        for seed in seeds:
            records.extend(self.task(seed))
        return dspy.Prediction(records=records)


def seed_batches(seeds: list[Seed], size: int) -> list[dspy.Example]:
    """Consecutive batches of ``size`` seeds as DSPy examples with input ``seeds`` (last may be short)."""
    return [dspy.Example(seeds=seeds[i : i + size]).with_inputs("seeds") for i in range(0, len(seeds), size)]


@dataclass
class Evaluation:
    """A program's objective components on a set of seed batches, with the usage it cost."""

    mean: BatchScores
    batches: list[BatchScores]
    records: list[Record]
    usage: dict[str, float]
    seconds: float

    def metrics(self, prefix: str) -> dict[str, float]:
        """Flat metrics for MLflow and reports, prefixed (``baseline.quality`` ...)."""
        out = {f"{prefix}.{k}": float(v) for k, v in self.mean.as_dict().items()}
        out.update({f"{prefix}.{k}": v for k, v in self.usage.items()})
        out[f"{prefix}.seconds"] = self.seconds
        return out


def _usage_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0.0) for k in after}


def evaluate(student: BatchGenerator, examples: list[dspy.Example], objective: Objective, lms: LMs) -> Evaluation:
    """Run ``student`` on each batch (``lms.concurrency`` threads) and score it with ``objective``.

    A batch that raises scores 0 and is counted in the mean; its error is printed by DSPy.
    """
    before = lms.meter.metrics()
    start = time.perf_counter()
    evaluator = dspy.Evaluate(
        devset=examples, metric=objective, num_threads=lms.concurrency, display_progress=True,
        max_errors=len(examples) + 1, provide_traceback=False,
    )
    result = evaluator(student)
    batches: list[BatchScores] = []
    records: list[Record] = []
    for _example, prediction, _score in result.results:
        scores = getattr(prediction, "scores", None) or BatchScores(0.0, 0.0, 0.0, 0.0, 0)
        batches.append(scores)
        records.extend(getattr(prediction, "records", None) or [])
    n = max(1, len(batches))
    mean = BatchScores(
        quality=sum(b.quality for b in batches) / n,
        pass_rate=sum(b.pass_rate for b in batches) / n,
        diversity=sum(b.diversity for b in batches) / n,
        score=sum(b.score for b in batches) / n,
        n_records=sum(b.n_records for b in batches),
    )
    usage = _usage_delta(before, lms.meter.metrics())
    return Evaluation(mean, batches, records, usage, time.perf_counter() - start)


def make_optimizer(exp: Experiment, objective: Objective, lms: LMs):
    """The DSPy optimizer named by ``exp.compile.optimizer`` with the experiment's budget."""
    c = exp.compile
    if c.optimizer == "mipro":
        kwargs = dict(
            metric=objective, prompt_model=lms.reflection, task_model=lms.generator,
            max_bootstrapped_demos=c.max_bootstrapped_demos, max_labeled_demos=c.max_labeled_demos,
            auto=c.auto, num_threads=lms.concurrency, seed=c.seed, verbose=False,
        )
        if c.auto is None:
            kwargs["num_candidates"] = c.num_candidates
        return dspy.MIPROv2(**kwargs)
    return dspy.BootstrapFewShotWithRandomSearch(
        metric=objective, max_bootstrapped_demos=c.max_bootstrapped_demos,
        max_labeled_demos=c.max_labeled_demos, num_candidate_programs=c.num_candidates,
        num_threads=lms.concurrency,
    )


@dataclass
class CompileResult:
    """What a compile produced: the compiled program and both evaluations on the dev batches."""

    program: SynthesisProgram
    baseline: Evaluation
    compiled: Evaluation
    optimize_usage: dict[str, float]
    optimize_seconds: float
    notes: list[str] = field(default_factory=list)


def compile_program(exp: Experiment, lms: LMs, train: list[Seed], dev: list[Seed]) -> CompileResult:
    """Evaluate the baseline on ``dev``, optimize the task's prompts on ``train``, evaluate the result.

    The returned program holds the compiled task state and the experiment's (frozen) gates.
    """
    program = SynthesisProgram.from_experiment(exp)
    objective = Objective(exp.objective, program.gates)
    train_ex = seed_batches(train, exp.compile.batch_size)
    dev_ex = seed_batches(dev, exp.compile.batch_size)
    with roles_context(lms):
        baseline = evaluate(BatchGenerator(program.task), dev_ex, objective, lms)
        before = lms.meter.metrics()
        start = time.perf_counter()
        optimizer = make_optimizer(exp, objective, lms)
        student = BatchGenerator(program.task.deepcopy())
        if exp.compile.optimizer == "mipro":
            compiled_student = optimizer.compile(
                student, trainset=train_ex, valset=train_ex, num_trials=exp.compile.num_trials,
                minibatch=len(train_ex) > 35, seed=exp.compile.seed,
            )
        else:
            compiled_student = optimizer.compile(student, trainset=train_ex, valset=train_ex)
        optimize_seconds = time.perf_counter() - start
        optimize_usage = _usage_delta(before, lms.meter.metrics())
        compiled = evaluate(compiled_student, dev_ex, objective, lms)
    program.task = compiled_student.task
    program.refresh_hash()
    return CompileResult(program, baseline, compiled, optimize_usage, optimize_seconds)
