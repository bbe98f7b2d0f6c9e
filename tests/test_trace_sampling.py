"""Generate traces only the first units and the failures, with spans cut to ``trace_max_chars``.

Pipeline tests on the simulator (in-process and over the provider-realistic HTTP endpoint): they
check what MLflow stores and how large its database grows, never the simulator's text.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest

from synthdspy.config import load_experiment
from synthdspy.provider_server import ProviderOptions
from synthdspy.sim_server import serve_provider
from synthdspy.trace_sampling import truncating

ROOT = Path(__file__).parent.parent
KEY_ENV = "SYNTHDSPY_TRACE_TEST_KEY"
SEED_CHARS = 60_000


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-trace-sampling-test")


def big_seeds(path: Path, count: int, chars: int = SEED_CHARS) -> Path:
    """``count`` passages of ``chars`` characters each, as a JSONL seed file."""
    words = ["the", "river", "carries", "silt", "past", "the", "mill", "and", "town", "keeps", "records"]
    with path.open("w", encoding="utf-8") as f:
        for i in range(count):
            text = " ".join(words[(i + k) % len(words)] for k in range(chars // 4))[:chars]
            f.write(json.dumps({"text": f"passage {i}: {text}"}) + "\n")
    return path


def rephrase(tmp_path: Path, out: str, seeds: Path, *extra: str):
    sets = [f"output.dir={json.dumps(str(tmp_path / out))}", f"seeds.source={json.dumps(str(seeds))}",
            "gates=[]", "tracking.autolog=true", "lm.generator.concurrency=4", *extra]
    return load_experiment(ROOT / "experiments" / "rephrase.toml", sets)


def traces(out) -> list:
    client = mlflow.MlflowClient(out.tracking_uri)
    experiment = client.get_run(out.run_id).info.experiment_id
    return client.search_traces(locations=[experiment], max_results=1000)


def test_only_the_first_units_are_traced_and_the_database_stays_small(tmp_path):
    """Seeds of 60 KB: 30 records with 3 traced units take a few hundred KB of ``mlflow.db`` over
    an untraced run, where tracing every unit in full would store the seeds many times over."""
    from synthdspy.pipeline import run_generate

    seeds = big_seeds(tmp_path / "seeds.jsonl", 40)
    untraced = run_generate(rephrase(tmp_path, "a", seeds, "tracking.trace_units=0"), n=30, show_progress=False)
    traced = run_generate(rephrase(tmp_path, "b", seeds, "tracking.trace_units=3", "tracking.trace_max_chars=2000"),
                          n=30, show_progress=False)
    assert untraced.stats.passed == traced.stats.passed == 30
    assert traces(untraced) == []
    kept = traces(traced)
    assert len(kept) == 3
    for trace in kept:
        assert len(trace.data.spans) > 1  # the whole unit: program, task, LM calls
        for span in trace.data.spans:
            for value in (span.inputs, span.outputs):
                text = value if isinstance(value, str) or value is None else json.dumps(value)
                assert text is None or len(text) <= 2000 + 80, (span.name, len(text))
    grown = (tmp_path / "b" / "mlflow.db").stat().st_size - (tmp_path / "a" / "mlflow.db").stat().st_size
    seed_bytes = seeds.stat().st_size  # 2.4 MB: one full copy of the seeds is already more than the bound
    assert grown < 3 * 150_000 < seed_bytes / 4


def test_failed_units_get_a_trace_over_http(tmp_path):
    """Refusals from the endpoint (record-fatal, no retry) with ``trace_units = 0``: each failed
    unit leaves one ERROR trace naming its seed; the units that succeeded leave none. Seeds of 2,500
    characters (the simulator's answer to a 60 KB one would exceed max_tokens), cut at 500."""
    from synthdspy.pipeline import run_generate

    seeds = big_seeds(tmp_path / "seeds.jsonl", 40, chars=2500)
    with serve_provider(provider=ProviderOptions(content_filter_rate=0.25, seed=3)) as ep:
        sets = ["lm.generator.model=openai/sim-model", f"lm.generator.api_base={json.dumps(ep.url)}",
                f"lm.generator.api_key_env={KEY_ENV}", "lm.generator.num_retries=1", "lm.generator.timeout_s=10"]
        exp = rephrase(tmp_path, "f", seeds, "tracking.trace_units=0", "tracking.trace_max_chars=500", *sets)
        out = run_generate(exp, n=12, show_progress=False)
    failed = [json.loads(line) for line in (out.store_dir / "failures.jsonl").read_text().splitlines()]
    assert out.stats.failed_units == len(failed) > 0
    kept = traces(out)
    assert len(kept) == len(failed)
    assert {t.info.state.value for t in kept} == {"ERROR"}
    roots = [t.data.spans[0] for t in kept]
    assert {s.name for s in roots} == {"unit"}
    assert sorted(s.attributes["synthdspy.seed_id"] for s in roots) == sorted(f["seed_id"] for f in failed)
    assert all(len(s.inputs) <= 500 + 80 for s in roots)  # the 2,500-character seed is cut


def test_truncating_cuts_long_inputs_and_outputs_only():
    class Span:
        def __init__(self, inputs, outputs):
            self.inputs, self.outputs = inputs, outputs

        def set_inputs(self, value):
            self.inputs = value

        def set_outputs(self, value):
            self.outputs = value

    cut = truncating(100)
    span = Span({"passage": "x" * 500}, {"answer": "short"})
    cut(span)
    assert span.outputs == {"answer": "short"}
    assert span.inputs.startswith('{"passage": "xxx') and len(span.inputs) < 200
    assert "415 more characters cut" in span.inputs  # 515 characters of JSON, 100 kept
