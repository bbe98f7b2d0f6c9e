"""The math_answer gate: extraction, number formats, and every GSM8K test solution."""

import json
from fractions import Fraction
from pathlib import Path

import pytest

from synthdspy.gates.math_answer import (
    MathAnswerGate,
    MathAnswerParams,
    answers_match,
    extract_final_answer,
    parse_number,
)
from synthdspy.records import Record
from synthdspy.registry import GATES

GSM8K_TEST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gsm8k" / "test.jsonl"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1,234", Fraction(1234)),
        ("1,450,000", Fraction(1450000)),
        ("$18", Fraction(18)),
        ("$1,234.50", Fraction(246900, 200)),
        ("18 dollars", Fraction(18)),
        ("€5", Fraction(5)),
        ("5 cm", Fraction(5)),
        ("5cm", Fraction(5)),
        ("3 hours.", Fraction(3)),
        ("-3", Fraction(-3)),
        ("−7", Fraction(-7)),
        ("-$4.5", Fraction(-9, 2)),
        ("0.5", Fraction(1, 2)),
        (".5", Fraction(1, 2)),
        ("3/4", Fraction(3, 4)),
        ("1 1/2", Fraction(3, 2)),
        ("\\frac{3}{4}", Fraction(3, 4)),
        ("25%", Fraction(1, 4)),
        ("12.5 percent", Fraction(1, 8)),
        ("72.", Fraction(72)),
        ("x = 10", Fraction(10)),
        ("1{,}000", Fraction(1000)),
    ],
)
def test_parse_number_formats(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["", "no digits here", "5 or 6", "1,23", "3/0", "2020-01-01"])
def test_parse_number_rejects_none_or_ambiguous(text):
    assert parse_number(text) is None


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("She sold 48/2 = <<48/2=24>>24 clips.\n#### 72", "72"),
        ("Work...\n#### 1,000\nextra", "1,000"),
        ("So 3 + 4 = 7. The answer is 7.", "7"),
        ("First 2 apples, then 5.\nThe final answer is: $12.50. Done", "$12.50"),
        ("Answer: 3/4", "3/4"),
        ("We get \\boxed{\\frac{1}{2}} at the end, not 7", "\\frac{1}{2}"),
        ("The answer is 4. Check: \\boxed{5}", "5"),
        ("Tom has 3 apples and buys 4 more, so 7 apples", "7"),
        ("Costs -$5 net", "-$5"),
        ("nothing numeric", None),
    ],
)
def test_extract_final_answer(text, answer):
    assert extract_final_answer(text) == answer


def test_answers_match_rules():
    assert answers_match("$1,000.00", "1000")
    assert answers_match("25%", "25") and answers_match("25%", "0.25")
    assert answers_match("0.3333333", "1/3", rel_tol=1e-6)
    assert not answers_match("0.333", "1/3", rel_tol=1e-6)
    assert answers_match("0", "0.0") and not answers_match("0", "1")
    assert answers_match("Yes", "yes.") and not answers_match("yes", "no")
    assert not answers_match("", "")


def gate_record(output, gold="#### 42"):
    metadata = {} if gold is None else {"gold_answer": gold}
    return Record(id="x", task="cot", output=output, metadata=metadata)


def test_gate_verdicts_and_reasons():
    gate = MathAnswerGate()
    ok = gate(gate_record("6 * 7 = 42\n#### 42"))
    assert ok.gate == "math_answer" and ok.passed and ok.score == 1.0
    assert "'42'" in ok.reason and "matches" in ok.reason
    bad = gate(gate_record("The answer is 41."))
    assert not bad.passed and bad.score == 0.0 and "'41'" in bad.reason and "'42'" in bad.reason
    assert gate(gate_record("I am not sure.")).reason == "no final answer found"
    assert gate(gate_record("#### 42", gold=None)).reason == "no gold answer in metadata.gold_answer"
    custom = MathAnswerGate(answer_field="chosen", gold_key="solution")
    rec = Record(id="y", task="pref", chosen="so \\boxed{42}", output="#### 1", metadata={"solution": 42})
    assert custom(rec).passed


def test_gate_is_registered_with_checked_params():
    entry = GATES["math_answer"]
    assert entry.cls is MathAnswerGate and entry.params is MathAnswerParams
    assert isinstance(entry.cls(**MathAnswerParams().model_dump()), MathAnswerGate)
    with pytest.raises(ValueError, match="answer_field"):
        MathAnswerParams(answer_field="metadata")


def _with_final(solution: str, new: str) -> str:
    head, _ = solution.rsplit("####", 1)
    return f"{head}#### {new}"


@pytest.mark.usefixtures("needs_shared_data")
def test_every_gsm8k_test_solution():
    rows = [json.loads(line) for line in GSM8K_TEST.read_text().splitlines()]
    assert len(rows) == 1319
    gate = MathAnswerGate()
    flipped = 0
    for row in rows:
        solution = row["answer"]
        final = parse_number(extract_final_answer(solution))
        assert final is not None, solution
        assert gate(gate_record(solution, gold=solution)).passed, solution
        plus_one = _with_final(solution, str(final + 1))
        assert not gate(gate_record(plus_one, gold=solution)).passed, plus_one
        if final != 0:
            flipped += 1
            neg = _with_final(solution, str(-final))
            assert not gate(gate_record(neg, gold=solution)).passed, neg
    assert flipped > 1300


def test_integers_compare_exactly_despite_tolerance():
    assert not answers_match("1450001", "1,450,000")
    assert answers_match("1450000.0000001", "1,450,000")
