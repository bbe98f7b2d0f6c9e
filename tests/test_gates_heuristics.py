"""The heuristics gate: each rule on texts that should and should not trip it."""

import json
from pathlib import Path

import pytest

from synthdspy.gates.heuristics import (
    HeuristicsGate,
    HeuristicsParams,
    answer_leak,
    duplicate_line_share,
    duplicate_ngram_share,
)
from synthdspy.records import Record
from synthdspy.registry import GATES

PASSAGES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "passages" / "passages.jsonl"
GOOD = "The Nile flows north through eleven countries before it reaches the Mediterranean Sea near Alexandria."


def verdict(output: str, instruction: str = "Where does the Nile end?", **params):
    return HeuristicsGate(**params)(Record(id="r", task="qa", instruction=instruction, output=output))


def test_registered_and_validated():
    assert GATES["heuristics"].cls is HeuristicsGate
    with pytest.raises(ValueError, match="min_words 10 > max_words 5"):
        HeuristicsParams(min_words=10, max_words=5)
    with pytest.raises(ValueError, match="bad regular expression"):
        HeuristicsParams(refusal_patterns=["(unclosed"])


def test_good_text_passes_every_rule():
    v = verdict(GOOD)
    assert v.passed and v.score == 1.0 and v.reason == "all rules passed"


def test_real_passages_pass_repetition_and_phrase_rules():
    texts = [json.loads(line)["text"] for line in PASSAGES.read_text(encoding="utf-8").splitlines()[:300]]
    gate = HeuristicsGate(check_leakage=False)
    failed = [gate(Record(id=str(i), task="t", output=t)) for i, t in enumerate(texts)]
    failed = [v for v in failed if not v.passed]
    assert len(failed) / len(texts) < 0.05, [v.reason for v in failed[:5]]


@pytest.mark.parametrize(
    ("output", "params", "rule"),
    [
        ("", {}, "too_short: 0 words < 1"),
        ("Alexandria.", {"min_words": 3}, "too_short: 1 words < 3"),
        (GOOD, {"max_words": 5}, "too_long: 15 words > 5"),
        ("Step one.\nStep one.\nStep one.\nStep two.", {}, "repeated_lines: 0.50"),
        (("the river runs to the sea " * 6).strip(), {}, "repeated_ngrams"),
        ("As an AI language model, I cannot browse maps.", {}, "refusal: 'As an AI'"),
        ("I'm sorry, but I can't help with that request.", {}, "refusal"),
        ("I cannot provide that information about rivers.", {}, "refusal"),
        ("The Nile ends at the sea. I hope this helps!", {}, "boilerplate: 'I hope this helps'"),
        ("It ends in [insert city name] on the coast.", {}, "boilerplate: '[insert city name]'"),
        ("Sure! Here is the answer: the Mediterranean.", {}, "boilerplate"),
        ("Lorem ipsum dolor sit amet, the Nile ends.", {}, "boilerplate"),
        ("The Nile ends in TODO.", {}, "boilerplate: 'TODO'"),
    ],
)
def test_each_rule_fails_with_its_name(output, params, rule):
    v = verdict(output, **params)
    assert not v.passed
    assert rule in v.reason, v.reason
    assert v.diagnosis == rule.split(":")[0].upper()
    assert 0 <= v.score < 1


def test_phrases_are_not_matched_out_of_context():
    for text in ["She hoped the AI would help farmers.", "The model cannot explain why the river rose.",
                 "Todo list apps are popular.", "The language model was trained on rivers."]:
        assert verdict(text).passed, text


def test_several_failures_are_all_named():
    v = verdict("As an AI language model I hope this helps", min_words=20)
    assert [r.split(":")[0] for r in v.reason.split("; ")] == ["too_short", "refusal", "boilerplate"]
    assert v.score == pytest.approx(1 - 3 / 7)


def test_repetition_measures():
    assert duplicate_line_share("a\nb\na\n\nb") == pytest.approx(0.5)
    assert duplicate_line_share("one line") == 0.0
    assert duplicate_ngram_share("a b c d e f g", 3) == 0.0
    assert duplicate_ngram_share("x y z x y z", 3) == 1.0
    assert duplicate_ngram_share("short", 5) == 0.0


@pytest.mark.parametrize(
    ("answer", "question", "leaks"),
    [
        ("Paris", "Which city, Paris or Lyon, is the capital of France?", True),
        ("It is Paris.", "Is the capital Paris or Lyon?", True),
        ("the capital of France", "What is the capital of France?", True),
        ("Paris", "What is the capital of France?", False),
        ("The capital of France is Paris.", "What is the capital of France?", False),
        ("No.", "Is Lyon the capital of France?", False),
        ("Two", "Is it one or three?", False),
    ],
)
def test_answer_leak(answer, question, leaks):
    assert (answer_leak(answer, question) is not None) is leaks


def test_leakage_rule_in_the_gate_and_switch():
    question = "Which river, the Nile or the Amazon, ends in the Mediterranean?"
    assert "answer_in_question" in verdict("The Nile.", instruction=question).reason
    assert verdict("The Nile.", instruction=question, check_leakage=False).passed
    assert verdict("The Nile.", instruction="").passed  # no question: rule not applied
    # field="text" already contains the instruction: the leakage rule does not apply
    assert verdict("The Nile.", instruction=question, field="text").passed
