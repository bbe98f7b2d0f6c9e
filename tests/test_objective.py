"""The compile objective's arithmetic, feedback, budget guard and batch construction (no LLM)."""

from __future__ import annotations

from types import SimpleNamespace

import dspy
import pytest

from synthdspy.config import BudgetConfig, ObjectiveConfig
from synthdspy.lm import UsageMeter
from synthdspy.metrics.diversity.scorers import DiversityScore, LexicalScorer, cluster_feedback
from synthdspy.metrics.objective import Objective
from synthdspy.optimizers.budget import BudgetExhausted, BudgetGuard, optimizer_knobs
from synthdspy.optimizers.compile import seed_batches
from synthdspy.program import GateChain
from synthdspy.records import Record, Seed, Verdict


def rec(i: int, text: str, reward: float, passed: bool, reason: str = "fine") -> Record:
    return Record(id=str(i), task="qa", instruction="q", output=text,
                  verdicts=[Verdict(gate="reward", passed=passed, score=reward, reason=reason)])


class Fixed:
    """A diversity scorer returning a fixed value, to check the weighting."""

    def __init__(self, name: str, value: float, feedback: str = "") -> None:
        self.name, self.value, self.feedback = name, value, feedback

    def __call__(self, texts):
        return DiversityScore(self.value, self.value, self.feedback)


def test_weighted_score_and_diversity_mix():
    records = [rec(0, "alpha beta gamma delta", 10, True), rec(1, "epsilon zeta eta theta", 1, False)]
    cfg = ObjectiveConfig(quality=1, pass_rate=2, diversity=1, diversity_metrics={"lexical": 1, "cluster_agent": 3})
    obj = Objective(cfg, GateChain([]), {"lexical": Fixed("lexical", 0.2), "cluster_agent": Fixed("c", 0.6)})
    s = obj.score_records(records)
    assert s.quality == pytest.approx(0.5)  # (9/9 + 0/9) / 2
    assert s.pass_rate == pytest.approx(0.5)
    assert s.diversity == pytest.approx((0.2 + 3 * 0.6) / 4)
    assert s.diversity_parts == {"lexical": 0.2, "cluster_agent": 0.6}
    assert s.score == pytest.approx((0.5 + 2 * 0.5 + s.diversity) / 4)


def test_lexical_scorer_rewards_varied_batches():
    same = ["the cat sat on the mat today"] * 4
    varied = ["the cat sat on the mat", "rivers carve deep canyons", "markets price risk daily", "proofs need axioms"]
    assert LexicalScorer()(varied).value > LexicalScorer()(same).value + 0.3


def test_feedback_collects_rationales_gate_reasons_and_cluster_notes():
    records = [rec(0, "a b c", 3, False, reason="vague and ungrounded"),
               Record(id="1", task="qa", output="d e f", verdicts=[
                   Verdict(gate="reward", passed=True, score=9), Verdict(gate="grounding", passed=False,
                                                                          reason="claims a date not in the source")])]
    obj = Objective(ObjectiveConfig(diversity_metrics={"cluster_agent": 1}), GateChain([]),
                    {"cluster_agent": Fixed("c", 0.1, "Records 1, 2 are alike: same opening")}, with_feedback=True)
    out = obj(None, dspy.Prediction(records=records))
    assert isinstance(out, dspy.Prediction) and 0 <= out.score <= 1
    assert "Record 1 scored 3/10: vague and ungrounded" in out.feedback
    assert "Record 2 failed the grounding gate: claims a date" in out.feedback
    assert "Records 1, 2 are alike" in out.feedback


def test_cluster_feedback_ignores_singletons_and_invalid_clusters():
    clusters = [SimpleNamespace(cluster_id=1, sample_indices=[1, 3], uniqueness_reasoning="both recipes"),
                SimpleNamespace(cluster_id=2, sample_indices=[2], uniqueness_reasoning="alone"),
                SimpleNamespace(cluster_id=3, sample_indices=[4, 5], uniqueness_reasoning="rejected grouping")]
    verdicts = [SimpleNamespace(cluster_id=3, valid=False)]
    text = cluster_feedback(SimpleNamespace(clusters=clusters, verdicts=verdicts))
    assert "Records 1, 3 are alike: both recipes" in text
    assert "alone" not in text and "rejected grouping" not in text


def test_metric_returns_bool_when_bootstrapping_and_empty_batch_scores_zero():
    obj = Objective(ObjectiveConfig(), GateChain([]), {"lexical": LexicalScorer()}, bootstrap_threshold=0.6)
    good = dspy.Prediction(records=[rec(0, "one two three", 10, True), rec(1, "four five six", 10, True)])
    assert obj(None, good) > 0.6 and obj(None, good, trace=[]) is True
    assert obj(None, dspy.Prediction(records=[])) == 0.0


def test_missing_scorer_is_an_error():
    with pytest.raises(KeyError, match="no scorer"):
        Objective(ObjectiveConfig(diversity_metrics={"embedding": 1}), GateChain([]), {})


def test_budget_guard_stops_metric_calls_and_lm_spend():
    meter = UsageMeter()
    guard = BudgetGuard(BudgetConfig(metric_calls=3), meter)
    obj = Objective(ObjectiveConfig(), GateChain([]), {"lexical": LexicalScorer()}, guard=guard)
    def batch():
        return dspy.Prediction(records=[rec(0, "x y", 9, True), rec(1, "z w", 9, True)])

    for _ in range(3):
        obj(None, batch())
    scored = batch()
    with pytest.raises(BudgetExhausted, match="metric_calls budget of 3"):
        obj(None, scored)
    done = batch()
    done.scores = obj.score_records(done.records)
    obj(None, done)  # re-reading a scored prediction (GEPA's feedback pass) is not a new evaluation
    assert guard.report()["used"]["metric_calls"] == 3

    lm_guard = BudgetGuard(BudgetConfig(lm_calls=2), meter)
    lm_guard.check_lm()
    lm_guard.check_lm()
    with pytest.raises(BudgetExhausted, match="lm_calls budget of 2"):
        lm_guard.check_lm()
    assert lm_guard.report()["used"]["lm_calls"] == 2 and lm_guard.report()["within_budget"]

    usd_guard = BudgetGuard(BudgetConfig(usd=0.15), meter)
    meter.add("generator", {"prompt_tokens": 10}, 0.1)
    usd_guard.check_lm()
    meter.add("judge", {"prompt_tokens": 10}, 0.1)
    with pytest.raises(BudgetExhausted, match="usd"):
        usd_guard.check_lm()

    gepa_guard = BudgetGuard(BudgetConfig(metric_calls=1), meter, native=("metric_calls",))
    gepa_guard.check_metric()
    gepa_guard.check_metric()  # enforced by GEPA itself: counted, not raised on
    assert gepa_guard.report()["within_budget"] is False


def test_optimizer_knobs_follow_the_metric_call_budget():
    budget = BudgetConfig(metric_calls=40)
    assert optimizer_knobs("gepa", budget, 4, 4, 3) == {"max_metric_calls": 40 - 3 - 4}
    assert optimizer_knobs("mipro", budget, 4, 4, 3)["num_trials"] == (40 - 12) // 4
    assert optimizer_knobs("bootstrap_rs", budget, 4, 4, 3)["num_candidate_programs"] == 40 // 8 - 3
    assert optimizer_knobs("simba", budget, 4, 4, 3) == {"max_steps": 40 // 16, "bsize": 4}
    assert optimizer_knobs("mipro", BudgetConfig(), 4, 4, 3) == {}


def test_seed_batches_cover_every_seed_once():
    seeds = [Seed.from_data({"source": f"text {i}"}) for i in range(7)]
    batches = seed_batches(seeds, 3)
    assert [len(b.seeds) for b in batches] == [3, 3, 1]
    assert [s.id for b in batches for s in b.seeds] == [s.id for s in seeds]
    assert set(batches[0].inputs().keys()) == {"seeds"}
