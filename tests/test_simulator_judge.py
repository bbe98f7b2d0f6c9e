"""The simulator as a judge: scores, verdicts and rationales follow measured quality; penalties for
repetition, debris and missing reasoning."""

from typing import Literal

import dspy
import pytest
from simulator_helpers import ADAPTERS, SOURCE, memory_cache  # noqa: F401 (autouse fixture)

from synthdspy.simulator import SimLM, debris, judge_features, repetition


class Grade(dspy.Signature):
    """Grade how well the answer is supported by the source."""

    source: str = dspy.InputField()
    answer: str = dspy.InputField()
    score: int = dspy.OutputField(desc="1 to 10")
    supported: bool = dspy.OutputField()
    verdict: Literal["pass", "fail"] = dspy.OutputField()
    rationale: str = dspy.OutputField()


@pytest.mark.parametrize("adapter", ADAPTERS, ids=["chat", "json"])
def test_judge_scores_follow_measured_quality(adapter):
    grounded = (
        "Because the angle of the dance shows the direction relative to the sun, foragers search that area."
    )
    ungrounded = "Penguins enjoy cold oceans and long winters."
    with dspy.context(lm=SimLM(cache=False), adapter=adapter):
        good = dspy.Predict(Grade)(source=SOURCE, answer=grounded)
        bad = dspy.Predict(Grade)(source=SOURCE, answer=ungrounded)
    assert good.score > bad.score and bad.score >= 1 and good.score <= 10
    assert (good.supported, bad.supported) == (True, False)
    assert (good.verdict, bad.verdict) == ("pass", "fail")
    assert "0.00 of its content words" in bad.rationale
    assert judge_features(grounded, SOURCE)["quality"] > judge_features(ungrounded, SOURCE)["quality"]


def test_judge_penalties_measure_repetition_debris_and_reasoning_only_when_asked():
    varied = "Bees dance to share routes. Foragers read the angle. Weather changes how often they dance."
    assert repetition(varied) < 0.1 and repetition(" ".join([varied] * 3)) > 0.6
    assert debris('Intro line.\n["a", "b"]') == 0.5 and debris(varied) == 0.0
    terse = "Bees dance to show where flowers are, and other bees follow the dance to find food quickly."
    because = terse.replace(", and", " because")
    plain = judge_features(because, None, "Describe the bee dance.")["quality"]
    asked = judge_features(because, None, "Explain step by step why bees dance.")["quality"]
    unasked = judge_features(terse, None, "Explain step by step why bees dance.")["quality"]
    assert asked > unasked and abs(plain - judge_features(terse, None, "Describe the bee dance.")["quality"]) < 0.05
