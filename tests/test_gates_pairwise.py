"""The ``pairwise`` gate: both orders asked and a tie when they disagree (Zheng et al. 2023, section
3.4), the gold, original and rollouts modes, the ranking stored in GRPO records, and the win rates
in gate-report.

Most tests replace the judge by a scripted function of the two texts shown (a fair judge that
prefers the better text wherever it stands, or one biased to a position), so they check the gate's
routing, not any model's taste; one test goes through DSPy with a scripted LM, and the last runs
``generate`` over the provider-realistic endpoint (simulator answers: a pipeline test)."""

from __future__ import annotations

import json
from pathlib import Path

import dspy
import pytest
from dspy.utils.dummies import DummyLM
from pydantic import ValidationError

from synthdspy.gate_report import GateReport, summarize_gates, to_markdown
from synthdspy.gates.pairwise import PairwiseGate, PairwiseParams, combine
from synthdspy.records import Record, Verdict

ROOT = Path(__file__).parent.parent
QUALITY = {"best": 4, "good": 3, "fair": 2, "poor": 1, "gold": 3}


class Judge:
    """A stand-in for the gate's predictor: ``rule(a, b)`` gives "A", "B" or "tie"; calls are kept."""

    def __init__(self, rule) -> None:
        self.rule = rule
        self.calls: list[tuple[str, str]] = []

    def __call__(self, *, criteria, instruction, source, response_a, response_b) -> dspy.Prediction:
        self.calls.append((response_a, response_b))
        return dspy.Prediction(better=self.rule(response_a, response_b), reason=f"{response_a} vs {response_b}")


def fair(a: str, b: str) -> str:
    """Prefers the text of higher QUALITY, wherever it is shown."""
    return "A" if QUALITY[a] > QUALITY[b] else "B" if QUALITY[b] > QUALITY[a] else "tie"


def first_shown(a: str, b: str) -> str:
    """Always prefers the text shown first: pure position bias."""
    return "A"


def gate_with(rule, **params) -> tuple[PairwiseGate, Judge]:
    gate = PairwiseGate(**params)
    gate.judge = Judge(rule)
    return gate, gate.judge


def rec(**fields) -> Record:
    return Record(**{"id": "r", "task": "t", "instruction": "Solve it.", **fields})


@pytest.mark.parametrize(("first_as_a", "first_as_b", "outcome", "consistent"), [
    ("A", "B", "win", True), ("B", "A", "loss", True), ("tie", "tie", "tie", True),
    ("A", "A", "tie", False), ("B", "B", "tie", False),  # position bias: each order prefers the same slot
    ("A", "tie", "tie", False), ("tie", "B", "tie", False), ("B", "tie", "tie", False), ("tie", "A", "tie", False),
])
def test_a_side_wins_only_when_both_orders_prefer_it(first_as_a, first_as_b, outcome, consistent):
    assert combine(first_as_a, first_as_b) == (outcome, consistent)


def test_gold_mode_asks_both_orders_and_reports_the_outcome():
    gate, judge = gate_with(fair, against="gold")
    verdict = gate(rec(output="best", metadata={"gold_answer": "gold"}))
    assert judge.calls == [("best", "gold"), ("gold", "best")]
    assert verdict.passed and verdict.score == 1.0 and verdict.reason.startswith("win: against gold, judge said A")
    assert verdict.details == {"outcome": "win", "orders": ["A", "B"], "wins": 1, "ties": 0, "losses": 0,
                               "inconsistent": 0}


@pytest.mark.parametrize(("answer", "rule", "min_outcome", "passed", "outcome"), [
    ("poor", fair, "tie", False, "loss"),
    ("poor", fair, "loss", True, "loss"),
    ("good", fair, "tie", True, "tie"),  # as good as gold
    ("good", fair, "win", False, "tie"),
    ("best", first_shown, "tie", True, "tie"),  # a biased judge never gives a win
    ("best", first_shown, "win", False, "tie"),
])
def test_min_outcome_decides_the_gold_verdict(answer, rule, min_outcome, passed, outcome):
    gate, _ = gate_with(rule, against="gold", min_outcome=min_outcome)
    verdict = gate(rec(output=answer, metadata={"gold_answer": "gold"}))
    assert verdict.passed is passed and verdict.details["outcome"] == outcome
    assert verdict.reason.startswith(f"{outcome}: ") and verdict.details["inconsistent"] == int(rule is first_shown)


def test_gold_comes_from_the_named_metadata_field_and_its_absence_fails():
    gate, judge = gate_with(fair, against="gold", gold_field="reference")
    assert gate(rec(output="best", metadata={"reference": "gold"})).passed
    missing = gate(rec(output="best", metadata={"gold_answer": "gold"}))
    assert not missing.passed and missing.reason.startswith("no_gold: ") and len(judge.calls) == 2


def test_original_mode_compares_a_variation_with_its_original():
    gate, judge = gate_with(fair, against="original")
    worse = gate(rec(output="fair", input="good"))
    assert not worse.passed and worse.details["outcome"] == "loss" and judge.calls[0] == ("fair", "good")
    assert gate(rec(output="best", input="good")).passed
    empty = gate(rec(output="best", input=""))
    assert not empty.passed and empty.reason.startswith("no_original: ")


def test_rollouts_are_ranked_and_the_best_is_marked():
    gate, judge = gate_with(fair, against="rollouts")
    record = rec(responses=["fair", "best", "poor", "good"])
    verdict = gate(record)
    assert len(judge.calls) == 12  # 6 pairs, both orders
    assert record.metadata["pairwise"] == {"wins": [1, 3, 0, 2], "ties": [0, 0, 0, 0], "losses": [2, 0, 3, 1],
                                           "ranking": [1, 3, 0, 2], "best": 1}
    assert verdict.passed and verdict.score == 1.0
    assert verdict.details == {"wins": 3, "ties": 0, "losses": 0, "inconsistent": 0, "pairs": 6}


def test_rollouts_that_never_separate_fail():
    gate, judge = gate_with(first_shown, against="rollouts")
    record = rec(responses=["fair", "best", "poor"])
    verdict = gate(record)
    assert not verdict.passed and verdict.reason.startswith("all_tied: ")
    assert verdict.details["inconsistent"] == 3 and record.metadata["pairwise"]["ties"] == [2, 2, 2]
    same, same_judge = gate_with(fair, against="rollouts")
    assert not same(rec(responses=["good", "good "])).passed and same_judge.calls == []  # identical: no call
    few = same(rec(responses=["good"]))
    assert not few.passed and few.reason.startswith("too_few_rollouts: ")


def test_the_judge_is_called_through_dspy_in_both_orders():
    lm = DummyLM([{"better": "A", "reason": "first order"}, {"better": "B", "reason": "second order"}])
    with dspy.context(lm=lm):
        verdict = PairwiseGate(against="gold", criteria=["exact", "short"])(
            rec(output="It is 42.", metadata={"gold_answer": "The answer is 41."}))
    assert verdict.details["outcome"] == "win" and verdict.reason.endswith("; first order")
    first, second = (h["messages"][-1]["content"] for h in lm.history)
    assert "1. exact\n2. short" in first
    assert first.index("It is 42.") < first.index("The answer is 41.")
    assert second.index("The answer is 41.") < second.index("It is 42.")


def test_gate_report_sums_the_outcomes_into_win_rates():
    gate, _ = gate_with(fair, against="gold")
    records = [rec(id=str(i), output=answer, metadata={"gold_answer": "gold"})
               for i, answer in enumerate(["best", "best", "good", "poor"])]
    for r in records:
        r.verdicts.append(gate(r))
    (summary,) = summarize_gates(records)
    assert summary.outcomes == {"wins": 2, "ties": 1, "losses": 1, "inconsistent": 0}
    assert summary.passed == 3 and summary.failure_reasons == [("loss", 1)]
    text = to_markdown(GateReport("store", False, 4, 3, [summary], None))
    assert "Wins 2, ties 1, losses 1: win rate 50.0%, tie rate 25.0%" in text
    scored = Record(id="x", task="t", verdicts=[Verdict(gate="reward", passed=True, score=7.0)])
    assert summarize_gates([scored])[0].outcomes == {}  # gates without pairwise details report none


def test_bad_parameters_are_refused():
    with pytest.raises(ValidationError, match="against"):
        PairwiseParams()
    with pytest.raises(ValidationError, match="against"):
        PairwiseParams(against="peers")
    with pytest.raises(ValidationError, match="criteria"):
        PairwiseParams(against="gold", criteria=[])


def test_generate_over_the_provider_endpoint_ranks_grpo_groups(tmp_path, monkeypatch):
    """Pipeline test over the provider-realistic endpoint (simulator answers, so who wins means
    nothing): every GRPO group is ranked by the judge in both orders and keeps its ranking."""
    from synthdspy.config import load_experiment
    from synthdspy.pipeline import run_generate
    from synthdspy.provider_server import ProviderOptions
    from synthdspy.sim_server import serve_provider

    monkeypatch.setenv("SYNTHDSPY_TEST_PROVIDER_KEY", "sk-test-provider-key-0123456789")
    with serve_provider(provider=ProviderOptions(server_error_rate=0.1, seed=5)) as ep:
        sets = [f"output.dir={json.dumps(str(tmp_path / 'out'))}", "tracking.autolog=false", "task.temperatures=[]",
                "lm.generator.concurrency=1", "seeds.train_size=2", "seeds.dev_size=1"]
        for role in ("generator", "judge"):
            sets += [f"lm.{role}.model=openai/sim-model", f"lm.{role}.api_base={json.dumps(ep.url)}",
                     f"lm.{role}.api_key_env=SYNTHDSPY_TEST_PROVIDER_KEY", f"lm.{role}.num_retries=4"]
        out = run_generate(load_experiment(ROOT / "experiments/grpo_pairwise.toml", sets), n=3, show_progress=False,
                           unit_limit=3)
        stats = ep.stats()
    records = [json.loads(x) for x in (out.store_dir / "records-00000.jsonl").read_text().splitlines()]
    assert len(records) == 3 and stats["by_status"].get(500, 0) >= 1
    distinct_pairs = 0
    for r in records:
        ranking = r["metadata"]["pairwise"]
        assert sorted(ranking["ranking"]) == [0, 1, 2, 3] and ranking["best"] == ranking["ranking"][0]
        assert [sum(x) for x in zip(ranking["wins"], ranking["ties"], ranking["losses"], strict=True)] == [3] * 4
        (verdict,) = r["verdicts"]
        assert verdict["gate"] == "pairwise" and verdict["details"]["pairs"] == 6
        rs = [x.strip() for x in r["responses"]]
        distinct_pairs += len({frozenset((a, b)) for a in rs for b in rs if a != b})
    # one request per group for its 4 rollouts (n choices), then 2 judge calls per distinct pair of
    # texts (identical texts tie without a call; a repeated pair is answered from DSPy's cache)
    assert stats["by_status"][200] == 3 * 1 + 2 * distinct_pairs
