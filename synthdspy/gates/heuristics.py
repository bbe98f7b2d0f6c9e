"""The deterministic ``heuristics`` gate: length, repetition, refusals, boilerplate, answer leakage.

Repetition rules follow the quality filters of Gopher (Rae et al. 2021, "Scaling Language Models:
Methods, Analysis & Insights from Training Gopher", appendix A.1.1): the share of lines that repeat
an earlier line (at most 0.30 there) and the share of characters inside word n-grams that occur
more than once (at most 0.15 for 5-grams there).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Literal

from pydantic import Field, field_validator, model_validator

from synthdspy.dedup import normalize
from synthdspy.gates.base import Gate
from synthdspy.records import Record, Verdict
from synthdspy.registry import Params, register_gate

REFUSAL_PATTERNS = [
    r"\bas an ai\b",
    r"\bas an? (?:ai |artificial intelligence |large )?language model\b",
    r"\bI(?:'m| am) (?:sorry|afraid),? (?:but )?I (?:can(?:no|')t|am (?:not able|unable)|won't)\b",
    r"\bI (?:cannot|can't|can not|am unable to|am not able to|won't be able to|will not) "
    r"(?:help|assist|provide|comply|fulfil|answer|do that|complete|generate|write)",
    r"\bI do(?: not|n't) have (?:access to|the ability to|personal (?:opinions|experiences))\b",
]
BOILERPLATE_PATTERNS = [
    r"\blorem ipsum\b",
    r"\bas of my (?:last |latest )?(?:knowledge |training )?(?:update|cutoff|cut-off)\b",
    r"\bI hope (?:this|that|it) helps\b",
    r"\[(?:insert|your|placeholder|add)\b[^\]]*\]",
    r"<\s*(?:insert|placeholder)\b[^>]*>",
    r"(?-i:\b(?:TODO|FIXME|TBD)\b)",  # upper case only
    r"^\s*(?:sure|certainly|of course|absolutely)[!,.]\s+here(?:'s| is| are)\b",
]
# Function words ignored when finding an answer's key span; answer-bearing words such as numbers
# and negations ("two", "no", "not") are deliberately absent.
_FUNCTION_WORDS_TEXT = """
a an the this that these those it its s he she they them their his her him we us our you your i me my
is are was were be been being am do does did has have had will would shall should can could may might must
of in on at to for from by with about as into onto over under than then so and or but if because while
which who whom whose what when where why how there here also just very
"""
FUNCTION_WORDS = frozenset(_FUNCTION_WORDS_TEXT.split())

TextField = Literal["output", "text", "chosen", "instruction", "input"]


def _compile(patterns: list[str]) -> list[re.Pattern[str]]:
    return [re.compile(p, re.IGNORECASE | re.MULTILINE) for p in patterns]


def duplicate_line_share(text: str) -> float:
    """Share of non-empty lines (stripped) equal to an earlier line; 0.0 for fewer than two lines."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return (len(lines) - len(set(lines))) / len(lines) if len(lines) > 1 else 0.0


def duplicate_ngram_share(text: str, n: int) -> float:
    """Share of word characters covered by word ``n``-grams that occur more than once (Gopher)."""
    words = text.split()
    if len(words) < n:
        return 0.0
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    counts = Counter(grams)
    covered = [False] * len(words)
    for i, gram in enumerate(grams):
        if counts[gram] > 1:
            covered[i : i + n] = [True] * n
    total = sum(len(w) for w in words)
    return sum(len(w) for w, c in zip(words, covered, strict=True) if c) / total


def answer_leak(answer: str, question: str) -> str | None:
    """Why ``answer`` leaks into ``question``, or None.

    Leaks: the normalised answer appears verbatim (on word boundaries) in the normalised question;
    or every content word of the answer (its key span, function words removed) is in the question.
    """
    a, q = normalize(answer), normalize(question)
    if not a or not q:
        return None
    if f" {a} " in f" {q} ":
        return "answer appears verbatim in the question"
    content = [w for w in a.split() if w not in FUNCTION_WORDS]
    if content and set(content) <= set(q.split()):
        return f"every content word of the answer is in the question: {' '.join(content)[:80]}"
    return None


class HeuristicsParams(Params):
    """Parameters of the ``heuristics`` gate."""

    field: TextField = Field("output", description="record text to check; 'text' = instruction + output")
    question_field: Literal["instruction", "input"] = Field("instruction", description="for the leakage rule")
    min_words: int = Field(1, ge=0)
    max_words: int = Field(5000, ge=1)
    max_duplicate_line_share: float = Field(0.3, ge=0, le=1, description="Gopher: 0.30")
    max_duplicate_ngram_share: float = Field(0.15, ge=0, le=1, description="Gopher: 0.15 for 5-grams")
    ngram_n: int = Field(5, ge=2, le=20, description="n of the duplicate n-gram rule")
    refusal_patterns: list[str] | None = Field(
        None, description="regexes (case-insensitive) replacing the built-in REFUSAL_PATTERNS")
    boilerplate_patterns: list[str] | None = Field(
        None, description="regexes (case-insensitive) replacing the built-in BOILERPLATE_PATTERNS")
    check_leakage: bool = Field(True, description="fail when the answer is given away by the question")

    @field_validator("refusal_patterns", "boilerplate_patterns")
    @classmethod
    def _valid_regex(cls, patterns: list[str] | None) -> list[str] | None:
        for p in patterns or []:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"bad regular expression {p!r}: {exc}") from None
        return patterns

    @model_validator(mode="after")
    def _bounds(self) -> HeuristicsParams:
        if self.min_words > self.max_words:
            raise ValueError(f"min_words {self.min_words} > max_words {self.max_words}")
        return self


@register_gate("heuristics", HeuristicsParams)
class HeuristicsGate(Gate):
    """Rule-based text checks: length, repetition, refusals, boilerplate, answer leakage.

    The rules: word-count bounds, repeated lines and n-grams, refusal and boilerplate phrases, and
    answer-in-question leakage. Passes when no rule fails. Score: the share of rules that passed. The reason names every
    failed rule (``too_short``, ``too_long``, ``repeated_lines``, ``repeated_ngrams``, ``refusal``,
    ``boilerplate``, ``answer_in_question``) with the measured value or the matched text.
    """

    name = "heuristics"

    def __init__(self, field: str = "output", question_field: str = "instruction", min_words: int = 1,
                 max_words: int = 5000, max_duplicate_line_share: float = 0.3,
                 max_duplicate_ngram_share: float = 0.15, ngram_n: int = 5,
                 refusal_patterns: list[str] | None = None, boilerplate_patterns: list[str] | None = None,
                 check_leakage: bool = True) -> None:
        super().__init__()
        self.field, self.question_field = field, question_field
        self.min_words, self.max_words = min_words, max_words
        self.max_line_share, self.max_ngram_share, self.ngram_n = (
            max_duplicate_line_share, max_duplicate_ngram_share, ngram_n)
        self.refusals = _compile(REFUSAL_PATTERNS if refusal_patterns is None else refusal_patterns)
        self.boilerplate = _compile(BOILERPLATE_PATTERNS if boilerplate_patterns is None else boilerplate_patterns)
        self.check_leakage = check_leakage

    def failures(self, text: str, question: str) -> tuple[list[str], int]:
        """(reasons of the failed rules, number of rules checked) for ``text``."""
        failed: list[str] = []
        words = len(text.split())
        if words < self.min_words:
            failed.append(f"too_short: {words} words < {self.min_words}")
        if words > self.max_words:
            failed.append(f"too_long: {words} words > {self.max_words}")
        lines = duplicate_line_share(text)
        if lines > self.max_line_share:
            failed.append(f"repeated_lines: {lines:.2f} of lines repeat > {self.max_line_share}")
        grams = duplicate_ngram_share(text, self.ngram_n)
        if grams > self.max_ngram_share:
            failed.append(f"repeated_ngrams: {grams:.2f} of characters in repeated {self.ngram_n}-grams "
                          f"> {self.max_ngram_share}")
        for rule, patterns in (("refusal", self.refusals), ("boilerplate", self.boilerplate)):
            hit = next((m for p in patterns if (m := p.search(text))), None)
            if hit:
                failed.append(f"{rule}: {hit.group(0)[:60]!r}")
        checked = 6
        if self.check_leakage and question:
            checked += 1
            leak = answer_leak(text, question)
            if leak:
                failed.append(f"answer_in_question: {leak}")
        return failed, checked

    def forward(self, record: Record) -> Verdict:
        text = record.text if self.field == "text" else (getattr(record, self.field) or "")
        leak_check_applies = self.field not in (self.question_field, "text")
        question = getattr(record, self.question_field) if leak_check_applies else ""
        failed, checked = self.failures(text, question)
        return Verdict(gate=self.name, passed=not failed, score=1 - len(failed) / checked,
                       reason="; ".join(failed) or "all rules passed",
                       diagnosis=failed[0].split(":")[0].upper() if failed else None)
