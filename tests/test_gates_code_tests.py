"""The code_tests gate and its sandbox: passing and failing tests, and code that must not escape."""

import os
import pwd
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from synthdspy.gates.code_tests import CodeTestsGate, CodeTestsParams, extract_code
from synthdspy.gates.sandbox import UNSHARE, network_namespace_available, run_python
from synthdspy.records import Record
from synthdspy.registry import GATES

REAL_HOME = pwd.getpwuid(os.getuid()).pw_dir

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
        CodeTestsParams(network="none")


def test_extract_code_prefers_python_block():
    text = "```text\nnot code\n```\n```python\nx = 1\n```\n```py\ny = 2\n```"
    assert extract_code(text) == "x = 1\n"
    assert extract_code("```\nz = 3\n```") == "z = 3\n"
    assert extract_code("w = 4") == "w = 4"


def test_passing_code_counts_every_test_style():
    verdict = CodeTestsGate()(record(SOLUTION, TESTS))
    assert verdict.passed, verdict.reason
    assert verdict.score == 1.0
    assert verdict.reason == "4/4 tests passed"


def test_failing_tests_give_fraction_and_first_failure():
    wrong = "def add(a, b):\n    return a - b\n"
    verdict = CodeTestsGate()(record(wrong, TESTS))
    assert not verdict.passed
    assert verdict.score == pytest.approx(1 / 4)  # only test_zero passes: add(0, 0) == 0
    assert "line 2" in verdict.reason and "assert add(1, 2) == 3" in verdict.reason
    lenient = CodeTestsGate(min_pass_fraction=0.25)(record(wrong, TESTS))
    assert lenient.passed


def test_missing_tests_or_code_fail_clearly():
    assert CodeTestsGate()(record(SOLUTION, "")).reason == "no tests in metadata.tests"
    assert CodeTestsGate(tests_key="unit")(record(SOLUTION, TESTS)).reason == "no tests in metadata.unit"
    assert CodeTestsGate()(record("", TESTS)).reason == "no code in output"
    assert CodeTestsGate(tests_key="unit")(record(SOLUTION, TESTS, key="unit")).passed


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
    "read_home_pwd": (
        "import os, pwd\nhome = pwd.getpwuid(os.getuid()).pw_dir\nopen(os.path.join(home, '.profile')).read()\n",
        "filesystem",
    ),
    "list_root": ("import os\nnames = os.listdir('/root')\n", "filesystem"),
    "write_outside": ("open('/tmp/synthdspy-sandbox-escape.txt', 'w').write('x')\n", "filesystem"),
    "subprocess": ("import subprocess\nsubprocess.run(['ls', '/'])\n", "process"),
    "ctypes_call": ("import ctypes\nctypes.CDLL(None).system(b'ls /')\n", "native"),
    "ctypes_load": ("import ctypes\nctypes.CDLL('libc.so.6')\n", "native"),
}


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_escapes_are_blocked_and_named(case):
    code, kind = ESCAPES[case]
    start = time.perf_counter()
    verdict = CodeTestsGate(timeout_s=5)(record(code, "assert True"))
    assert time.perf_counter() - start < 4
    assert not verdict.passed
    assert verdict.diagnosis == "BLOCKED"
    assert verdict.reason.startswith(f"blocked: {kind}"), verdict.reason
    assert not Path("/tmp/synthdspy-sandbox-escape.txt").exists()


def test_home_is_the_box():
    code = "import os\nopen(os.path.expanduser('~/note.txt'), 'w').write('kept inside')\n"
    tests = "import os\nassert os.path.expanduser('~') == os.getcwd()\nassert open('note.txt').read() == 'kept inside'"
    verdict = CodeTestsGate()(record(code, tests))
    assert verdict.passed, verdict.reason


@pytest.mark.parametrize("code", ["while True:\n    pass\n", "import time\ntime.sleep(60)\n"])
def test_infinite_loop_hits_the_wall_clock_limit(code):
    start = time.perf_counter()
    verdict = CodeTestsGate(timeout_s=1.0)(record(code, "assert True"))
    elapsed = time.perf_counter() - start
    assert not verdict.passed and verdict.diagnosis == "TIMEOUT", verdict.reason
    assert 1.0 <= elapsed < 10.0  # far below the 60 s the code asks for, with room for a loaded machine


def test_timeout_keeps_tally_of_tests_that_ran():
    tests = "assert add(1, 1) == 2\nwhile True:\n    pass\nassert add(2, 2) == 4\n"
    result = run_python("def add(a, b):\n    return a + b\n", tests, timeout_s=1.0)
    assert result.status == "timeout"
    assert (result.passed, result.total) == (1, 2)


def test_memory_and_output_limits():
    big = run_python("x = bytearray(1024 * 2**20)\n", "assert True", memory_mb=256)
    assert big.status == "error" and "MemoryError" in big.errors[0]
    flood = run_python("while True:\n    print('x' * 10000)\n", "assert True", max_file_mb=1, timeout_s=5)
    assert flood.status == "error" and "File too large" in flood.errors[0]


def test_site_packages_are_opt_in():
    code, tests = "import numpy as np\n", "assert np.linalg.inv(np.eye(3)).sum() == 3\n"
    assert run_python(code, tests).status == "error"
    assert run_python(code, tests, site_packages=True).status == "passed"


def test_hook_only_mode_still_blocks_network():
    result = run_python("import socket\nsocket.socket()\n", "assert True", network="hook")
    assert result.isolation == "hook"
    assert result.status == "blocked" and result.violations[0].startswith("network")


@pytest.mark.skipif(not network_namespace_available(), reason="no unprivileged user namespaces here")
def test_namespace_mode_leaves_only_loopback():
    result = run_python("import socket\nsocket.socket()\n", "assert True", network="namespace")
    assert result.isolation == "namespace" and result.status == "blocked"
    # what the namespace guarantees without the hook: no interface but loopback
    script = "print(open('/proc/net/dev').read())"
    done = subprocess.run([*UNSHARE, sys.executable, "-c", script], capture_output=True, text=True, check=True)
    interfaces = [line.split(":")[0].strip() for line in done.stdout.splitlines() if ":" in line]
    assert interfaces == ["lo"]


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
