"""The code_tests harness: tests run in one process, the solution in another, and the verdict is
checked against the tests counted outside the sandbox."""

import pytest

from synthdspy.gates.sandbox import SandboxResult, run_python, summarise
from synthdspy.gates.sandbox_bwrap import bubblewrap_problem

needs_bwrap = pytest.mark.skipif(bubblewrap_problem() is not None, reason=f"no bubblewrap: {bubblewrap_problem()}")
NAMES = ["line 1", "line 2", "line 3"]


def passed(name: str) -> dict:
    return {"event": "test", "name": name, "passed": True, "message": ""}


def test_more_results_than_tests_is_invalid_and_scores_zero():
    forged = summarise([passed("line 1")] * 10 + [{"event": "done"}], NAMES, 0, False, 10)
    assert forged.status == "invalid" and forged.passed == 0 and forged.fraction == 0.0
    assert "already has one" in forged.errors[0]


def test_unknown_test_names_are_invalid():
    forged = summarise([passed("line 1"), passed("test_invented"), {"event": "done"}], NAMES, 0, False, 10)
    assert forged.status == "invalid" and "'test_invented', which is not a test" in forged.errors[0]


def test_honest_results_count_and_repeated_names_in_the_tests_are_allowed():
    events = [passed("line 1"), passed("test_a"), {"event": "test", "name": "test_a", "passed": False,
                                                   "message": "boom"}, {"event": "done"}]
    result = summarise(events, ["line 1", "test_a", "test_a"], 0, False, 10)  # test_a defined twice
    assert (result.status, result.passed, result.total) == ("failed", 2, 3)
    assert result.failures == ["test_a: boom"]


def test_missing_done_is_a_crash_and_score_is_clamped():
    assert summarise([passed("line 1")], NAMES, -9, False, 10).status == "crashed"
    assert SandboxResult(status="passed", passed=5, total=3).fraction == 1.0
    assert SandboxResult(status="failed", passed=-2, total=3).fraction == 0.0


def test_unparsable_tests_never_start_a_sandbox():
    result = run_python("x = 1", "assert (")
    assert result.status == "error" and result.errors[0].startswith("parse: SyntaxError in tests.py:1")


@needs_bwrap
@pytest.mark.parametrize(("code", "tests"), [
    ("def srt(xs):\n    xs.sort()\n", "a = [3, 1, 2]\nsrt(a)\nassert a == [1, 2, 3]\n"),
    ("def rot(m):\n    m[:] = [list(r) for r in zip(*m[::-1])]\n",
     "m = [[1, 2], [3, 4]]\nrot(m)\nassert m == [[3, 1], [4, 2]]\n"),
    ("from collections import Counter, namedtuple\nP = namedtuple('P', 'x y')\ndef count(s):\n    return Counter(s)\n"
     "def point():\n    return P(1, 2)\n",
     "assert count('aab') == {'a': 2, 'b': 1}\nassert point() == (1, 2)\nx, y = point()\nassert point().y == y == 2\n"),
    ("def mean(xs):\n    return sum(xs) / len(xs)\nMOD = 7\n", "import math\nassert mean([1, 3]) == 2\n"
     "assert math.isclose(mean([1, 2]), 1.5)\nassert MOD == 7\nfrom solution import *\nassert mean([MOD]) == 7\n"),
    ("def gen(n):\n    yield from range(n)\n", "assert list(gen(3)) == [0, 1, 2]\nassert sum(gen(4)) == 6\n"),
    ("class Empty(ValueError):\n    pass\nclass Stack:\n    def __init__(self):\n        self.items = []\n"
     "    def push(self, x):\n        self.items.append(x)\n    def pop(self):\n        if not self.items:\n"
     "            raise Empty('empty')\n        return self.items.pop()\n    def __len__(self):\n"
     "        return len(self.items)\n",
     "s = Stack()\ns.push(1)\nassert len(s) == 1 and isinstance(s, Stack)\nassert s.pop() == 1\n"
     "try:\n    s.pop()\nexcept Empty as e:\n    assert str(e) == 'empty' and isinstance(e, ValueError)\n"
     "else:\n    raise AssertionError('no exception')\nassert s.items == []\n"),
])
def test_solution_objects_work_through_the_channel(code, tests):
    result = run_python(code, tests)
    assert result.status == "passed", result


@needs_bwrap
def test_functions_from_the_tests_cannot_cross_and_the_reason_says_why():
    result = run_python("def apply(f, x):\n    return f(x)\n", "assert apply(lambda v: v + 1, 1) == 2\n")
    assert result.status == "failed" and "cannot be passed" in result.failures[0]


@needs_bwrap
def test_output_of_solution_and_tests_is_captured():
    result = run_python("print('from the solution')\n", "print('from the tests')\nassert True\n")
    assert result.status == "passed"
    assert "from the solution" in result.stdout and "from the tests" in result.stdout



@needs_bwrap
def test_solution_process_ending_is_reported():
    killed = run_python("import signal\nsignal.raise_signal(signal.SIGKILL)\n", "assert True")
    assert (killed.status, killed.errors) == ("killed", ["killed by SIGKILL"])
    exited = run_python("import os\ndef f():\n    os._exit(3)\n", "assert f() is None\nassert f() is None\n")
    assert exited.status == "error" and exited.errors == ["solution: the solution process exited with code 3"]
    assert all("exited with code 3" in failure for failure in exited.failures)
