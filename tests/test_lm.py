"""LM roles: real-model construction, API keys from the environment, per-role metering, the real HTTP path."""

from __future__ import annotations

import json
from pathlib import Path

import dspy
import pytest
from dspy.clients.engines.litellm_engine import LiteLLMEngine

from synthdspy.config import LMConfig, LMRole, load_experiment
from synthdspy.configio import ConfigError
from synthdspy.lm import MeteredLM, UsageMeter, build_lms, build_role, judge_context, roles_context
from synthdspy.provider_engine import ProviderEngine
from synthdspy.sim_server import serve

ROOT = Path(__file__).parent.parent


class Echo(dspy.Signature):
    """Answer the question in one sentence."""

    question: str = dspy.InputField()
    answer: str = dspy.OutputField()


def test_real_role_reads_key_from_env_and_uses_litellm(monkeypatch):
    monkeypatch.setenv("MY_TEST_KEY", "sk-role-key-123456")
    role = LMRole(model="openai/gpt-4o-mini", api_key_env="MY_TEST_KEY", api_base="http://127.0.0.1:9/v1")
    lm = build_role("generator", role, UsageMeter())
    assert isinstance(lm, MeteredLM) and lm.model == "openai/gpt-4o-mini"
    engine = lm.engine
    assert isinstance(engine, ProviderEngine) and isinstance(engine, LiteLLMEngine)
    assert engine.client_options["api_key"] == "sk-role-key-123456" and "api_key" not in lm.kwargs
    assert engine.client_options["timeout"] == 120.0 and lm.num_retries == 0  # retries live in the engine
    assert "sk-role-key" not in json.dumps(lm.dump_state(), default=str)


def test_missing_key_variable_is_a_config_error(monkeypatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    role = LMRole(model="anthropic/claude-3-5-haiku-latest", api_key_env="NOT_SET_ANYWHERE")
    with pytest.raises(ConfigError, match="lm.judge.api_key_env: environment variable NOT_SET_ANYWHERE"):
        build_role("judge", role, UsageMeter())


def test_meter_counts_per_role_and_not_cache_hits():
    lms = build_lms(LMConfig())
    with roles_context(lms):
        dspy.Predict(Echo)(question="What is a prime number?")
        with judge_context():
            dspy.Predict(Echo)(question="Is 7 prime?")
        dspy.Predict(Echo)(question="What is a prime number?")  # identical: served from DSPy's cache
    usage = lms.meter.snapshot()
    assert usage["generator"].calls == 1 and usage["judge"].calls == 1
    assert usage["generator"].total_tokens > 0 and usage["generator"].cost_usd == 0.0


def test_simulated_role_prints_banner(capsys):
    import synthdspy.lm as lm_module

    lm_module._banner_shown = False
    build_lms(LMConfig())
    assert "SIMULATED" in capsys.readouterr().err


def test_generate_through_real_litellm_path_against_local_endpoint(tmp_path, monkeypatch):
    """A generate run whose generator is an OpenAI-compatible server: dspy.LM -> LiteLLM -> HTTP."""
    from synthdspy.pipeline import run_generate

    monkeypatch.setenv("LOCAL_ENDPOINT_KEY", "sk-local-endpoint-key")
    with serve(port=0) as url:
        exp = load_experiment(ROOT / "experiments" / "grounded_qa.toml", [
            f"output.dir={json.dumps(str(tmp_path / 'out'))}", "tracking.autolog=false",
            "lm.generator.model=openai/sim-model", f"lm.generator.api_base={json.dumps(url)}",
            "lm.generator.api_key_env=LOCAL_ENDPOINT_KEY", "gates=[]",
        ])
        out = run_generate(exp, n=4, show_progress=False)
    lines = (out.store_dir / "records-00000.jsonl").read_text().splitlines()
    records = [json.loads(x) for x in lines]
    assert len(records) >= 4
    assert all(r["provenance"]["lm"] == "openai/sim-model" for r in records)
    assert all(r["input"] and r["instruction"] for r in records)
