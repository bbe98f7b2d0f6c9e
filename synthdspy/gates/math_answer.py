"""The deterministic ``math_answer`` gate: does a solution's final number equal the gold answer's?

Final answers are found the way GSM8K marks them (Cobbe et al. 2021: the text after ``#### ``),
else by an answer phrase or a LaTeX ``\\boxed{}``, else as the last number in the text. Numbers are
compared exactly as fractions, within a relative tolerance.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Literal

from pydantic import Field

from synthdspy.gates.base import Gate
from synthdspy.records import Record, Verdict
from synthdspy.registry import Params, register_gate

_NUMBER = re.compile(
    r"(?<![\w.])(?P<neg>[-−]\s?)?(?:[$€£¥₹]\s?)?(?P<neg2>[-−])?"
    r"(?:(?P<whole>\d+)\s+(?P<mn>\d+)/(?P<md>\d+)"  # mixed fraction: 1 1/2
    r"|(?P<num>\d+)/(?P<den>\d+)"  # fraction: 3/4
    r"|(?P<dec>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+))"  # 1,234.5 / 12 / .5
    r"(?P<pct>\s?%|\s+percent\b)?"
)
_CALC = re.compile(r"<<[^>]*>>")  # GSM8K calculator annotations: <<48/2=24>>
_PHRASE = re.compile(r"(?:\bthe\s+(?:final\s+)?answer\s+is\s*:?|\banswer\s*:)\s*([^\n]+)", re.IGNORECASE)
_LATEX = [
    (re.compile(r"\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}"), r"\1/\2"),
    (re.compile(r"\\text\{([^{}]*)\}"), r"\1"),
    (re.compile(r"\{,\}"), ","),
    (re.compile(r"\\([$%])"), r"\1"),
    (re.compile(r"\\[,!; ]"), ""),
]


def _boxed(text: str) -> tuple[int, str] | None:
    """(position, contents) of the last ``\\boxed{...}``, braces matched; None when absent or unclosed."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return start, text[i + 1 : j]
    return None


def extract_final_answer(text: str) -> str | None:
    """The final-answer text of a worked solution, or None when it has no number and no marker.

    Order: the first line after the last ``####``; else whichever comes last of an answer phrase
    ("the answer is X", "the final answer is X", "Answer: X", up to the end of the sentence or
    line) and a ``\\boxed{X}``; else the last number in the text. GSM8K ``<<calc>>`` annotations are
    ignored.
    """
    text = _CALC.sub("", text)
    if "####" in text:
        tail = text.rsplit("####", 1)[1].strip()
        if tail:
            return tail.splitlines()[0].strip()
    found: list[tuple[int, str]] = [(m.start(), m.group(1)) for m in _PHRASE.finditer(text)][-1:]
    boxed = _boxed(text)
    if boxed:
        found.append(boxed)
    if found:
        answer = max(found)[1]
        return re.split(r"(?<=\S)\.(?:\s|$)", answer, maxsplit=1)[0].strip() or None
    numbers = list(_NUMBER.finditer(text))
    return numbers[-1].group(0).strip() if numbers else None


def _parse(text: str) -> tuple[Fraction, bool] | None:
    """(value, written as a percentage) of the single number in ``text``; None for zero or several."""
    for pattern, repl in _LATEX:
        text = pattern.sub(repl, text)
    matches = list(_NUMBER.finditer(text))
    if len(matches) != 1:
        return None
    m = matches[0]
    if m.group("whole"):
        value = int(m.group("whole")) + Fraction(int(m.group("mn")), int(m.group("md")))
    elif m.group("num"):
        if int(m.group("den")) == 0:
            return None
        value = Fraction(int(m.group("num")), int(m.group("den")))
    else:
        value = Fraction(m.group("dec").replace(",", ""))
    if m.group("neg") or m.group("neg2"):
        value = -value
    percent = m.group("pct") is not None
    return (value / 100 if percent else value), percent


def parse_number(text: str) -> Fraction | None:
    """The exact value of the one number in ``text``, or None when there is none or more than one.

    Accepts thousands commas (``1,234``), currency (``$18``, ``€5``, ``18 dollars``), units and other
    words around the number (``5 cm``, ``3 hours``), signs (``-3``), decimals (``0.5``, ``.5``),
    fractions (``3/4``, ``1 1/2``, ``\\frac{3}{4}``), percentages (``25%`` -> 1/4) and trailing
    punctuation. ``1,23`` (not a thousands grouping) reads as two numbers, hence None.
    """
    parsed = _parse(text)
    return parsed[0] if parsed else None


def _normal_text(text: str) -> str:
    return " ".join(text.casefold().strip().rstrip(".").split())


def answers_match(predicted: str, gold: str, rel_tol: float = 1e-6) -> bool:
    """Whether two final answers agree.

    Numbers: two integers must be equal (an off-by-one in 1,450,000 is wrong however small
    relative to it); otherwise ``|p - g| <= rel_tol * max(|p|, |g|)``, which absorbs rounded
    decimals (``0.3333333`` for ``1/3``). A percentage also matches its bare number (``25%``
    matches ``25`` and ``0.25``). Answers that are not single numbers are compared as
    case-folded, whitespace-normalised text.
    """
    p, g = _parse(predicted), _parse(gold)
    if p is None or g is None:
        return p is None and g is None and _normal_text(predicted) == _normal_text(gold) != ""
    candidates = [(pv, gv) for pv in _scaled(p) for gv in _scaled(g)]
    return any(_close(pv, gv, rel_tol) for pv, gv in candidates)


def _close(p: Fraction, g: Fraction, rel_tol: float) -> bool:
    if p.denominator == 1 and g.denominator == 1:
        return p == g
    return abs(p - g) <= Fraction(rel_tol) * max(abs(p), abs(g))


def _scaled(parsed: tuple[Fraction, bool]) -> list[Fraction]:
    value, percent = parsed
    return [value, value * 100] if percent else [value]


class MathAnswerParams(Params):
    """Parameters of the ``math_answer`` gate."""

    answer_field: Literal["output", "chosen", "rejected", "input", "instruction"] = Field(
        "output", description="the record field holding the solution to check"
    )
    gold_key: str = Field("gold_answer", min_length=1, description="metadata key of the gold solution")
    answer_key: str = Field("", description="metadata key holding the answer to check instead of answer_field "
                            "(pot_math's executed 'program_result'); empty = answer_field")


@register_gate("math_answer", MathAnswerParams)
class MathAnswerGate(Gate):
    """Pass when the solution's final number equals the gold answer's (deterministic, no LM).

    Score 1.0 on a match, else 0.0; the reason names both extracted values. With ``answer_key`` the
    answer is read from ``metadata[answer_key]`` instead of ``answer_field``; a record without it fails,
    and the reason quotes ``metadata[answer_key + "_error"]`` when the record says there why it has none.
    """

    name = "math_answer"

    def __init__(self, answer_field: str = "output", gold_key: str = "gold_answer", answer_key: str = "") -> None:
        super().__init__()
        self.answer_field, self.gold_key, self.answer_key = answer_field, gold_key, answer_key

    def forward(self, record: Record) -> Verdict:
        gold_text = record.metadata.get(self.gold_key)
        if gold_text is None or str(gold_text).strip() == "":
            return self._verdict(False, f"no gold answer in metadata.{self.gold_key}")
        gold = extract_final_answer(str(gold_text))
        if gold is None:
            return self._verdict(False, f"no final answer in gold metadata.{self.gold_key}")
        if self.answer_key and record.metadata.get(self.answer_key) in (None, ""):
            why = record.metadata.get(f"{self.answer_key}_error")
            return self._verdict(False, f"no answer in metadata.{self.answer_key}" + (f" ({why})" if why else ""))
        answer = str(record.metadata[self.answer_key]) if self.answer_key else getattr(record, self.answer_field)
        predicted = extract_final_answer(answer or "")
        if predicted is None:
            return self._verdict(False, "no final answer found")
        ok = answers_match(predicted, gold)
        return self._verdict(
            ok, f"extracted {predicted!r} {'matches' if ok else 'does not match'} gold {gold!r}"
        )

    def _verdict(self, passed: bool, reason: str) -> Verdict:
        return Verdict(gate=self.name, passed=passed, score=1.0 if passed else 0.0, reason=reason)
