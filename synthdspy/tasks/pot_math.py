"""``pot_math``: program-of-thought math data, verified by running the program (Liu et al. 2023,
"TinyGSM", section 2: GSM8K-style problems answered by Python programs, kept when they execute to
the right answer)."""

from __future__ import annotations

import functools
import logging

import dspy
from pydantic import Field

from synthdspy import greenlet_bridge
from synthdspy.gates.code_tests import extract_code
from synthdspy.gates.program_result import run_solution
from synthdspy.gates.sandbox import SandboxUnavailable, refusal
from synthdspy.gates.sandbox_bwrap import bubblewrap_problem
from synthdspy.records import Record, Seed
from synthdspy.registry import Params, register_task
from synthdspy.signatures.pot_math import WriteSolutionProgram
from synthdspy.tasks.base import Task, require, sampling_config

log = logging.getLogger(__name__)


class PotMathParams(Params):
    """Parameters of the ``pot_math`` task: the sandbox limits of each program run."""

    timeout_s: float = Field(5.0, gt=0, le=600, description="wall-clock limit per program run, seconds")
    memory_mb: int = Field(512, ge=64, le=65536, description="address-space limit per process, MiB")
    allow_unsandboxed: bool = Field(
        False, description="UNSAFE: without bubblewrap, run the programs as plain processes of your user, not refuse")


@register_task("pot_math", PotMathParams)
class PotMathTask(Task):
    """A Python ``solution()`` for a math word problem, executed in the ``code_tests`` sandbox.

    One LM call writes the program (the record's ``output``, code only; the question is its
    ``instruction``); the program then runs inside bubblewrap (:mod:`synthdspy.gates.program_result`)
    and what ``solution()`` returned is stored as plain decimal text in ``metadata.program_result``.
    A program that is blocked (file, network, process), runs out of time or memory, raises or
    returns no number gets no ``program_result``; ``metadata.program_status`` and
    ``metadata.program_result_error`` say why (``math_answer`` quotes the latter in its reason), and
    the unit still succeeds (the record fails its gate).
    The seed's gold solution (``answer``, GSM8K's ``#### N`` form) is kept in
    ``metadata.gold_answer``, so ``math_answer`` with ``answer_key = "program_result"`` passes a
    record only when the executed result equals the gold answer.

    Raises:
        SandboxUnavailable: at construction, when bubblewrap does not work here and
            ``allow_unsandboxed`` is false.
        SeedFieldError: the seed has no ``question``.
    """

    name = "pot_math"

    def __init__(self, timeout_s: float = 5.0, memory_mb: int = 512, allow_unsandboxed: bool = False) -> None:
        super().__init__()
        problem = bubblewrap_problem()
        if problem is not None and not allow_unsandboxed:
            raise SandboxUnavailable(refusal(problem))
        if problem is not None:
            log.warning("pot_math runs generated programs WITHOUT a sandbox (allow_unsandboxed = true; %s)", problem)
        self.limits = dict(timeout_s=timeout_s, memory_mb=memory_mb, unsandboxed=problem is not None)
        self.write = dspy.Predict(WriteSolutionProgram)

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:
        (question,) = require(seed, self.name, "question")
        program = extract_code(self.write(question=question, config=sampling_config(rollout)).program).strip()
        run = greenlet_bridge.call_blocking(functools.partial(run_solution, program, **self.limits))
        metadata: dict[str, object] = {"program_status": run.status}
        if run.answer is not None:
            metadata["program_result"] = run.answer
        else:
            metadata["program_result_error"] = run.reason
        if seed.data.get("answer"):
            metadata["gold_answer"] = seed.data["answer"]
        return [self.record(seed, rollout, 0, instruction=question, output=program, metadata=metadata)]
