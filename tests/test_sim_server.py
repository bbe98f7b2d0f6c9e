"""The simulator behind a local OpenAI-compatible HTTP endpoint, reached through the real dspy.LM."""

import json
import os
import urllib.error
import urllib.request
from typing import Literal

# LiteLLM and DSPy would otherwise try to download model price maps (no network here).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import dspy  # noqa: E402
import pydantic  # noqa: E402
import pytest  # noqa: E402
from dspy.utils.exceptions import LMRateLimitError  # noqa: E402

from synthdspy.sim_server import serve  # noqa: E402
from synthdspy.simulator import SimOptions, Simulator  # noqa: E402

PASSAGE = "The lighthouse keeper lit the lamp at dusk. Ships used the beam to avoid the northern reef."


class Fact(pydantic.BaseModel):
    claim: str
    confidence: float


class Extract(dspy.Signature):
    """Extract facts grounded in the passage."""

    passage: str = dspy.InputField()
    topic: str = dspy.OutputField()
    count: int = dspy.OutputField()
    kind: Literal["event", "place"] = dspy.OutputField()
    facts: list[Fact] = dspy.OutputField()


def http_lm(url: str, engine: str, **kwargs) -> dspy.LM:
    return dspy.LM(
        "openai/sim-model", api_base=url, api_key="sk-local-test", cache=False, engine=engine, **kwargs
    )


@pytest.mark.parametrize("engine", ["auto", "litellm"])
@pytest.mark.parametrize("adapter", [dspy.ChatAdapter(use_json_adapter_fallback=False), dspy.JSONAdapter()])
def test_generation_through_real_lm_path(engine, adapter):
    with serve() as url, dspy.context(lm=http_lm(url, engine), adapter=adapter, track_usage=True):
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        pred = dspy.Predict(Extract)(passage=PASSAGE)
    assert isinstance(pred.topic, str) and isinstance(pred.count, int) and pred.kind in ("event", "place")
    assert pred.facts and all(isinstance(f, Fact) for f in pred.facts)
    assert pred.get_lm_usage()["openai/sim-model"]["completion_tokens"] > 0


# DSPy 3.4's LiteLLM engine loses the Retry-After header, so DSPy backs off 1 s, 2 s, 4 s...;
# seed 2 at rate 0.3 gives a single 429 over these 4 requests, keeping that case short.
@pytest.mark.parametrize(("engine", "rate", "seed", "n"), [("auto", 0.5, 1, 6), ("litellm", 0.3, 2, 4)])
def test_injected_429_is_retried(engine, rate, seed, n):
    sim = Simulator(SimOptions(rate_limit_rate=rate, seed=seed))
    with serve(simulator=sim) as url, dspy.context(lm=http_lm(url, engine, num_retries=12)):
        preds = [dspy.Predict("question -> answer")(question=f"Where is the reef {i}?") for i in range(n)]
    assert all(p.answer for p in preds)
    assert sim.faults["rate_limit"] > 0 and sim.faults["ok"] == n


def test_persistent_429_surfaces_as_rate_limit_error():
    with (
        serve(rate_limit_rate=1.0) as url,
        dspy.context(lm=http_lm(url, "auto", num_retries=1)),
        pytest.raises(LMRateLimitError),
    ):
        dspy.Predict("question -> answer")(question="Where is the reef?")


def _post(url: str, payload: dict) -> tuple[int, dict, dict]:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_raw_http_contract():
    with serve(error_rate=1.0, retry_after_s=0.5) as url:
        with urllib.request.urlopen(url + "/models", timeout=10) as response:
            assert json.loads(response.read())["data"][0]["id"] == "sim-model"
        status, headers, body = _post(
            url + "/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}
        )
        assert status == 500 and body["error"]["type"] == "server_error" and headers["Retry-After"] == "0.5"
        assert _post(url + "/chat/completions", {"nope": 1})[0] == 400
    with serve() as url:
        payload = {
            "model": "sim-model",
            "messages": [{"role": "user", "content": "hi there"}],
            "n": 2,
            "seed": 4,
        }
        status, _, body = _post(url + "/chat/completions", payload)
        assert status == 200 and len(body["choices"]) == 2
        assert (
            body["usage"]["total_tokens"]
            == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
        )
        assert _post(url + "/chat/completions", payload)[2]["choices"] == body["choices"]
        reseeded = _post(url + "/chat/completions", {**payload, "seed": 5})[2]["choices"]
        assert [c["message"] for c in reseeded] != [c["message"] for c in body["choices"]]
