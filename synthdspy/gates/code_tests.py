"""The deterministic ``code_tests`` gate: run a record's Python against its tests in a sandbox.

The sandbox (bubblewrap, an operating-system boundary) and what it does and does not guarantee are
described in :mod:`synthdspy.gates.sandbox` and :mod:`synthdspy.gates.sandbox_bwrap`. Without
bubblewrap the gate refuses to start unless ``allow_unsandboxed`` is set, which is unsafe.
"""

from __future__ import annotations

import logging
import re
from typing import Literal

from pydantic import Field

from synthdspy.gates.base import Gate
from synthdspy.gates.sandbox import SandboxResult, SandboxUnavailable, refusal, run_python
from synthdspy.gates.sandbox_bwrap import bubblewrap_problem
from synthdspy.records import Record, Verdict
from synthdspy.registry import Params, register_gate

log = logging.getLogger(__name__)

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)```", re.DOTALL)


def extract_code(text: str) -> str:
    """The first fenced block labelled ``python``/``py`` (else the first unlabelled fenced block) of
    ``text``; ``text`` itself when it has no fenced block."""
    blocks = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]
    for wanted in (("python", "py", "python3"), ("",)):
        for label, body in blocks:
            if label in wanted:
                return body
    return text


class CodeTestsParams(Params):
    """Parameters of the ``code_tests`` gate."""

    code_field: Literal["output", "chosen", "rejected", "input", "instruction"] = Field(
        "output", description="record field holding the code (a ```python block is extracted)"
    )
    tests_key: str = Field("tests", min_length=1, description="metadata key of the tests source")
    timeout_s: float = Field(10.0, gt=0, le=600, description="wall-clock limit per record, seconds")
    memory_mb: int = Field(512, ge=64, le=65536, description="address-space limit, MiB")
    max_file_mb: int = Field(16, ge=1, le=4096, description="largest file or output the code may write, MiB")
    allow_unsandboxed: bool = Field(
        False, description="UNSAFE: without bubblewrap, run the code as plain processes of your user, not refuse")
    site_packages: bool = Field(False, description="allow importing installed third-party packages")
    min_pass_fraction: float = Field(1.0, gt=0, le=1, description="share of tests that must pass")


@register_gate("code_tests", CodeTestsParams)
class CodeTestsGate(Gate):
    """Run the record's code against its tests in a sandboxed subprocess.

    The code is the record's ``code_field``; the tests are ``metadata[tests_key]``.
    Passes when the code ran to the end without tripping the sandbox and at least
    ``min_pass_fraction`` of the tests passed. Score: the fraction of tests passed. The reason names
    the blocked operation (``blocked: network (...)``), the timeout, or the first failing test;
    ``details["isolation"]`` says how the code ran (``bubblewrap``, or ``none`` when
    ``allow_unsandboxed`` let it run without).

    Raises:
        SandboxUnavailable: at construction, when bubblewrap does not work here and
            ``allow_unsandboxed`` is false.
    """

    name = "code_tests"
    blocking = True

    def __init__(self, code_field: str = "output", tests_key: str = "tests", timeout_s: float = 10.0,
                 memory_mb: int = 512, max_file_mb: int = 16, allow_unsandboxed: bool = False,
                 site_packages: bool = False, min_pass_fraction: float = 1.0) -> None:
        super().__init__()
        self.code_field, self.tests_key = code_field, tests_key
        problem = bubblewrap_problem()
        if problem is not None and not allow_unsandboxed:
            raise SandboxUnavailable(refusal(problem))
        if problem is None:
            log.info("code_tests runs each record inside bubblewrap (own namespaces, no network, read-only Python, "
                     "private /box)")
        else:
            log.warning("code_tests runs untrusted code WITHOUT a sandbox (allow_unsandboxed = true; %s): it can "
                        "read and write what your user can, use the network and leave processes behind", problem)
        self.limits = dict(timeout_s=timeout_s, memory_mb=memory_mb, max_file_mb=max_file_mb,
                           site_packages=site_packages, unsandboxed=problem is not None)
        self.min_pass_fraction = min_pass_fraction

    def forward(self, record: Record) -> Verdict:
        tests = record.metadata.get(self.tests_key)
        if not isinstance(tests, str) or not tests.strip():
            return Verdict(gate=self.name, passed=False, score=0.0, reason=f"no tests in metadata.{self.tests_key}")
        code = extract_code(getattr(record, self.code_field) or "")
        if not code.strip():
            return Verdict(gate=self.name, passed=False, score=0.0, reason=f"no code in {self.code_field}")
        result = run_python(code, extract_code(tests), **self.limits)
        passed = result.status in ("passed", "failed") and result.fraction >= self.min_pass_fraction
        return Verdict(gate=self.name, passed=passed, score=result.fraction, reason=explain(result),
                       diagnosis=None if passed else result.status.upper(), details={"isolation": result.isolation})


def explain(result: SandboxResult) -> str:
    """A one-line reason: the blocked operation, the limit hit, the error, or the tests' tally."""
    tally = f"{result.passed}/{result.total} tests passed"
    if result.status == "blocked":
        return f"blocked: {result.violations[0]}; {tally}"
    if result.status in ("timeout", "killed", "crashed", "error", "invalid"):
        return f"{result.status}: {result.errors[0] if result.errors else ''}; {tally}"
    if result.status == "no_tests":
        return "no tests found (top-level asserts, test* functions or Test* classes)"
    if result.failures:
        return f"{tally}; first failure: {result.failures[0]}"
    return tally
