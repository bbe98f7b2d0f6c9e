"""The ``toxicity`` gate's plumbing: how it routes a judge's per-category scores into verdicts.

The simulator cannot judge harm, so these tests drive the judge with a scripted LM (DSPy's
``DummyLM``, one fixed answer per text): they check that clearly toxic texts scored high fail with
the right categories and clearly benign ones pass, that threshold, categories and fields are
honoured, and that an incomplete answer fails. They say nothing about any real model's judgment.
The last test is a pipeline test over the provider-realistic endpoint (simulator answers)."""

from __future__ import annotations

import json
from pathlib import Path

import dspy
import pytest
from dspy.utils.dummies import DummyLM
from pydantic import ValidationError

from synthdspy.gates.toxicity import ToxicityGate, ToxicityParams
from synthdspy.records import Record
from synthdspy.signatures.safety import HARM_CATEGORIES

ROOT = Path(__file__).parent.parent
ZERO = dict.fromkeys(HARM_CATEGORIES, 0)

# (text, the scripted judge's non-zero scores, categories that must be flagged at threshold 5)
TOXIC = [
    ("You are a worthless idiot and everyone in the office laughs at you behind your back.",
     {"harassment": 8}, ["harassment"]),
    ("People of that religion are vermin and should be driven out of this country.",
     {"hate": 9, "harassment": 6}, ["harassment", "hate"]),
    ("If you really want to end it all, here is the surest way to do it tonight.",
     {"self-harm": 10}, ["self-harm"]),
    ("Send me naked photos of yourself right now or I will post your address online.",
     {"sexual": 8, "harassment": 7, "violence": 3}, ["harassment", "sexual"]),
    ("Walk home alone tonight and I will break both of your legs with a bat.",
     {"violence": 9, "harassment": 7}, ["harassment", "violence"]),
    ("Here is how to fit a skimmer on a petrol pump so the card numbers are never traced to you.",
     {"illegal activity": 9}, ["illegal activity"]),
]
BENIGN = [
    ("The Orlby dam was finished in 1923 and feeds two turbines below the town.", {}),
    ("Police said the suspect was arrested two streets from the bank an hour after the robbery.", {"violence": 1}),
    ("If you are having thoughts of suicide, please call a crisis line tonight; you are not alone.", {"self-harm": 1}),
    ("Rub the butter into the flour, add the milk, then bake the scones for twelve minutes.", {}),
    ("The Battle of Hastings in 1066 ended with the death of King Harold and a Norman king.", {"violence": 2}),
]
ANSWERS = {text: {"scores": {**ZERO, **scores}, "reason": f"scripted for: {text[:20]}"}
           for text, scores, *_ in TOXIC + BENIGN}


def scripted(answers: dict | None = None) -> DummyLM:
    """A judge that answers each text (the key, found in the prompt) with its fixed scores."""
    return DummyLM(answers or ANSWERS)


def rec(**fields) -> Record:
    return Record(**{"id": "r", "task": "t", **fields})


@pytest.mark.parametrize(("text", "scores", "flagged"), TOXIC, ids=[t[0][:24] for t in TOXIC])
def test_clearly_toxic_texts_fail_with_their_categories(text, scores, flagged):
    with dspy.context(lm=scripted()):
        verdict = ToxicityGate()(rec(output=text))
    assert not verdict.passed and verdict.reason.startswith("toxic: ")
    assert verdict.details["flagged"] == [c for c in HARM_CATEGORIES if c in flagged]
    assert verdict.score == max(scores.values()) and verdict.details["scores"] == {**ZERO, **scores}
    for category in flagged:
        assert f"{category} {scores[category]} (output)" in verdict.reason


@pytest.mark.parametrize(("text", "scores"), BENIGN, ids=[t[0][:24] for t in BENIGN])
def test_clearly_benign_texts_pass(text, scores):
    with dspy.context(lm=scripted()):
        verdict = ToxicityGate()(rec(output=text))
    assert verdict.passed and verdict.details["flagged"] == []
    assert verdict.score == max(scores.values(), default=0) and verdict.reason.startswith("below 5: highest ")


def test_the_threshold_is_inclusive():
    text = TOXIC[3][0]  # sexual 8, harassment 7, violence 3
    with dspy.context(lm=scripted()):
        assert ToxicityGate(threshold=8)(rec(output=text)).details["flagged"] == ["sexual"]
        assert ToxicityGate(threshold=9)(rec(output=text)).passed
        assert ToxicityGate(threshold=3)(rec(output=text)).details["flagged"] == ["harassment", "sexual", "violence"]


def test_only_the_configured_categories_are_asked_and_counted():
    lm = scripted()
    with dspy.context(lm=lm):
        verdict = ToxicityGate(categories=["hate", "self-harm"])(rec(output=TOXIC[0][0]))  # harassment 8 only
    assert verdict.passed and set(verdict.details["scores"]) == {"hate", "self-harm"}
    prompt = lm.history[-1]["messages"][-1]["content"]
    assert "- hate: " in prompt and "- self-harm: " in prompt and "- harassment: " not in prompt


def test_every_judged_field_is_scored_and_the_worst_text_decides():
    record = rec(instruction=BENIGN[0][0], output=BENIGN[3][0], responses=[BENIGN[4][0], TOXIC[4][0]],
                 rejected=TOXIC[1][0], input=TOXIC[2][0])
    with dspy.context(lm=scripted()):
        verdict = ToxicityGate()(record)
    assert set(verdict.details["by_text"]) == {"instruction", "output", "responses[0]", "responses[1]"}
    assert verdict.details["flagged"] == ["harassment", "violence"]
    assert "violence 9 (responses[1])" in verdict.reason
    with dspy.context(lm=scripted()):
        only_seed = ToxicityGate(fields=["input"])(record)
    assert only_seed.details["flagged"] == ["self-harm"] and list(only_seed.details["by_text"]) == ["input"]


def test_an_answer_missing_a_category_fails_and_spelling_variants_count():
    text = BENIGN[0][0]
    partial = {text: {"scores": {"harassment": 0, "hate": 0}, "reason": "short"}}
    with dspy.context(lm=scripted(partial)):
        verdict = ToxicityGate()(rec(output=text))
    assert not verdict.passed
    assert verdict.reason == "incomplete_judgment: no score for self-harm, sexual, violence, illegal activity (output)"
    variants = {text: {"scores": {"Harassment": 0, "HATE": 1, "self_harm": 0, "sexual": 0, "Violence": 0,
                                  "illegal_activity": 6, "spam": 9}, "reason": "variants"}}
    with dspy.context(lm=scripted(variants)):
        verdict = ToxicityGate()(rec(output=text))
    assert verdict.details["flagged"] == ["illegal activity"] and "spam" not in verdict.details["scores"]


def test_a_record_without_text_passes_without_a_call():
    lm = scripted()
    with dspy.context(lm=lm):
        verdict = ToxicityGate()(rec(input="a seed passage"))
    assert verdict.passed and verdict.reason == "below 5: no text to judge" and not lm.history


def test_bad_parameters_are_refused():
    with pytest.raises(ValidationError, match="categories"):
        ToxicityParams(categories=["spam"])
    with pytest.raises(ValidationError, match="threshold"):
        ToxicityParams(threshold=0)


def test_generate_over_the_provider_endpoint_routes_judge_answers(tmp_path, monkeypatch):
    """Pipeline test over the provider-realistic endpoint: generator and judge are served by it
    (simulator answers, so the scores mean nothing); every record gets a toxicity verdict whose
    details hold what the judge said for its instruction and output, through overloaded answers and retries."""
    from synthdspy.config import load_experiment
    from synthdspy.pipeline import run_generate
    from synthdspy.provider_server import ProviderOptions
    from synthdspy.sim_server import serve_provider

    monkeypatch.setenv("SYNTHDSPY_TEST_PROVIDER_KEY", "sk-test-provider-key-0123456789")
    with serve_provider(provider=ProviderOptions(overloaded_rate=0.15, seed=2)) as ep:
        sets = [f"output.dir={json.dumps(str(tmp_path / 'out'))}", "tracking.autolog=false", "task.num_questions=1",
                'gates=[{name = "toxicity", threshold = 5}]', "seeds.train_size=2", "seeds.dev_size=2"]
        for role in ("generator", "judge"):
            sets += [f"lm.{role}.model=openai/sim-model", f"lm.{role}.api_base={json.dumps(ep.url)}",
                     f"lm.{role}.api_key_env=SYNTHDSPY_TEST_PROVIDER_KEY", f"lm.{role}.num_retries=4"]
        out = run_generate(load_experiment(ROOT / "experiments/safe_qa.toml", sets), n=2, show_progress=False,
                           unit_limit=4)
        stats = ep.stats()
    records = [json.loads(x) for x in (out.store_dir / "records-00000.jsonl").read_text().splitlines()]
    assert len(records) == out.stats.units_run == 4 and stats["by_status"].get(529, 0) >= 1
    assert stats["by_status"][200] == 4 * 3  # per unit: the question and answer, then two judged texts
    for r in records:
        (verdict,) = r["verdicts"]
        assert verdict["gate"] == "toxicity" and set(verdict["details"]["by_text"]) == {"instruction", "output"}
        code = verdict["reason"].split(":")[0]
        assert code in {"toxic", "incomplete_judgment"} if not verdict["passed"] else code.startswith("below 5")
