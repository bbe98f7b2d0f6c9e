"""The hallucination gate and the reward gate's preference (dual) and GRPO (best-of) rules."""

from __future__ import annotations

import dspy
import pytest
from dspy.utils.exceptions import AdapterParseError

from synthdspy.config import LMConfig, ObjectiveConfig
from synthdspy.gates.hallucination import HallucinationGate, judged_pairs
from synthdspy.gates.judged import GroundingGate, RewardGate
from synthdspy.lm import build_lms, roles_context
from synthdspy.metrics.diversity.scorers import LexicalScorer
from synthdspy.metrics.objective import Objective
from synthdspy.program import GateChain
from synthdspy.records import Record
from synthdspy.simulator import SimLM

PASSAGE = (
    "The Orlby dam was finished in 1923 after the river Tamsin flooded the town three years in a row. "
    "It holds back 4.2 million cubic metres of water and feeds two turbines. "
    "Its keeper, Ada Marsh, opens the sluice gates every March before the snow melts."
)
FAITHFUL = "The Orlby dam was finished in 1923 after the river Tamsin flooded the town three years in a row."
UNRELATED = "Quarterly earnings rose sharply as investors rotated into growth stocks and bond yields fell."
FAILURES = {"GENERATOR_PARAMETRIC", "GENERATOR_TEMPERATURE", "DOMAIN_MISMATCH", "INSTRUCTION_QUALITY"}


def rec(**fields) -> Record:
    base = {"id": "r", "task": "t", "instruction": "When was the Orlby dam finished?", "input": PASSAGE}
    return Record(**{**base, **fields})


@pytest.fixture()
def lms():
    roles = build_lms(LMConfig())
    with roles_context(roles):
        yield roles


# ---- hallucination --------------------------------------------------------------------------


def test_pipeline_hallucination_passes_faithful_and_diagnoses_unfaithful(lms):
    """Pipeline test: the check-then-diagnose calls go to the judge role only. Its verdicts come from the
    simulator's judge, which decides by word overlap with the source: the outcome is decided by the simulator's
    heuristics and is not evidence of the gate's quality."""
    gate = HallucinationGate()
    ok = gate(rec(output=FAITHFUL))
    assert ok.passed and ok.diagnosis is None and ok.score == 1.0
    bad = gate(rec(output=UNRELATED))
    assert not bad.passed and bad.diagnosis in FAILURES and bad.score == 0.0
    assert bad.reason.startswith(f"{bad.diagnosis}: ")
    assert len(lms.judge.history) == 3 and not lms.generator.history  # check, check + diagnose; judge role only


def test_hallucination_without_source_fails(lms):
    verdict = HallucinationGate()(rec(input="", output=FAITHFUL))
    assert not verdict.passed and verdict.reason == "no_source" and not lms.judge.history


def test_pipeline_hallucination_judges_chosen_of_preference_records(lms):
    """Pipeline test: the chosen side of a pair is the one judged. Its verdicts come from the simulator's judge,
    which decides by word overlap with the source: the outcome is decided by the simulator's heuristics and is not
    evidence of the gate's quality."""
    gate = HallucinationGate()
    assert gate(rec(chosen=FAITHFUL, rejected=UNRELATED)).passed
    assert not gate(rec(chosen=UNRELATED, rejected=FAITHFUL)).passed


def test_pipeline_grounding_judges_the_answer_of_pairs_groups_and_conversations(lms):
    """Pipeline test: the judged text is the output, the chosen side, any response or the last assistant turn. Its
    verdicts come from the simulator's judge, which decides by word overlap with the source: the outcome is decided
    by the simulator's heuristics and is not evidence of the gate's quality."""
    gate = GroundingGate()
    assert gate(rec(output=FAITHFUL)).passed and not gate(rec(output=UNRELATED)).passed
    assert gate(rec(chosen=FAITHFUL, rejected=UNRELATED)).passed
    assert not gate(rec(chosen=UNRELATED, rejected=FAITHFUL)).passed
    assert gate(rec(responses=[FAITHFUL, UNRELATED])).passed
    assert gate(rec(turns=[{"role": "user", "content": "When?"}, {"role": "assistant", "content": FAITHFUL}])).passed


def test_pipeline_hallucination_group_passes_with_one_faithful_response(lms):
    """Pipeline test: a group passes when one response is judged faithful, scored by the faithful share. Its
    verdicts come from the simulator's judge, which decides by word overlap with the source: the outcome is decided
    by the simulator's heuristics and is not evidence of the gate's quality."""
    gate = HallucinationGate()
    mixed = gate(rec(responses=[FAITHFUL, UNRELATED]))
    assert mixed.passed and mixed.score == pytest.approx(0.5)
    none = gate(rec(responses=[UNRELATED, UNRELATED + " Again."]))
    assert not none.passed and none.diagnosis in FAILURES


def test_judged_pairs_for_conversations():
    turns = [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"},
             {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "A2"}]
    assert judged_pairs(rec(turns=turns, output="A1")) == [("Q1\nQ2", "A1\nA2")]
    assert judged_pairs(rec(output="x")) == [("When was the Orlby dam finished?", "x")]


def test_hallucination_malformed_judge_answer_raises():
    with dspy.context(lm=SimLM("sim/default", malformed_rate=1.0)), pytest.raises(AdapterParseError):
        HallucinationGate()(rec(output=UNRELATED))


# ---- reward: dual and group rules -----------------------------------------------------------


class ScriptedReward(RewardGate):
    """RewardGate whose judge is replaced by fixed scores per response text (counts calls)."""

    def __init__(self, scores: dict[str, float], threshold: float = 6.0) -> None:
        super().__init__(threshold=threshold)
        self.scores = scores
        self.calls = 0

    def score(self, instruction: str, source: str, response: str) -> tuple[float, str]:
        self.calls += 1
        return self.scores[response], f"scored {response}"


@pytest.mark.parametrize(("chosen", "rejected", "passed", "code"), [
    (8, 3, True, None),
    (8, 7, False, "rejected_above_threshold"),
    (8, 6, False, "rejected_above_threshold"),  # rejected exactly at threshold is too good
    (5, 2, False, "chosen_below_threshold"),
    (5, 9, False, "chosen_below_threshold"),  # chosen checked first
])
def test_reward_dual_rule_for_preference_pairs(chosen, rejected, passed, code):
    gate = ScriptedReward({"good": chosen, "weak": rejected})
    verdict = gate(rec(chosen="good", rejected="weak"))
    assert verdict.passed is passed and verdict.score == chosen
    if code:
        assert verdict.reason.startswith(f"{code}: chosen {chosen:g}, rejected {rejected:g}")


def test_reward_group_rule_scores_each_response_once():
    gate = ScriptedReward({"a": 3, "b": 7, "c": 5})
    record = rec(responses=["a", "b", "c"])
    verdict = gate(record)
    assert verdict.passed and verdict.score == 7 and record.reward_scores == [3, 7, 5]
    assert gate.calls == 3
    low = rec(responses=["a", "c"])
    assert not gate(low).passed and low.reward_scores == [3, 5]


def test_reward_group_reuses_task_scores():
    gate = ScriptedReward({})
    record = rec(responses=["a", "b"], reward_scores=[2.0, 9.0])
    verdict = gate(record)
    assert verdict.passed and verdict.score == 9.0 and gate.calls == 0


def test_reward_single_output_and_conversation():
    gate = ScriptedReward({"plain": 6, "user: hi\nassistant: hello": 4})
    assert gate(rec(output="plain")).passed
    convo = rec(output="hello", turns=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}])
    assert not gate(convo).passed


def test_pipeline_reward_gate_on_simulator_contrasts_faithful_with_unrelated(lms):
    """Pipeline test: the reward gate asks the judge once per side of a pair. Its verdicts come from the simulator's
    judge, which decides by word overlap with the source: the outcome is decided by the simulator's heuristics and
    is not evidence of the gate's quality."""
    verdict = RewardGate(threshold=6)(rec(chosen=FAITHFUL + " " + FAITHFUL, rejected=UNRELATED))
    assert verdict.passed, verdict.reason
    assert len(lms.judge.history) == 2


def test_objective_reads_chosen_score_from_the_reward_verdict():
    gate = ScriptedReward({"good": 9, "weak": 2})
    chain = GateChain([gate])
    objective = Objective(ObjectiveConfig(), chain, {"lexical": LexicalScorer()})
    record = chain(rec(chosen="good", rejected="weak"))
    assert objective.record_quality(record)[0] == 9
