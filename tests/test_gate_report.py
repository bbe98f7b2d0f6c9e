"""The gate report: pass rates, reason grouping, adversarial_qa confusion matrix, files, CLI."""

from __future__ import annotations

import json

import pytest

from synthdspy.gate_report import (
    failure_category,
    find_store,
    gate_report,
    short_example,
    to_markdown,
    write_gate_report,
)
from synthdspy.records import Provenance, Record, Verdict
from synthdspy.store import RecordStore


def qa(i: int, injection: str | None, diagnosis: str | None, lm: str = "openai/x") -> Record:
    verdict = Verdict(gate="hallucination", passed=diagnosis is None, diagnosis=diagnosis,
                      reason=f"{diagnosis}: evidence {i}" if diagnosis else f"fine {i}")
    return Record(id=f"q{i}", task="adversarial_qa", metadata={"injection_type": injection},
                  provenance=Provenance(lm=lm), verdicts=[verdict])


def pair(i: int, passed: bool, reason: str) -> Record:
    return Record(id=f"p{i}", task="preference", chosen="c", rejected="r",
                  verdicts=[Verdict(gate="reward", passed=passed, reason=reason)])


@pytest.fixture()
def run_dir(tmp_path):
    records = [
        qa(0, None, None), qa(1, None, None), qa(2, None, "GENERATOR_TEMPERATURE"),
        qa(3, "parametric_drift", "GENERATOR_PARAMETRIC"), qa(4, "contradicts_source", None),
        qa(5, "domain_mismatch", "GENERATOR_PARAMETRIC"),
        pair(0, False, "rejected_above_threshold: chosen 8, rejected 7"),
        pair(1, False, "rejected_above_threshold: chosen 9, rejected 9"),
        pair(2, False, "chosen_below_threshold: chosen 3, rejected 2"), pair(3, True, "chosen 8, rejected 2"),
    ]
    with RecordStore(tmp_path / "run" / "generate" / "store") as store:
        store.append_many(records)
    return tmp_path / "run"


def test_failure_category_groups_codes_diagnoses_and_judged_scores():
    def v(reason: str, **kw) -> Verdict:
        return Verdict(gate="g", passed=False, reason=reason, **kw)

    assert failure_category(v("rejected_above_threshold: chosen 8, rejected 7")) == "rejected_above_threshold"
    assert failure_category(v("GENERATOR_PARAMETRIC: uses outside facts")) == "GENERATOR_PARAMETRIC"
    assert failure_category(v("no_source")) == "no_source"
    assert failure_category(v("The judge found the date made up.", diagnosis="INVENTED")) == "INVENTED"
    assert failure_category(v("The answer invents a date.", score=3.0), threshold=6.0) == "below_threshold"
    assert failure_category(v("Mentions a slur.", score=8.0), threshold=5.0) == "at_or_above_threshold"
    assert failure_category(v("The answer invents a date.")) == "(free-text reason)"
    assert failure_category(v("Vague: no figure from the passage.", score=4.0), threshold=6.0) == "below_threshold"
    assert failure_category(v("")) == "(no reason)"


def test_report_counts_gates_and_reasons(run_dir):
    report = gate_report(run_dir)
    assert report.n_records == 10 and report.n_passed == 3 + 1 and not report.simulated
    gates = {g.gate: g for g in report.gates}
    assert (gates["hallucination"].n, gates["hallucination"].passed) == (6, 3)
    assert gates["reward"].pass_rate == pytest.approx(0.25)
    assert [(f.category, f.count) for f in gates["reward"].failures] == [("rejected_above_threshold", 2),
                                                                        ("chosen_below_threshold", 1)]
    assert gates["reward"].failures[0].example == "rejected_above_threshold: chosen 8, rejected 7"
    assert gates["hallucination"].diagnoses == {"GENERATOR_TEMPERATURE": 1, "GENERATOR_PARAMETRIC": 2}


def test_confusion_matrix_of_injection_against_diagnosis(run_dir):
    c = gate_report(run_dir).confusion
    assert c.rows == ["none", "contradicts_source", "parametric_drift", "domain_mismatch"]
    assert c.counts["none"] == {"GENERATOR_PARAMETRIC": 0, "GENERATOR_TEMPERATURE": 1, "DOMAIN_MISMATCH": 0,
                                "INSTRUCTION_QUALITY": 0, "NONE": 2}
    assert c.counts["contradicts_source"]["NONE"] == 1
    assert c.counts["parametric_drift"]["GENERATOR_PARAMETRIC"] == 1
    assert c.counts["domain_mismatch"]["GENERATOR_PARAMETRIC"] == 1
    assert c.n == 6
    assert c.agreement == pytest.approx(3 / 6)  # two clean NONE + parametric drift
    assert c.detection_rate == pytest.approx(2 / 3) and c.false_alarm_rate == pytest.approx(1 / 3)


def test_unjudged_records_get_their_own_column(tmp_path):
    unjudged = Record(id="u", task="adversarial_qa", metadata={"injection_type": "instruction_quality"})
    with RecordStore(tmp_path / "s") as store:
        store.append_many([unjudged, qa(1, None, None)])
    c = gate_report(tmp_path / "s").confusion
    assert c.counts["instruction_quality"]["(not judged)"] == 1 and c.agreement == 1.0
    assert c.detection_rate is None


def test_files_written_next_to_the_store_and_markdown(run_dir):
    report = gate_report(run_dir)
    json_path, md_path = write_gate_report(report)
    assert json_path.parent == run_dir / "generate"
    blob = json.loads(json_path.read_text())
    assert blob["confusion"]["counts"]["parametric_drift"]["GENERATOR_PARAMETRIC"] == 1
    md = md_path.read_text()
    assert "| reward | 4 | 1 | 25.0% |" in md
    assert "- **rejected_above_threshold**: 2; e.g. rejected_above_threshold: chosen 8, rejected 7" in md
    assert "| parametric_drift | 1 | 0 | 0 | 0 | 0 |" in md
    assert "Simulated LM" not in md


def test_dimension_confusion_matrices_per_dimension(tmp_path):
    def judged(i: int, target: str, predicted: str) -> Record:
        details = {"target": {"Style": target}, "predicted": {"Style": predicted}}
        return Record(id=f"d{i}", task="pretraining", dimensions={"Style": target},
                      verdicts=[Verdict(gate="dimension", passed=target == predicted, details=details)])

    with RecordStore(tmp_path / "s") as store:
        store.append_many([judged(0, "Critical", "Critical"), judged(1, "Critical", "Neutral/Objective"),
                           judged(2, "Neutral/Objective", "Neutral/Objective")])
    report = gate_report(tmp_path / "s")
    style = report.dimensions["Style"]
    assert style.labels[:2] == ["Neutral/Objective", "Positive/Constructive"]  # catalog order
    critical = style.labels.index("Critical")
    assert style.matrix[critical][0] == 1 and style.matrix[critical][critical] == 1 and style.matrix[0][0] == 1
    assert style.accuracy == pytest.approx(2 / 3)
    md = to_markdown(report)
    assert "## dimension Style: target (rows) x predicted (columns)" in md
    assert "| Critical | 1 | 0 | 0 | 1 |" in md and "classified as their target: 66.7%" in md
    json_path, _ = write_gate_report(report, tmp_path / "out")
    assert json.loads(json_path.read_text())["dimensions"]["Style"]["matrix"] == style.matrix


def test_simulated_runs_are_labelled(tmp_path):
    with RecordStore(tmp_path / "s") as store:
        store.append(qa(0, None, None, lm="sim/default"))
    assert "Simulated LM" in to_markdown(gate_report(tmp_path / "s"))


def test_find_store_errors_on_a_directory_without_records(tmp_path):
    with pytest.raises(FileNotFoundError, match="no record store"):
        find_store(tmp_path)


def test_the_generate_directory_is_accepted_too(run_dir):
    assert find_store(run_dir / "generate") == find_store(run_dir) == run_dir / "generate" / "store"
    assert gate_report(run_dir / "generate").n_records == 10


JUDGED = [
    ("The answer states the founding year as 1897 while the passage gives 1887, and it leaves out the second "
     "founder entirely, so a learner would memorise a wrong date and an incomplete account of the founding.", 3.0),
    ("Vague: the response talks about the topic in general terms without using any of the figures the passage "
     "provides.", 4.0),
    ("Mostly right but misses the distinction the passage draws between the two committees.", 5.0),
]


@pytest.fixture()
def judged_run(tmp_path):
    """A run whose reward gate failed three single outputs with free-text rationales (threshold 6.5)."""
    records = [Record(id=f"j{i}", task="qa", output="o", verdicts=[Verdict(gate="reward", passed=False, score=score,
                                                                           reason=reason)])
               for i, (reason, score) in enumerate(JUDGED)]
    records.append(Record(id="ok", task="qa", output="o", verdicts=[Verdict(gate="reward", passed=True, score=9.0)]))
    with RecordStore(tmp_path / "run" / "generate" / "store") as store:
        store.append_many(records)
    facts = {"task": "qa", "gates": [{"name": "reward", "threshold": 6.5}]}
    (tmp_path / "run" / "generate" / "generation.json").write_text(json.dumps(facts))
    return tmp_path / "run"


def test_free_text_failures_group_by_category_with_score_against_threshold(judged_run):
    gate = gate_report(judged_run).gates[0]
    assert gate.threshold == 6.5
    assert gate.mean_score == pytest.approx((3 + 4 + 5 + 9) / 4)
    assert len(gate.failures) == 1
    group = gate.failures[0]
    assert (group.category, group.count) == ("below_threshold", 3)
    assert group.mean_score == pytest.approx(4.0)
    assert group.example == JUDGED[0][0]  # the whole reason (over 120 characters), not a cut one
    md = to_markdown(gate_report(judged_run))
    assert "| reward | 4 | 1 | 25.0% | 6.5 | 5.25 |" in md
    assert f"- **below_threshold**: 3 (mean score 4, threshold 6.5); e.g. {JUDGED[0][0]}" in md


def test_threshold_defaults_to_the_gates_own_when_the_run_did_not_set_it(judged_run):
    facts_path = judged_run / "generate" / "generation.json"
    facts_path.write_text(json.dumps({"gates": [{"name": "reward"}]}))
    assert gate_report(judged_run).gates[0].threshold == 6.0  # RewardParams' default
    facts_path.unlink()
    gate = gate_report(judged_run).gates[0]
    assert gate.threshold is None and gate.failures[0].category == "(free-text reason)"


def test_long_examples_end_at_a_word_boundary():
    words = " ".join(f"word{i}" for i in range(120))  # 828 characters
    short = short_example(words)
    assert short.endswith(" ...") and len(short) <= 404
    assert words.startswith(short[:-4]) and words[len(short) - 4] == " "
    assert short_example("  two   spaced\nlines ") == "two spaced lines"


def test_cli_gate_report(run_dir, tmp_path):
    from typer.testing import CliRunner

    from synthdspy.cli import app

    result = CliRunner().invoke(app, ["gate-report", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "| hallucination | 6 | 3 | 50.0% |" in result.stdout
    assert (run_dir / "generate" / "gate_report.md").exists()
    from_generate = CliRunner().invoke(app, ["gate-report", str(run_dir / "generate")])
    assert from_generate.exit_code == 0 and "| hallucination | 6 | 3 | 50.0% |" in from_generate.stdout
    missing = CliRunner().invoke(app, ["gate-report", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "no record" in " ".join(missing.output.split())


ROOT = __import__("pathlib").Path(__file__).parent.parent
PEER_EXPERIMENTS = ["preference", "grpo", "multiturn", "evol", "adversarial_preference", "adversarial_qa"]


@pytest.mark.usefixtures("needs_shared_data")
@pytest.mark.parametrize("name", PEER_EXPERIMENTS)
def test_shipped_experiments_validate(name, monkeypatch):
    from synthdspy.config import load_experiment

    monkeypatch.chdir(ROOT)
    exp = load_experiment(ROOT / "experiments" / f"{name}.toml")
    assert exp.task.name == name and exp.lm.generator.model.startswith("sim/")


@pytest.mark.usefixtures("needs_shared_data")
def test_adversarial_qa_run_then_report(tmp_path, monkeypatch):
    from synthdspy.config import load_experiment
    from synthdspy.pipeline import run_generate

    monkeypatch.chdir(ROOT)
    exp = load_experiment(ROOT / "experiments" / "adversarial_qa.toml",
                          [f"output.dir={json.dumps(str(tmp_path / 'out'))}", "tracking.autolog=false",
                           "task.injection_rate=0.8"])
    run_generate(exp, n=4, show_progress=False)
    report = gate_report(tmp_path / "out")
    assert report.simulated and report.n_records >= 4
    c = report.confusion
    assert c is not None and c.n == report.n_records and len(c.rows) >= 2
    assert sum(sum(row.values()) for row in c.counts.values()) == c.n


def test_report_reads_a_store_being_written_without_touching_it(tmp_path):
    with RecordStore(tmp_path / "s") as store:
        store.append_many([qa(0, None, None), qa(1, "parametric_drift", "GENERATOR_PARAMETRIC")])
    shard = tmp_path / "s" / "records-00000.jsonl"
    torn = qa(2, None, None).model_dump_json()[:40]
    with shard.open("a") as fh:
        fh.write(torn)  # a writer is half-way through its next line
    before = shard.read_bytes()
    assert gate_report(tmp_path / "s").n_records == 2
    assert shard.read_bytes() == before
    with shard.open("a") as fh:
        fh.write(qa(2, None, None).model_dump_json()[40:] + "\n")  # the writer finishes the line
    assert gate_report(tmp_path / "s").n_records == 3


def test_corruption_mid_store_is_a_store_error(tmp_path):
    from synthdspy.store import StoreError

    with RecordStore(tmp_path / "s") as store:
        store.append(qa(0, None, None))
    shard = tmp_path / "s" / "records-00000.jsonl"
    shard.write_text("{broken\n" + shard.read_text())
    with pytest.raises(StoreError, match=r"records-00000\.jsonl: line 1"):
        gate_report(tmp_path / "s")
