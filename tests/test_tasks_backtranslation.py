"""The ``backtranslation`` task and the ``self_curation`` gate: trimming, records, the 5-point
threshold and failures. Pipeline tests: the LM is the offline simulator or a scripted judge, so
nothing here says the inferred instructions or the scores are any good."""

from __future__ import annotations

import json
from pathlib import Path

import dspy
import pytest
from dspy.utils import DummyLM
from dspy.utils.exceptions import AdapterParseError

from synthdspy.catalog import GATES, TASKS
from synthdspy.config import load_experiment
from synthdspy.gates.self_curation import SelfCurationGate
from synthdspy.provider_server import ProviderOptions
from synthdspy.records import Record, Seed, SeedFieldError
from synthdspy.sim_server import serve_provider
from synthdspy.simulator import SimLM
from synthdspy.tasks.backtranslation import BacktranslationTask, trim_words

ROOT = Path(__file__).parent.parent
PASSAGE = (
    "Sourdough starts with a starter: flour and water left to ferment for about a week.\n\n"
    "Feed it daily with equal weights of flour and water. When it doubles within six hours of a feed, "
    "it is ready to bake with. Keep it in the fridge between bakes and feed it weekly."
)


def test_trim_words_keeps_spacing_and_prefers_a_sentence_end():
    text = "One two three. Four five, six!\n\nSeven \"eight.\" Nine ten eleven twelve"
    assert trim_words(text, None) == text and trim_words("  short  ", 5) == "short"
    assert trim_words(text, 7) == "One two three. Four five, six!"  # 6 of 7 words, kept line breaks after
    assert trim_words(text, 9) == "One two three. Four five, six!\n\nSeven \"eight.\""
    assert trim_words(text, 11) == trim_words(text, 9)  # the last sentence end before word 11
    no_stop = "alpha beta gamma delta epsilon zeta eta theta"
    assert trim_words(no_stop, 3) == "alpha beta gamma"
    assert trim_words("A b. c d e f g h i j", 9) == "A b. c d e f g h i"  # a cut keeping under half: by words


def test_a_record_is_the_passage_with_an_inferred_instruction():
    lm = SimLM("sim/default")
    with dspy.context(lm=lm):
        (whole,) = BacktranslationTask()(Seed.from_data({"source": PASSAGE}))
        (cut,) = BacktranslationTask(max_words=20)(Seed.from_data({"source": PASSAGE}), rollout=1)
    assert whole.output == PASSAGE and whole.instruction and whole.input == ""
    assert whole.metadata == {"source_words": len(PASSAGE.split()), "trimmed": False}
    assert cut.output == "Sourdough starts with a starter: flour and water left to ferment for about a week."
    assert cut.metadata == {"source_words": len(PASSAGE.split()), "trimmed": True}
    prompts = ["\n".join(str(m["content"]) for m in h["messages"]) for h in lm.history]
    assert "Keep it in the fridge" in prompts[0] and "Keep it in the fridge" not in prompts[1]
    assert lm.history[1]["kwargs"].get("rollout_id") == 1


def test_missing_source_and_malformed_answers_fail_the_unit():
    with dspy.context(lm=SimLM("sim/default")), pytest.raises(SeedFieldError, match="backtranslation.*source"):
        BacktranslationTask()(Seed.from_data({"text": PASSAGE}))
    with dspy.context(lm=SimLM("sim/default", malformed_rate=1.0, cache=False)), pytest.raises(AdapterParseError):
        BacktranslationTask()(Seed.from_data({"source": PASSAGE}))
    with pytest.raises(ValueError, match="max_words"):
        TASKS["backtranslation"].params(max_words=3)


@pytest.mark.parametrize("answered, threshold, score, passed", [
    ("5", 4, 5.0, True), ("4", 4, 4.0, True), ("3", 4, 3.0, False), ("3", 3, 3.0, True),
    ("1", 5, 1.0, False), ("9", 5, 5.0, True), ("0", 1, 1.0, True),
])
def test_self_curation_passes_at_the_threshold_on_the_clipped_score(answered, threshold, score, passed):
    gate = SelfCurationGate(threshold=threshold)
    record = Record(id="r", task="backtranslation", instruction="How do I start a sourdough starter?", output=PASSAGE)
    with dspy.context(lm=DummyLM([{"score": answered, "reason": "reads like a recipe blog"}])):
        verdict = gate(record)
    assert (verdict.gate, verdict.passed, verdict.score) == ("self_curation", passed, score)
    assert verdict.reason == f"score {int(score)}/5, threshold {threshold}: reads like a recipe blog"


def test_self_curation_shows_instruction_input_and_response_and_skips_empty_pairs():
    lm = DummyLM([{"score": "4", "reason": "fine"}])
    record = Record(id="r", task="t", instruction="Summarise the text.", input="Bread rises.", output="It rises.")
    with dspy.context(lm=lm):
        assert SelfCurationGate()(record).passed
        empty = SelfCurationGate()(Record(id="e", task="t", instruction="Summarise.", output="  "))
    prompt = str(lm.history[0]["messages"][-1]["content"])
    assert "Summarise the text.\n\nBread rises." in prompt and "It rises." in prompt
    assert (empty.passed, empty.reason, len(lm.history)) == (False, "empty_pair", 1)
    with pytest.raises(ValueError, match="threshold"):
        GATES["self_curation"].params(threshold=6)


def test_experiment_runs_over_http_with_a_truncating_judge_and_a_healthy_one(tmp_path, monkeypatch):
    """Pipeline test through dspy.LM -> LiteLLM -> HTTP: with a judge cut off mid-answer the units fail
    as truncated; with a healthy endpoint every record carries a 1-5 curation verdict."""
    from synthdspy.llm_failures import RunAbortedError
    from synthdspy.pipeline import run_generate

    monkeypatch.setenv("SYNTHDSPY_TEST_KEY", "sk-test-backtranslation-0000")

    def experiment(url: str, out: str, *extra: str):
        sets = [f"output.dir={json.dumps(str(tmp_path / out))}", "tracking.autolog=false", *extra]
        for role in ("generator", "judge"):
            sets += [f"lm.{role}.model=openai/sim-model", f"lm.{role}.api_base={json.dumps(url)}",
                     f"lm.{role}.api_key_env=SYNTHDSPY_TEST_KEY", f"lm.{role}.num_retries=2"]
        return load_experiment(ROOT / "experiments/backtranslation.toml", sets)

    with serve_provider(provider=ProviderOptions(server_error_rate=0.1, seed=5)) as ep:
        with pytest.raises(RunAbortedError, match="truncated"):
            run_generate(experiment(ep.url, "cut", "lm.judge.max_tokens=6"), n=6, show_progress=False)
        out = run_generate(experiment(ep.url, "ok"), n=6, show_progress=False)
    failures = (tmp_path / "cut/generate/store/failures.jsonl").read_text().splitlines()
    assert failures and all("truncated" in json.loads(f)["class"] for f in failures)
    assert out.stats.passed >= 6 and out.stats.failed_units == 0
    rows = [json.loads(line) for f in (tmp_path / "ok/generate/store").glob("records-*.jsonl")
            for line in f.read_text().splitlines()]
    for row in rows:
        verdicts = row["verdicts"] if isinstance(row["verdicts"], list) else json.loads(row["verdicts"])
        (verdict,) = verdicts
        assert verdict["gate"] == "self_curation" and verdict["score"] in (1, 2, 3, 4, 5)
        assert verdict["passed"] == (verdict["score"] >= 4)
        assert row["instruction"] and row["input"] == "" and len(row["output"].split()) <= 300
