"""Run a generated program's ``solution()`` in the ``code_tests`` sandbox and read back its answer.

Program-of-thought data (Liu et al. 2023, "TinyGSM", section 2) is verified by executing the
program: its returned value is the answer. The program runs through
:func:`synthdspy.gates.sandbox.run_python` (bubblewrap, the limits of :mod:`synthdspy.gates.sandbox`),
with a fixed harness-side script as its "tests": the script calls ``solution()`` in the solution
process, converts what comes back to a number in the harness and reports it as the message of one
deliberately failing assertion, on the result channel the program cannot write to. Builtins are
reached through ``__import__("builtins")`` (the program's exported names shadow bare ones, dunder
names excepted), so a program cannot redefine ``repr`` or ``float`` to fake its answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from synthdspy.gates.code_tests import extract_code
from synthdspy.gates.sandbox import SandboxResult, run_python

REPORT = """\
_b = __import__("builtins")
_raw = solution()
_kind = _b.type(_raw)
if _raw is None or _kind is _b.bool or _kind is _b.str or _kind is _b.bytes:
    raise _b.TypeError("solution() returned " + _kind.__name__ + ", not a number")
_value = _raw if _kind is _b.int or _kind is _b.float else _b.float(_raw)
assert False, "@" + "@result=" + _b.repr(_value) + "@@"
"""
_CARRIED = re.compile(r"-> AssertionError: @@result=(.*?)@@")


@dataclass(frozen=True)
class ProgramRun:
    """The outcome of one program.

    ``answer``: the returned number as plain decimal text (``"18"``, ``"0.5"``; no exponent), None
    when the run gave none. ``status``: ``ok``, ``no_code``, ``not_a_number``, or the sandbox's
    status (``blocked``, ``timeout``, ``killed``, ``crashed``, ``error``, ``invalid``). ``reason``:
    one line (the blocked operation, the limit hit, the exception with its line). ``seconds``:
    wall-clock time of the run.
    """

    answer: str | None
    status: str
    reason: str
    seconds: float = 0.0


def decimal_text(text: str) -> str | None:
    """``text`` (a Python ``repr`` of an int or float) as plain decimal text, or None when it is not
    a finite number: ``"18.0"`` -> ``"18"``, ``"1e-05"`` -> ``"0.00001"``, ``"nan"`` -> None."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    plain = format(value.normalize(), "f")
    return "0" if plain in ("-0", "") else plain


def run_solution(program: str, *, timeout_s: float = 5.0, memory_mb: int = 512,
                 unsandboxed: bool = False) -> ProgramRun:
    """Execute ``program`` (a ```python block is extracted) and return what its ``solution()`` returned.

    Args:
        program: source defining ``solution()`` with no parameters.
        timeout_s: wall-clock limit of the run, seconds.
        memory_mb: address-space limit per process, MiB.
        unsandboxed: UNSAFE, run without bubblewrap (see :mod:`synthdspy.gates.sandbox`).

    Returns:
        A :class:`ProgramRun`; nothing the program does (escape attempts, hangs, crashes, forks)
        raises here, it fails the run with a reason.

    Raises:
        SandboxUnavailable: bubblewrap does not work here and ``unsandboxed`` is false.
    """
    code = extract_code(program)
    if not code.strip():
        return ProgramRun(None, "no_code", "the program is empty")
    result = run_python(code, REPORT, timeout_s=timeout_s, memory_mb=memory_mb, max_file_mb=1,
                        unsandboxed=unsandboxed)
    carried = _CARRIED.search(result.failures[0]) if result.status == "failed" and len(result.failures) == 1 else None
    if carried is None:
        return ProgramRun(None, result.status if result.status != "failed" else "invalid", _why(result),
                          result.seconds)
    answer = decimal_text(carried.group(1))
    if answer is None:
        return ProgramRun(None, "not_a_number", f"solution() returned {carried.group(1)[:80]}, not a finite number",
                          result.seconds)
    return ProgramRun(answer, "ok", f"solution() returned {answer}", result.seconds)


def _why(result: SandboxResult) -> str:
    """One line for a run that returned no answer: the blocked operation, the limit or the error."""
    if result.violations:
        return f"blocked: {result.violations[0]}"
    detail = result.errors[0] if result.errors else (result.failures[0] if result.failures else "no result")
    return f"{result.status}: {detail}"
