"""The attacks of issue 11 on the code_tests sandbox, each checked from outside the sandbox.

Every attacking solution fails its tests, so a pass can only come from a forged verdict. The
attacks that matter get around the audit hook first: a child process started with
``_posixsubprocess.fork_exec`` (through ``multiprocessing.util.spawnv_passfds``, which raises no
audit event) is a fresh interpreter without the hook, and ``gc.get_objects()`` reaches the hook's
allow-list. What stops them is bubblewrap, so these tests need it (CI installs it).
"""

import os
import secrets
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from synthdspy.gates.code_tests import CodeTestsGate
from synthdspy.gates.sandbox import SandboxResult, run_python
from synthdspy.gates.sandbox_bwrap import bubblewrap_problem
from synthdspy.records import Record

pytestmark = pytest.mark.skipif(bubblewrap_problem() is not None, reason=f"no bubblewrap: {bubblewrap_problem()}")

TESTS = "assert add(1, 2) == 3\nassert add(2, 2) == 4\nassert add(0, 5) == 5\n"
SPAWN = """
import os, sys
from multiprocessing.util import spawnv_passfds  # _posixsubprocess.fork_exec: no audit event

def spawn(script):
    python = os.fsencode(sys.executable)
    return spawnv_passfds(python, [python, b"-c", script.encode()], ())
"""
PROBE = r"""
import os, socket
def attempt(label, action):
    try:
        print(label, "OK", repr(action())[:200], flush=True)
    except BaseException as exc:
        print(label, "FAILED", type(exc).__name__, flush=True)
def api_keys():
    found = [f"{k}={v}" for k, v in os.environ.items() if "API_KEY" in k]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            found += [e.decode() for e in open(f"/proc/{pid}/environ", "rb").read().split(b"\0") if b"API_KEY" in e]
        except OSError:
            pass
    return found
def write(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").write("escaped")
attempt("uid", os.getuid)
attempt("caps", lambda: [l for l in open("/proc/self/status") if l.startswith("CapEff")][0].split()[1])
attempt("passwd", lambda: open("/etc/passwd").read())
attempt("host_file", lambda: open(HOST_FILE).read())
attempt("write_tmp", lambda: write(MARKER_TMP))
attempt("write_var", lambda: write(MARKER_VAR))
attempt("connect", lambda: socket.create_connection(("127.0.0.1", PORT), timeout=1).close())
attempt("environ", api_keys)
attempt("id", lambda: os.waitpid(os.posix_spawn("/usr/bin/id", ["id"], {}), 0))
attempt("sh", lambda: os.waitpid(os.posix_spawn("/bin/sh", ["sh", "-c", "id"], {}), 0))
"""


def record(code: str, tests: str = TESTS) -> Record:
    return Record(id="r", task="code", instruction="write add", output=code, metadata={"tests": tests})


def child(script: str, wait: bool = True) -> str:
    """Solution code that runs ``script`` in an unaudited child interpreter (and waits for it)."""
    wait_line = "os.waitpid(pid, 0)\n" if wait else ""
    return f"{SPAWN}\npid = spawn({script!r})\n{wait_line}"


def findings(result: SandboxResult) -> dict[str, str]:
    """``label -> OK ...|FAILED ExcType`` from a probe's output."""
    lines = [line.split(" ", 1) for line in result.stdout.splitlines() if " " in line]
    return {label: rest for label, rest in lines}


def processes_with(token: str) -> list[int]:
    """PIDs on this machine whose command line contains ``token``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if token.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            continue
    return found


def watch(token: str, stop: threading.Event, seen: list[int]) -> None:
    """Record the largest number of processes with ``token`` until ``stop`` is set."""
    while not stop.is_set():
        seen.append(len(processes_with(token)))
        time.sleep(0.05)


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """One run of :data:`PROBE` in an unaudited child, with a secret in this process's environment,
    a loopback listener, a host file to steal and two host paths to write."""
    host = tmp_path_factory.mktemp("host")
    host_file = host / "private.txt"
    host_file.write_text("host-only content")
    token = secrets.token_hex(6)
    markers = [host / "escaped.txt", Path(f"/var/tmp/synthdspy-escape-{token}/escaped.txt")]
    secret = f"sk-fake-{token}"
    os.environ["SYNTHDSPY_FAKE_API_KEY"] = secret
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        script = (f"HOST_FILE, MARKER_TMP, MARKER_VAR, PORT = {str(host_file)!r}, {str(markers[0])!r}, "
                  f"{str(markers[1])!r}, {listener.getsockname()[1]}\n{PROBE}")
        try:
            result = run_python(child(script), TESTS, timeout_s=20)
        finally:
            del os.environ["SYNTHDSPY_FAKE_API_KEY"]
        connected = bool(select.select([listener], [], [], 0.2)[0])
    yield dict(result=result, found=findings(result), markers=markers, connected=connected, secret=secret)


def test_fork_exec_child_runs_but_the_solution_still_fails(probe):
    assert probe["result"].status == "failed" and probe["result"].isolation == "bubblewrap"  # add is not defined
    assert probe["result"].passed == 0
    assert probe["found"]["uid"].startswith("OK")  # the unaudited child did run


def test_fork_exec_child_is_unprivileged_and_has_no_programs(probe):
    uid = int(probe["found"]["uid"].split()[1])
    assert uid != 0 and (os.getuid() != 0 or uid == 65534)
    assert probe["found"]["caps"] == "OK '0000000000000000'"
    assert probe["found"]["id"] == "FAILED FileNotFoundError"
    assert probe["found"]["sh"] == "FAILED FileNotFoundError"


def test_fork_exec_child_cannot_read_etc_passwd_or_host_files(probe):
    assert probe["found"]["passwd"] == "FAILED FileNotFoundError"
    assert probe["found"]["host_file"] == "FAILED FileNotFoundError"
    assert "host-only content" not in probe["result"].stdout


def test_fork_exec_child_cannot_write_outside_the_box(probe):
    assert probe["found"]["write_var"] == "FAILED OSError"  # read-only root
    for marker in probe["markers"]:
        assert not marker.exists(), marker  # /tmp inside is the box, not this machine's /tmp


def test_fork_exec_child_cannot_reach_a_loopback_listener(probe):
    assert probe["found"]["connect"] == "FAILED ConnectionRefusedError"  # its own loopback
    assert not probe["connected"]


def test_fork_exec_child_cannot_read_the_parents_environment(probe):
    assert probe["found"]["environ"] == "OK []"  # no API_KEY in its own or any readable /proc/PID/environ
    assert probe["secret"] not in probe["result"].stdout + probe["result"].stderr


def run_watched(script: str, tests: str, token: str) -> tuple[bool, int]:
    """Run ``script`` (started as an unaudited child) through the gate while counting, from outside,
    the processes whose command line holds ``token``: (verdict passed, most processes seen)."""
    stop, seen = threading.Event(), [0]
    watcher = threading.Thread(target=watch, args=(token, stop, seen))
    watcher.start()
    try:
        verdict = CodeTestsGate(timeout_s=10)(record(child(script, wait=False), tests))
    finally:
        stop.set()
        watcher.join()
    return verdict.passed, max(seen)


def test_setsid_child_does_not_outlive_the_gate():
    token = secrets.token_hex(6)
    script = f"import os, time\nos.setsid()\nwhile True:\n    time.sleep(0.1)  # {token}\n"
    tests = "import time\ntime.sleep(1)\n" + TESTS  # long enough to see the child from here
    passed, most = run_watched(script, tests, token)
    assert not passed
    assert most >= 1  # the detached child was running during the gate
    time.sleep(0.3)
    assert processes_with(token) == []  # and is gone once the gate returned


def test_fork_bomb_is_capped_and_ended():
    token = secrets.token_hex(6)
    bomb = f"import os, time\nwhile True:  # {token}\n    try:\n        os.fork()\n    except OSError:\n" \
           "        time.sleep(0.05)\n"
    passed, most = run_watched(bomb, "import time\ntime.sleep(1.5)\n" + TESTS, token)
    assert not passed
    assert 5 <= most <= 32  # forks happened, and stopped at the sandbox's process limit
    time.sleep(0.3)
    assert processes_with(token) == []


def test_widened_audit_hook_still_cannot_read_or_write_outside(tmp_path):
    marker = tmp_path / "escaped.txt"
    code = f"""
import gc
for f in gc.get_objects():
    if callable(f) and getattr(f, "__name__", "") in ("hook", "allowed") and getattr(f, "__closure__", None):
        for name, cell in zip(f.__code__.co_freevars, f.__closure__):
            if name == "box":
                cell.cell_contents = "/"
            elif name == "readable":
                cell.cell_contents.append("/")
for label, action in [("passwd", lambda: open("/etc/passwd").read()),
                      ("home", lambda: open({os.path.expanduser("~/.bashrc")!r}).read()),
                      ("write", lambda: open({str(marker)!r}, "w").write("x"))]:
    try:
        action()
        print(label, "OK")
    except Exception as exc:
        print(label, "FAILED", type(exc).__name__)
"""
    result = run_python(code, TESTS)
    found = findings(result)
    assert found["passwd"] == "FAILED FileNotFoundError"  # the hook was widened: the OS said no
    assert found["home"] == "FAILED FileNotFoundError"
    assert found["write"].startswith("FAILED")
    assert result.passed == 0 and result.status == "failed" and not marker.exists()


def test_writing_pass_events_to_every_descriptor_is_ignored():
    forged = ('{"event": "test", "name": "line 1", "passed": true, "message": ""}\n' * 10) + '{"event": "done"}\n'
    script = f"""
import os
line = {forged.encode()!r}
for fd in range(1024):
    try:
        os.write(fd, line)
    except OSError:
        pass
for pid in filter(str.isdigit, os.listdir("/proc")):
    for fd in range(64):
        try:
            with open(f"/proc/{{pid}}/fd/{{fd}}", "wb") as f:
                f.write(line)
            print("wrote", pid, fd)
        except OSError:
            pass
"""
    code = child(script) + f"for fd in range(1024):\n    try:\n        os.write(fd, {forged.encode()!r})\n" \
                           "    except OSError:\n        pass\n"
    verdict = CodeTestsGate()(record(code))
    assert not verdict.passed and verdict.score == 0.0
    assert "0/3 tests passed" in verdict.reason


def test_patching_the_harness_changes_nothing():
    code = """
import builtins, sys
import __main__
__main__.run_tests = lambda *args, **kwargs: None
builtins.exec = lambda *args, **kwargs: None
builtins.AssertionError = type("AssertionError", (Exception,), {})
def test_sum():
    pass
def add(a, b):
    return 0
"""
    tests = TESTS + "def test_sum():\n    assert add(2, 3) == 5\n"
    verdict = CodeTestsGate()(record(code, tests))
    assert not verdict.passed
    assert verdict.score == pytest.approx(0.0)
    assert verdict.reason.startswith("0/4 tests passed")


@pytest.mark.parametrize("result", ["AlwaysEqual()", "AlwaysEqualInt(0)", "[AlwaysEqual()]"])
def test_always_equal_object_fails(result):
    code = f"""
class AlwaysEqual:
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = object.__hash__
class AlwaysEqualInt(int):
    __eq__ = AlwaysEqual.__eq__
    __hash__ = int.__hash__
def add(a, b):
    return {result}
"""
    tests = TESTS if result != "[AlwaysEqual()]" else "assert add(1, 2) == [3]\n"
    verdict = CodeTestsGate()(record(code, tests))
    assert not verdict.passed and verdict.score == 0.0, verdict.reason


def test_solution_cannot_read_the_tests():
    expected = str(secrets.randbelow(10**12) + 10**12)
    script = f"""
import os
needle, found = str({int(expected) - 1} + 1).encode(), []  # not spelled out in this code
paths = ["/proc/self/fd/0"]
for pid in filter(str.isdigit, os.listdir("/proc")):
    paths += [f"/proc/{{pid}}/{{name}}" for name in ("cmdline", "environ", "mem", "fd/0")]
for root, _, files in os.walk("/box"):
    paths += [os.path.join(root, f) for f in files]
for path in paths:
    try:
        with open(path, "rb") as f:
            if needle in f.read(10**6):
                found.append(path)
    except OSError:
        pass
print("found", found)
"""
    result = run_python(child(script) + "def add(a, b):\n    return a + b\n", f"assert add(1, 2) == {expected}\n")
    assert "found []" in result.stdout
    assert result.status == "failed"


def test_killing_the_harness_fails_the_run():
    code = SPAWN + "pid = spawn(f'import os, signal\\nos.kill({os.getppid()}, signal.SIGKILL)')\n" \
        "os.waitpid(pid, 0)\ndef add(a, b):\n    return a + b\n"  # the worker's parent is the harness
    result = run_python(code, TESTS)
    assert result.status == "crashed" and result.passed == 0
