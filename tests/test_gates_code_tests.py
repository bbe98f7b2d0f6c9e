"""The code_tests gate and its sandbox: passing and failing tests, limits, the audit hook's refusals,
and the refusal to run without bubblewrap. The attacks on the sandbox are in test_sandbox_attacks.py."""

import os
import pwd
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from synthdspy.gates import code_tests, sandbox_bwrap
from synthdspy.gates.code_tests import CodeTestsGate, CodeTestsParams, extract_code
from synthdspy.gates.sandbox import SandboxUnavailable, run_python
from synthdspy.records import Record
from synthdspy.registry import GATES

REAL_HOME = pwd.getpwuid(os.getuid()).pw_dir
ESCAPE = Path("/var/tmp/synthdspy-sandbox-escape.txt")
needs_bwrap = pytest.mark.skipif(sandbox_bwrap.bubblewrap_problem() is not None,
                                 reason=f"bubblewrap does not work here: {sandbox_bwrap.bubblewrap_problem()}")

SOLUTION = '''Here is the function:

```python
def add(a, b):
    return a + b
```
'''
TESTS = """
assert add(1, 2) == 3
assert add(-1, 1) == 0

def test_zero():
    assert add(0, 0) == 0

class TestStrings:
    def test_concat(self):
        from solution import add as plus
        assert plus("a", "b") == "ab"
"""


def record(output: str, tests: str = "assert True", key: str = "tests") -> Record:
    return Record(id="r", task="code", instruction="write add", output=output, metadata={key: tests})


def test_registered_with_validated_params():
    assert GATES["code_tests"].cls is CodeTestsGate
    with pytest.raises(ValueError):
        CodeTestsParams(timeout_s=0)
    with pytest.raises(ValueError):
        CodeTestsParams(network="hook")  # gone: the sandbox always has its own network namespace
    assert CodeTestsParams().allow_unsandboxed is False


def test_extract_code_prefers_python_block():
    text = "```text\nnot code\n```\n```python\nx = 1\n```\n```py\ny = 2\n```"
    assert extract_code(text) == "x = 1\n"
    assert extract_code("```\nz = 3\n```") == "z = 3\n"
    assert extract_code("w = 4") == "w = 4"


@needs_bwrap
def test_passing_code_counts_every_test_style():
    verdict = CodeTestsGate()(record(SOLUTION, TESTS))
    assert verdict.passed, verdict.reason
    assert verdict.score == 1.0
    assert verdict.reason == "4/4 tests passed"
    assert verdict.details == {"isolation": "bubblewrap"}


@needs_bwrap
def test_failing_tests_give_fraction_and_first_failure():
    wrong = "def add(a, b):\n    return a - b\n"
    verdict = CodeTestsGate()(record(wrong, TESTS))
    assert not verdict.passed
    assert verdict.score == pytest.approx(1 / 4)  # only test_zero passes: add(0, 0) == 0
    assert "line 2" in verdict.reason and "assert add(1, 2) == 3" in verdict.reason
    lenient = CodeTestsGate(min_pass_fraction=0.25)(record(wrong, TESTS))
    assert lenient.passed


@needs_bwrap
def test_missing_tests_or_code_fail_clearly():
    assert CodeTestsGate()(record(SOLUTION, "")).reason == "no tests in metadata.tests"
    assert CodeTestsGate(tests_key="unit")(record(SOLUTION, TESTS)).reason == "no tests in metadata.unit"
    assert CodeTestsGate()(record("", TESTS)).reason == "no code in output"
    assert CodeTestsGate(tests_key="unit")(record(SOLUTION, TESTS, key="unit")).passed


@needs_bwrap
def test_syntax_and_import_errors_fail():
    broken = CodeTestsGate()(record("def add(a, b) return a", TESTS))
    assert not broken.passed and broken.diagnosis == "ERROR" and "SyntaxError" in broken.reason
    raising = CodeTestsGate()(record("raise ValueError('nope')", TESTS))
    assert not raising.passed and "ValueError: nope" in raising.reason


ESCAPES = {
    "socket": ("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n", "network"),
    "connect_caught": (
        "import socket\ntry:\n    socket.create_connection(('example.com', 80), timeout=1)\n"
        "except Exception:\n    pass\n",
        "network",
    ),
    "read_home": (f"data = open({os.path.join(REAL_HOME, '.bashrc')!r}).read()\n", "filesystem"),
    "read_etc_passwd": ("data = open('/etc/passwd').read()\n", "filesystem"),
    "list_root": ("import os\nnames = os.listdir('/root')\n", "filesystem"),
    "write_outside": (f"open({str(ESCAPE)!r}, 'w').write('x')\n", "filesystem"),
    "subprocess": ("import subprocess\nsubprocess.run(['ls', '/'])\n", "process"),
    "ctypes_call": ("import ctypes\nctypes.CDLL(None).system(b'ls /')\n", "native"),
    "ctypes_load": ("import ctypes\nctypes.CDLL('libc.so.6')\n", "native"),
}


@needs_bwrap
@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_audit_hook_still_blocks_and_names_escapes(case):
    """Defence in depth: inside bubblewrap the audit hook still refuses and names what it sees."""
    code, kind = ESCAPES[case]
    start = time.perf_counter()
    verdict = CodeTestsGate(timeout_s=5)(record(code, "assert True"))
    assert time.perf_counter() - start < 4
    assert not verdict.passed
    assert verdict.diagnosis == "BLOCKED"
    assert verdict.reason.startswith(f"blocked: {kind}"), verdict.reason
    assert not ESCAPE.exists()


@needs_bwrap
def test_home_is_the_box():
    code = "import os\nopen(os.path.expanduser('~/note.txt'), 'w').write('kept inside')\n"
    tests = "import os\nassert os.path.expanduser('~') == os.getcwd()\nassert open('note.txt').read() == 'kept inside'"
    verdict = CodeTestsGate()(record(code, tests))
    assert verdict.passed, verdict.reason


@needs_bwrap
@pytest.mark.parametrize("code", ["while True:\n    pass\n", "import time\ntime.sleep(60)\n"])
def test_infinite_loop_hits_the_wall_clock_limit(code):
    start = time.perf_counter()
    verdict = CodeTestsGate(timeout_s=1.0)(record(code, "assert True"))
    elapsed = time.perf_counter() - start
    assert not verdict.passed and verdict.diagnosis == "TIMEOUT", verdict.reason
    assert 1.0 <= elapsed < 10.0  # far below the 60 s the code asks for, with room for a loaded machine


@needs_bwrap
def test_timeout_keeps_tally_of_tests_that_ran():
    tests = "assert add(1, 1) == 2\nwhile True:\n    pass\nassert add(2, 2) == 4\n"
    result = run_python("def add(a, b):\n    return a + b\n", tests, timeout_s=1.0)
    assert result.status == "timeout"
    assert (result.passed, result.total) == (1, 2)


@needs_bwrap
def test_memory_and_output_limits():
    big = run_python("x = bytearray(1024 * 2**20)\n", "assert True", memory_mb=256)
    assert big.status == "error" and "MemoryError" in big.errors[0]
    huge = CodeTestsGate()(record("x = bytearray(8 * 2**30)\n"))  # 8 GB against the default 512 MiB
    assert not huge.passed and huge.diagnosis == "ERROR" and "MemoryError" in huge.reason
    flood = run_python("while True:\n    print('x' * 10000)\n", "assert True", max_file_mb=1, timeout_s=5)
    assert flood.status == "error" and "File too large" in flood.errors[0]


@needs_bwrap
def test_site_packages_are_opt_in():
    code, tests = "import numpy as np\n", "assert np.linalg.inv(np.eye(3)).sum() == 3\n"
    assert run_python(code, tests).status == "error"
    assert run_python(code, tests, site_packages=True).status == "passed"


def test_refuses_without_bubblewrap_unless_allowed(monkeypatch):
    monkeypatch.setattr(code_tests, "bubblewrap_problem", lambda: "bwrap not found on PATH")
    with pytest.raises(SandboxUnavailable) as refused:
        CodeTestsGate()
    message = str(refused.value)
    assert "\n" not in message and "apt-get install bubblewrap" in message and "allow_unsandboxed" in message
    verdict = CodeTestsGate(allow_unsandboxed=True)(record(SOLUTION, TESTS))  # unsafe, and says so
    assert verdict.passed and verdict.details == {"isolation": "none"}


def test_missing_bwrap_is_detected(monkeypatch):
    sandbox_bwrap.bubblewrap_problem.cache_clear()
    monkeypatch.setattr(sandbox_bwrap.shutil, "which", lambda tool: None)
    try:
        assert sandbox_bwrap.bubblewrap_problem().startswith("bwrap")
        with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
            run_python("x = 1", "assert x == 1")
    finally:
        sandbox_bwrap.bubblewrap_problem.cache_clear()


def test_unsandboxed_run_keeps_the_harness_and_the_hook():
    result = run_python("import socket\nsocket.socket()\n", "assert True", unsandboxed=True)
    assert result.isolation == "none"
    assert result.status == "blocked" and result.violations[0].startswith("network")
    wrong = run_python("def add(a, b):\n    return a - b\n", "assert add(1, 2) == 3\nassert add(0, 0) == 0\n",
                       unsandboxed=True)
    assert (wrong.status, wrong.passed, wrong.total) == ("failed", 1, 2)


@needs_bwrap
def test_gate_runs_concurrently_without_harming_the_caller():
    gate = CodeTestsGate(timeout_s=1.5)
    records = [
        record(SOLUTION, TESTS),
        record("while True:\n    pass\n"),
        record("import socket\nsocket.socket()\n"),
        record("import os\nos.listdir('/root')\n"),
    ]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        verdicts = list(pool.map(gate, records))
    assert time.perf_counter() - start < 4
    assert [v.passed for v in verdicts] == [True, False, False, False]
    assert [v.diagnosis for v in verdicts] == [None, "TIMEOUT", "BLOCKED", "BLOCKED"]


@pytest.mark.parametrize("prefix, box_is_tmp", [("/tmp/ci/main/.venv", False), ("/opt/venv", True)])
def test_a_virtual_environment_under_tmp_is_bound_and_tmp_is_not_replaced(monkeypatch, tmp_path, prefix, box_is_tmp):
    """A checkout (and its .venv) under /tmp, as a CI clone may be: binding it creates /tmp, so the
    box cannot also be linked there (bwrap: "Can't make symlink at /tmp")."""
    monkeypatch.setattr(sandbox_bwrap, "python_paths", lambda site_packages: ([prefix], []))
    monkeypatch.setattr(sandbox_bwrap.os, "geteuid", lambda: 1000)  # no root staging
    args = sandbox_bwrap.wrap(["python"], tmp_path, 1 << 20, site_packages=True)
    assert ["--ro-bind", prefix, prefix] == args[args.index(prefix) - 1: args.index(prefix) + 2]
    assert ("/tmp" in [args[i + 2] for i, a in enumerate(args) if a == "--symlink"]) is box_is_tmp
    assert args[args.index("TMPDIR") + 1] == sandbox_bwrap.BOX
