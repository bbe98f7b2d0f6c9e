"""`UsageMeter.track`: DSPy calls made inside the block are billed to a role, one call each, cache
hits free, unpriced models counted as unpriced (never as $0)."""

from __future__ import annotations

import dspy
from test_diversity_cluster_agent import canned_lm, memory_cache  # noqa: F401

from synthdspy.usage import RoleUsage, UsageMeter


class Echo(dspy.Signature):
    """Answer the question."""

    question: str = dspy.InputField()
    answer: str = dspy.OutputField()


def handler(task, inputs):
    return {"answer": "42"}


def test_track_bills_each_call_to_the_role_and_cache_hits_are_free() -> None:
    lm, engine = canned_lm(handler)
    meter = UsageMeter()
    predict = dspy.Predict(Echo)
    with dspy.context(lm=lm), meter.track("judge"):
        predict(question="a")
        predict(question="b")
        predict(question="a")  # answered by DSPy's cache
    assert engine.calls == 2
    judge = meter.snapshot()["judge"]
    assert (judge.calls, judge.prompt_tokens, judge.completion_tokens) == (2, 200, 20)  # canned: 100 + 10 a call
    assert judge.unpriced_calls == 2 and meter.unpriced  # "canned/test" has no price


def test_role_usages_add_up() -> None:
    a = RoleUsage(calls=1, prompt_tokens=10, completion_tokens=2, cost_usd=0.5, unpriced_calls=0)
    b = RoleUsage(calls=2, prompt_tokens=5, completion_tokens=1, cost_usd=0.0, unpriced_calls=2)
    assert a + b == RoleUsage(calls=3, prompt_tokens=15, completion_tokens=3, cost_usd=0.5, unpriced_calls=2)
    assert (a + b).cost_text() == "$0.5000 + 2 unpriced calls" and b.cost_text() == "unpriced"
