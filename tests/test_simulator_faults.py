"""The simulator's fault injection: configured rates, retries of failed requests (by the simulator
and by DSPy) and malformed answers the adapter rejects."""


import dspy
import pytest
from dspy.utils.exceptions import AdapterParseError, LMRateLimitError, LMServerError
from simulator_helpers import ADAPTERS, SOURCE, memory_cache  # noqa: F401 (autouse fixture)

from synthdspy.simulator import SimCall, SimLM, SimOptions, SimulatedRateLimitError, SimulatedServerError, Simulator


def _simple_messages(i: int) -> list[dict]:
    return dspy.ChatAdapter().format(dspy.Signature("question -> answer"), [], {"question": f"question {i}?"})


@pytest.mark.parametrize("rate_name", ["error_rate", "rate_limit_rate", "malformed_rate"])
def test_injection_rates_roughly_as_configured(rate_name):
    sim = Simulator(SimOptions(seed=3, **{rate_name: 0.2}))
    outcomes = {"error_rate": 0, "rate_limit_rate": 0, "malformed_rate": 0}
    for i in range(300):
        try:
            reply = sim.complete(SimCall(_simple_messages(i)))
            outcomes["malformed_rate"] += "[[ ## answer ## ]]" not in reply.text
        except SimulatedRateLimitError:
            outcomes["rate_limit_rate"] += 1
        except SimulatedServerError:
            outcomes["error_rate"] += 1
    assert abs(outcomes[rate_name] / 300 - 0.2) < 0.07
    assert sum(outcomes.values()) == outcomes[rate_name]


def test_failed_request_succeeds_on_retry():
    sim = Simulator(SimOptions(error_rate=0.5))
    call = SimCall(_simple_messages(0))
    for _ in range(30):
        try:
            sim.complete(call)
            break
        except SimulatedServerError:
            continue
    assert sim.faults["ok"] == 1


def test_dspy_retries_injected_transient_errors():
    lm = SimLM(cache=False, rate_limit_rate=0.3, error_rate=0.2, num_retries=12)
    with dspy.context(lm=lm):
        preds = [dspy.Predict("question -> answer")(question=f"q{i}?") for i in range(12)]
    assert all(p.answer for p in preds)
    assert lm.simulator.faults["rate_limit"] + lm.simulator.faults["server_error"] > 0
    for rate, error in (("rate_limit_rate", LMRateLimitError), ("error_rate", LMServerError)):
        with dspy.context(lm=SimLM(cache=False, num_retries=1, **{rate: 1.0})), pytest.raises(error):
            dspy.Predict("question -> answer")(question="q?")


@pytest.mark.parametrize("adapter", ADAPTERS, ids=["chat", "json"])
def test_malformed_answers_make_the_adapter_raise(adapter):
    with (
        dspy.context(lm=SimLM(cache=False, malformed_rate=1.0), adapter=adapter),
        pytest.raises(AdapterParseError),
    ):
        dspy.Predict("passage -> title, summary")(passage=SOURCE)
