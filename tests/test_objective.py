"""The compile objective's arithmetic and batch construction, on hand-built records (no LM calls)."""

from __future__ import annotations

import dspy
import pytest

from synthdspy.config import ObjectiveConfig
from synthdspy.metrics.objective import Objective, lexical_diversity
from synthdspy.optimizers.compile import seed_batches
from synthdspy.program import GateChain
from synthdspy.records import Record, Seed, Verdict


def rec(i: int, text: str, reward: float, passed: bool) -> Record:
    return Record(id=str(i), task="qa", instruction="q", output=text,
                  verdicts=[Verdict(gate="reward", passed=passed, score=reward)])


def test_weighted_score_from_verdicts():
    records = [rec(0, "alpha beta gamma delta", 10, True), rec(1, "epsilon zeta eta theta", 1, False)]
    obj = Objective(ObjectiveConfig(quality=1, pass_rate=2, diversity=1), GateChain([]))
    s = obj.score_records(records)
    assert s.quality == pytest.approx(0.5)  # (9/9 + 0/9) / 2
    assert s.pass_rate == pytest.approx(0.5)
    assert s.diversity == pytest.approx(lexical_diversity([r.text for r in records]))
    assert s.score == pytest.approx((0.5 + 2 * 0.5 + s.diversity) / 4)


def test_diversity_rewards_varied_batches():
    same = [rec(i, "the cat sat on the mat today", 8, True) for i in range(4)]
    varied = [rec(i, t, 8, True) for i, t in enumerate(
        ["the cat sat on the mat", "rivers carve deep canyons", "markets price risk daily", "proofs need axioms"])]
    obj = Objective(ObjectiveConfig(quality=0, pass_rate=0, diversity=1), GateChain([]))
    assert obj.score_records(varied).score > obj.score_records(same).score + 0.3


def test_metric_returns_bool_when_bootstrapping_and_empty_batch_scores_zero():
    obj = Objective(ObjectiveConfig(), GateChain([]), bootstrap_threshold=0.6)
    good = dspy.Prediction(records=[rec(0, "one two three", 10, True), rec(1, "four five six", 10, True)])
    assert obj(None, good) > 0.6 and obj(None, good, trace=[]) is True
    assert obj(None, dspy.Prediction(records=[])) == 0.0


def test_unknown_diversity_metric():
    with pytest.raises(KeyError, match="diversity_metric"):
        Objective(ObjectiveConfig(diversity_metric="nope"), GateChain([]))


def test_seed_batches_cover_every_seed_once():
    seeds = [Seed.from_data({"source": f"text {i}"}) for i in range(7)]
    batches = seed_batches(seeds, 3)
    assert [len(b.seeds) for b in batches] == [3, 3, 1]
    assert [s.id for b in batches for s in b.seeds] == [s.id for s in seeds]
    assert set(batches[0].inputs().keys()) == {"seeds"}
