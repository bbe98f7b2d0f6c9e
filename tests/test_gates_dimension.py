"""The ``dimension`` and ``cot_check`` gates, and confusion matrices of dimension classifications."""

from __future__ import annotations

import copy
import logging
from concurrent.futures import ThreadPoolExecutor

import dspy
import pytest
from dspy.utils.exceptions import AdapterParseError

from synthdspy.config import GateConfig, TaskConfig
from synthdspy.gates.cot_check import CoTCheckGate
from synthdspy.gates.dimension import DimensionGate, confusion_from_records, confusion_matrices
from synthdspy.program import SynthesisProgram
from synthdspy.records import Record, Verdict
from synthdspy.seeds.catalog import load_dimensions
from synthdspy.simulator import SimLM

CATALOG = {d.name: d for d in load_dimensions()}
STYLES = [v.name for v in CATALOG["Style"].values]
FORMATS = [v.name for v in CATALOG["Format"].values]


def rec(i: int = 0, **dims: str) -> Record:
    return Record(id=f"r{i}", task="pretraining", output=f"Text number {i} about tides.", dimensions=dims)


class FixedLabel:
    """A stand-in predictor that always answers ``label``."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __call__(self, **_: str) -> dspy.Prediction:
        return dspy.Prediction(label=self.label, reason="stub")


def test_passes_only_when_every_dimension_matches():
    gate = DimensionGate()
    gate.classifiers["Style"] = FixedLabel("Critical")
    gate.classifiers["Format"] = FixedLabel("Q&A Direct")
    ok = gate(rec(Style="Critical", Format="Q&A Direct"))
    assert ok.passed and ok.score == 1.0
    assert ok.details == {"target": {"Style": "Critical", "Format": "Q&A Direct"},
                          "predicted": {"Style": "Critical", "Format": "Q&A Direct"}}
    bad = gate(rec(Style="Empathetic/Personal", Format="Q&A Direct"))
    assert not bad.passed and bad.score == 0.5
    assert "Style: predicted 'Critical', target 'Empathetic/Personal'" in bad.reason


def test_configured_subset_missing_and_unknown_dimensions():
    only_style = DimensionGate(dimensions=["Style"])
    assert set(only_style.classifiers) == {"Style"}
    only_style.classifiers["Style"] = FixedLabel("Critical")
    verdict = only_style(rec(Style="Critical", Format="Q&A Direct"))
    assert verdict.passed and verdict.details["target"] == {"Style": "Critical"}
    assert only_style(rec(Format="Q&A Direct")).reason == "no_dimensions"
    assert DimensionGate()(rec()).reason == "no_dimensions"
    unknown = DimensionGate()(rec(Mood="Happy"))
    assert not unknown.passed and unknown.reason.startswith("unknown_dimension")
    with pytest.raises(ValueError, match="Mood"):
        DimensionGate(dimensions=["Mood"])


def test_simulated_judge_answers_with_catalog_values():
    gate = DimensionGate(dimensions=["Style", "Format"])
    with dspy.context(lm=SimLM("sim/default")):
        verdicts = [gate(rec(i, Style=STYLES[i % 4], Format=FORMATS[i % 4])) for i in range(6)]
    for v in verdicts:
        assert v.details["predicted"]["Style"] in STYLES and v.details["predicted"]["Format"] in FORMATS
        matches = sum(v.details["predicted"][d] == v.details["target"][d] for d in ("Style", "Format"))
        assert v.score == matches / 2 and v.passed == (matches == 2)


def test_confusion_matrices_in_memory_and_from_stored_records_agree():
    gate = DimensionGate(dimensions=["Style"])
    labels = iter(["Critical", "Critical", "Neutral/Objective", "Critical"] * 4)
    gate.classifiers["Style"] = lambda **_: dspy.Prediction(label=next(labels), reason="")
    records = [rec(i, Style="Critical" if i % 2 else "Neutral/Objective") for i in range(16)]
    with ThreadPoolExecutor(4) as ex:
        verdicts = list(ex.map(gate, records))
    for r, v in zip(records, verdicts, strict=True):
        r.verdicts.append(v)
    live = gate.confusion_matrices()["Style"]
    stored = confusion_from_records(records)["Style"]
    assert live == stored and live.labels == STYLES and live.total == 16
    targets = [r.dimensions["Style"] for r in records]
    predicted = [v.details["predicted"]["Style"] for v in verdicts]
    for i, t in enumerate(STYLES):
        for j, p in enumerate(STYLES):
            assert live.matrix[i][j] == sum(a == t and b == p for a, b in zip(targets, predicted, strict=True))
    assert live.accuracy == sum(a == b for a, b in zip(targets, predicted, strict=True)) / 16


def test_confusion_matrices_append_labels_outside_the_catalog_order():
    from collections import Counter

    m = confusion_matrices({"Style": Counter({("Critical", "Sarcastic"): 2})}, {"Style": STYLES})["Style"]
    assert m.labels == [*STYLES, "Sarcastic"] and m.matrix[STYLES.index("Critical")][-1] == 2
    assert confusion_from_records([Record(id="x", task="t", verdicts=[Verdict(gate="reward", passed=True)])]) == {}


def test_gate_deep_copies_cleanly_and_keeps_its_own_counts(caplog):
    gate = DimensionGate(dimensions=["Style"])
    gate.counts.add({"Style": "Critical"}, {"Style": "Critical"})
    with caplog.at_level(logging.WARNING):
        twin = gate.deepcopy()
    assert "Failed to deep copy" not in caplog.text
    twin.counts.add({"Style": "Critical"}, {"Style": "Critical"})
    assert gate.confusion_matrices()["Style"].total == 1 and twin.confusion_matrices()["Style"].total == 2
    assert copy.deepcopy(gate).counts.snapshot() == gate.counts.snapshot()


def test_program_with_dimension_gate_saves_and_loads(tmp_path):
    program = SynthesisProgram(TaskConfig(name="pretraining"), [GateConfig(name="dimension", dimensions=["Style"])])
    path = program.save_program(tmp_path / "p.json")
    loaded = SynthesisProgram.load_program(path)
    assert [n for n, _ in loaded.named_predictors()] == [n for n, _ in program.named_predictors()]
    assert loaded.program_hash == program.program_hash


def test_dimension_judge_malformed_answer_raises():
    gate = DimensionGate(dimensions=["Style"])
    with dspy.context(lm=SimLM("sim/default", malformed_rate=1.0, cache=False)), pytest.raises(AdapterParseError):
        gate(rec(Style="Critical"))


# ------------------------------------------------------------------------------------- cot_check


class FixedSteps:
    def __init__(self, steps: bool) -> None:
        self.steps = steps

    def __call__(self, **_: str) -> dspy.Prediction:
        return dspy.Prediction(step_by_step=self.steps, reason="because")


@pytest.mark.parametrize(("expected", "steps"), [(True, True), (True, False), (False, True), (False, False)])
def test_cot_check_passes_when_the_answer_is_the_expected_one(expected, steps):
    gate = CoTCheckGate(expected=expected)
    gate.judge = FixedSteps(steps)
    v = gate(rec())
    assert v.passed == (steps == expected) and v.score == float(steps)
    assert v.details == {"step_by_step": steps} and v.reason == "because"


def test_pipeline_cot_check_on_the_simulator_reads_the_text():
    """Pipeline test: the judge reads the record's text, and a malformed answer raises. The verdicts come from the
    simulator's judge, which looks for step markers: they are decided by the simulator's heuristics and are not
    evidence of the gate's quality."""
    stepwise = Record(id="a", task="cot", output="Step 1: 3 + 4 = 7.\nStep 2: therefore she has 7 apples.")
    plain = Record(id="b", task="cot", output="She has seven apples.")
    gate = CoTCheckGate()
    with dspy.context(lm=SimLM("sim/default", temperature=0.0)):  # the simulator's judge looks for step markers
        assert gate(stepwise).passed and not gate(plain).passed
    with dspy.context(lm=SimLM("sim/default", malformed_rate=1.0, cache=False)), pytest.raises(AdapterParseError):
        gate(plain)
