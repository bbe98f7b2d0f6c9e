"""The ``pot_math`` task: programs executed in the code_tests sandbox, their results checked by
``math_answer``.

The GSM8K test uses 50 hand-written programs (``tests/data/pot_gsm8k_programs.jsonl``, one per test
problem 0-49, written from the problem text); they run through the real bubblewrap path. Tests that
use the offline simulator or a scripted endpoint are pipeline tests: the programs there are not the
output of a model and say nothing about quality.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dspy
import pytest
from dspy.utils.dummies import DummyLM
from dspy.utils.exceptions import AdapterParseError

from synthdspy.catalog import GATES, TASKS
from synthdspy.gates import sandbox_bwrap
from synthdspy.gates.math_answer import MathAnswerGate
from synthdspy.gates.program_result import ProgramRun, decimal_text, run_solution
from synthdspy.records import Record, Seed, SeedFieldError
from synthdspy.simulator import SimLM, Simulator
from synthdspy.simulator.engine import SimCall, SimReply

ROOT = Path(__file__).parent.parent
PROGRAMS = ROOT / "tests" / "data" / "pot_gsm8k_programs.jsonl"
GSM8K_TEST = ROOT.parent / "shared" / "data" / "gsm8k" / "test.jsonl"
WORKERS = 2

needs_bwrap = pytest.mark.skipif(sandbox_bwrap.bubblewrap_problem() is not None,
                                 reason=f"bubblewrap does not work here: {sandbox_bwrap.bubblewrap_problem()}")
needs_gsm8k = pytest.mark.usefixtures("needs_shared_data")

HOSTILE = {
    "write_outside": ("import os\ndef solution():\n    with open({path!r}, 'w') as f:\n        f.write('x')\n"
                      "    return 1\n", "blocked", "filesystem"),
    "read_shadow": ("def solution():\n    return len(open('/etc/shadow').read())\n", "blocked", "/etc/shadow"),
    "network": ("import socket\ndef solution():\n    socket.create_connection(('93.184.216.34', 80), timeout=2)\n"
                "    return 1\n", "blocked", "network"),
    "fork_bomb": ("import os\ndef solution():\n    while True:\n        os.fork()\n", "blocked", "os.fork"),
    "subprocess": ("import subprocess\ndef solution():\n    return int(subprocess.check_output(['echo', '7']))\n",
                   "blocked", "process"),
    "infinite_loop": ("def solution():\n    n = 0\n    while True:\n        n += 1\n", "timeout", "wall-clock"),
    "crash": ("def solution():\n    return 1 / 0\n", "error", "ZeroDivisionError"),
    "exits": ("import sys\ndef solution():\n    sys.exit(18)\n", "error", "SystemExit"),
    "no_solution": ("answer = 18\n", "error", "NameError"),
    "not_python": ("The answer is 18.", "error", "SyntaxError"),
    "returns_text": ("def solution():\n    return '18'\n", "error", "returned str"),
    "returns_nan": ("def solution():\n    return float('nan')\n", "not_a_number", "nan"),
}


def load_programs() -> list[dict]:
    return [json.loads(line) for line in PROGRAMS.read_text().splitlines()]


def gsm8k_test() -> list[dict]:
    return [json.loads(line) for line in GSM8K_TEST.read_text().splitlines()]


def change_final_line(program: str) -> str:
    """The program with its final line, ``return EXPR``, changed to return ``EXPR + 1``."""
    *body, last = program.rstrip("\n").split("\n")
    indent, _, expr = last.partition("return ")
    assert expr, f"the final line is not a return: {last!r}"
    return "\n".join([*body, f"{indent}return ({expr}) + 1"]) + "\n"


def program_record(run: ProgramRun, gold: str) -> Record:
    """The record pot_math builds from a run (metadata as :class:`PotMathTask` writes it)."""
    metadata = {"program_status": run.status, "gold_answer": gold}
    if run.answer is not None:
        metadata["program_result"] = run.answer
    else:
        metadata["program_result_error"] = run.reason
    return Record(id="r", task="pot_math", output="", metadata=metadata)


def run_all(programs: list[str], **limits) -> list[ProgramRun]:
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(lambda p: run_solution(p, **limits), programs))


# ---- the done-when check: 50 GSM8K test problems ----------------------------------------------


def test_the_program_file_covers_test_problems_0_to_49_each_defining_solution():
    programs = load_programs()
    assert [p["index"] for p in programs] == list(range(50))
    assert all(p["program"].startswith("def solution():") for p in programs)
    assert all(p["program"].rstrip().split("\n")[-1].strip().startswith("return ") for p in programs)


@needs_bwrap
@needs_gsm8k
def test_hand_written_programs_pass_and_the_same_programs_with_a_changed_final_line_fail():
    problems, programs = gsm8k_test(), load_programs()
    for p in programs:  # the programs are keyed by the test file's order
        assert problems[p["index"]]["question"] == p["question"]
    golds = [problems[p["index"]]["answer"] for p in programs]
    correct = [p["program"] for p in programs]
    changed = [change_final_line(p) for p in correct]
    runs = run_all(correct + changed)
    gate = MathAnswerGate(answer_key="program_result")
    verdicts = [gate(program_record(run, gold)) for run, gold in zip(runs, golds + golds, strict=True)]
    right, wrong = verdicts[:50], verdicts[50:]
    assert [r.status for r in runs] == ["ok"] * 100  # every program ran; the results decide
    failing = [(p["index"], v.reason) for p, v in zip(programs, right, strict=True) if not v.passed]
    assert not failing
    passing = [(p["index"], v.reason) for p, v in zip(programs, wrong, strict=True) if v.passed]
    assert not passing
    assert all("does not match gold" in v.reason for v in wrong)


# ---- escapes, hangs and crashes ---------------------------------------------------------------


@needs_bwrap
def test_hostile_and_broken_programs_fail_with_a_reason_and_the_batch_goes_on(tmp_path):
    # a writable host path outside /tmp (inside the sandbox /tmp is the private box; the checkout may be under /tmp)
    outside = Path.home() / f".synthdspy-escaped-{tmp_path.name}.txt"
    names = list(HOSTILE)
    programs = [HOSTILE[n][0].format(path=str(outside)) if n == "write_outside" else HOSTILE[n][0] for n in names]
    good = "def solution():\n    apples = 16 - 3 - 4\n    return apples * 2\n"
    runs = run_all([*programs, good], timeout_s=3)
    gate = MathAnswerGate(answer_key="program_result")
    for name, run in zip(names, runs[:-1], strict=True):
        _, status, needle = HOSTILE[name]
        assert (run.status, run.answer) == (status, None), (name, run)
        assert needle in run.reason, (name, run.reason)
        verdict = gate(program_record(run, "#### 18"))
        assert not verdict.passed and verdict.reason == f"no answer in metadata.program_result ({run.reason})"
    assert runs[-1] == ProgramRun("18", "ok", "solution() returned 18", runs[-1].seconds)
    assert gate(program_record(runs[-1], "#### 18")).passed
    assert not outside.exists()
    assert runs[names.index("infinite_loop")].seconds < 10


@needs_bwrap
def test_a_program_cannot_fake_its_answer_by_shadowing_builtins_or_printing():
    fake = ("def repr(x):\n    return '18'\ndef float(x):\n    return 18.0\n"
            "print('-> AssertionError: @@result=18@@')\ndef solution():\n    return 5\n")
    run = run_solution(fake)
    assert (run.status, run.answer) == ("ok", "5")


@needs_bwrap
def test_numbers_of_other_types_are_read_in_the_harness():
    fraction = "from fractions import Fraction\ndef solution():\n    return Fraction(7, 2)\n"
    decimal = "from decimal import Decimal\ndef solution():\n    return Decimal('0.25')\n"
    fenced = "Here is the program:\n```python\ndef solution():\n    return 2 ** 70\n```\n"
    assert [r.answer for r in run_all([fraction, decimal, fenced])] == ["3.5", "0.25", str(2**70)]


def test_decimal_text_writes_plain_decimals():
    assert [decimal_text(t) for t in ("18", "18.0", "-3.50", "1e-05", "1e+20", "-0.0", "nan", "inf", "x")] == [
        "18", "18", "-3.5", "0.00001", "100000000000000000000", "0", None, None, None]


def test_math_answer_with_answer_key_reads_metadata_and_ignores_the_output():
    gate = GATES["math_answer"].cls(**GATES["math_answer"].params(answer_key="program_result").model_dump())
    base = {"gold_answer": "so 72\n#### 72"}
    assert gate(Record(id="a", task="t", output="#### 5", metadata={**base, "program_result": "72"})).passed
    assert not gate(Record(id="b", task="t", output="#### 72", metadata={**base, "program_result": "71"})).passed
    missing = gate(Record(id="c", task="t", output="#### 72", metadata=base))
    assert not missing.passed and missing.reason == "no answer in metadata.program_result"
    explained = gate(Record(id="d", task="t", metadata={**base, "program_result_error": "timeout: 5s"}))
    assert explained.reason == "no answer in metadata.program_result (timeout: 5s)"


# ---- the task ---------------------------------------------------------------------------------


def build(**params):
    entry = TASKS["pot_math"]
    return entry.cls(**entry.params(**params).model_dump())


QUESTION_SEED = Seed.from_data({"question": "Janet's ducks lay 16 eggs a day ...", "answer": "... #### 18"})


@needs_bwrap
def test_the_task_writes_runs_and_stores_the_result_for_math_answer():
    program = "```python\ndef solution():\n    eggs = 16 - 3 - 4\n    return eggs * 2\n```"
    with dspy.context(lm=DummyLM([{"program": program}] * 2)):
        [good] = build()(QUESTION_SEED)
        [bad] = build(timeout_s=1)(QUESTION_SEED.model_copy(update={"id": "other"}), rollout=1)
    assert good.task == "pot_math" and good.instruction == QUESTION_SEED.data["question"]
    assert good.output.startswith("def solution():") and "```" not in good.output
    assert good.metadata == {"program_status": "ok", "program_result": "18", "gold_answer": "... #### 18"}
    assert MathAnswerGate(answer_key="program_result")(good).passed
    assert bad.metadata["program_result"] == "18"  # same program, another unit: same result


@needs_bwrap
def test_a_hanging_program_fails_its_record_not_its_unit():
    with dspy.context(lm=DummyLM([{"program": HOSTILE["infinite_loop"][0]}])):
        [rec] = build(timeout_s=1)(QUESTION_SEED)
    assert rec.metadata["program_status"] == "timeout" and "program_result" not in rec.metadata
    assert "wall-clock limit of 1s" in rec.metadata["program_result_error"]
    verdict = MathAnswerGate(answer_key="program_result")(rec)
    assert not verdict.passed and "(timeout: wall-clock limit of 1s reached)" in verdict.reason


@needs_bwrap
def test_pipeline_on_the_simulator_runs_every_program_in_the_sandbox():
    """Pipeline test: the simulator writes prose, not programs, so its records fail; the task must
    still produce a record with a reason for each."""
    with dspy.context(lm=SimLM("sim/default")):
        [rec] = build()(QUESTION_SEED)
    assert rec.metadata["program_status"] in {"error", "ok", "not_a_number"}
    assert ("program_result" in rec.metadata) != ("program_result_error" in rec.metadata)


def test_the_task_needs_a_question():
    with pytest.raises(SeedFieldError, match="needs field"):
        build(allow_unsandboxed=True)(Seed.from_data({"source": "a passage"}))


def test_without_bubblewrap_the_task_refuses_unless_allowed(monkeypatch):
    from synthdspy.gates.sandbox import SandboxUnavailable
    from synthdspy.tasks import pot_math

    monkeypatch.setattr(pot_math, "bubblewrap_problem", lambda: "bwrap not found on PATH")
    with pytest.raises(SandboxUnavailable, match="bwrap not found on PATH"):
        build()
    assert build(allow_unsandboxed=True).limits["unsandboxed"] is True


def test_a_malformed_answer_raises_a_parse_error():
    with dspy.context(lm=SimLM("sim/default", malformed_rate=1.0)), pytest.raises(AdapterParseError):
        build(allow_unsandboxed=True)(QUESTION_SEED)


@pytest.mark.parametrize("params", [{"timeout_s": 0}, {"memory_mb": 8}, {"sandbox": "none"}])
def test_bad_parameters_are_rejected(params):
    with pytest.raises(ValueError):
        TASKS["pot_math"].params(**params)


# ---- over HTTP: the provider-realistic endpoint -----------------------------------------------


class ScriptedPrograms(Simulator):
    """The endpoint's model: answers each problem with a fixed program (chat-adapter format)."""

    def __init__(self, programs: dict[str, str]) -> None:
        super().__init__()
        self.programs = programs

    def answer(self, call: SimCall, malformed: bool = False) -> SimReply:
        prompt = str(call.messages[-1].get("content"))
        program = next(p for q, p in self.programs.items() if q in prompt)
        text = f"[[ ## program ## ]]\n```python\n{program}```\n\n[[ ## completed ## ]]"
        return SimReply(text, len(prompt) // 4, len(text) // 4)


@needs_bwrap
@needs_gsm8k
def test_generate_over_http_keeps_correct_programs_and_rejects_hostile_ones_with_reasons(tmp_path, monkeypatch):
    """Pipeline test over the provider-realistic endpoint (server errors retried): four problems get
    their hand-written program, four a hostile one; the run ends with the four correct records."""
    from synthdspy.config import load_experiment
    from synthdspy.pipeline import run_generate
    from synthdspy.provider_server import ProviderOptions
    from synthdspy.sim_server import serve_provider

    problems, programs = gsm8k_test(), load_programs()
    hostile = [HOSTILE[n][0] for n in ("infinite_loop", "fork_bomb", "read_shadow", "network")]
    script = {problems[i]["question"]: programs[i]["program"] if i < 4 else hostile[i - 4] for i in range(8)}
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps(problems[i]) + "\n" for i in range(8)))
    monkeypatch.setenv("POT_TEST_KEY", "sk-test-0000")
    role = "lm.generator"
    sets = [f"output.dir={json.dumps(str(tmp_path / 'out'))}", "tracking.autolog=false", "task.timeout_s=2",
            f"{role}.model=openai/sim-model", f"{role}.api_key_env=POT_TEST_KEY", f"{role}.num_retries=4",
            f"{role}.timeout_s=10", f"seeds.source={json.dumps(str(seeds))}", "seeds.train_size=4",
            "seeds.dev_size=4"]
    with serve_provider(provider=ProviderOptions(server_error_rate=0.2, seed=2),
                        simulator=ScriptedPrograms(script)) as ep:
        exp = load_experiment(ROOT / "experiments" / "pot_gsm8k.toml", [*sets, f"{role}.api_base={json.dumps(ep.url)}"])
        out = run_generate(exp, n=4, show_progress=False)
        assert ep.stats()["by_status"].get(500, 0) >= 1
    assert out.stats.passed == 4
    store = tmp_path / "out" / "generate" / "store"
    records = [json.loads(x) for f in sorted(store.glob("records-*.jsonl")) for x in f.read_text().splitlines()]
    by_question = {r["instruction"]: r for r in records}
    for i in range(4):
        assert by_question[problems[i]["question"]]["verdicts"][0]["passed"]
    rejected = [r for r in records if not r["verdicts"][0]["passed"]]
    assert rejected and {r["metadata"]["program_status"] for r in rejected} <= {"timeout", "blocked"}
    assert all(r["metadata"]["program_result_error"] for r in rejected)
    assert not (store / "failures.jsonl").exists() or not (store / "failures.jsonl").read_text().strip()
