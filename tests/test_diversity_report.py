"""The `synthdspy diversity` library function: loading, table, JSON, charts, MLflow, cluster-agent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_diversity_cluster_agent import canned_lm, memory_cache, topic_handler  # noqa: F401

from synthdspy.configio import ConfigError
from synthdspy.metrics.diversity.cluster_agent import ClusterAgentConfig
from synthdspy.metrics.diversity.inputs import input_names, load_texts
from synthdspy.metrics.diversity.report import markdown_table, run_diversity
from synthdspy.seeds.loading import SeedLoadError

LEXICAL = [
    "context_length",
    "self_repetition",
    "ngram_diversity",
    "compression_ratio",
    "homogenization_rougel",
]


def write_jsonl(path: Path, texts: list[str], field: str = "response") -> Path:
    path.write_text("".join(json.dumps({field: t, "other": 1}) + "\n" for t in texts))
    return path


def test_load_texts_formats_and_errors(tmp_path: Path) -> None:
    import datasets

    jsonl = write_jsonl(tmp_path / "a.jsonl", ["x y", "z"])
    assert load_texts(jsonl, "response") == ["x y", "z"]
    datasets.Dataset.from_dict({"text": ["p", "q"]}).to_parquet(str(tmp_path / "b.parquet"))
    assert load_texts(tmp_path / "b.parquet", "text") == ["p", "q"]
    datasets.Dataset.from_dict({"text": ["r"]}).save_to_disk(str(tmp_path / "ds"))
    assert load_texts(tmp_path / "ds", "text") == ["r"]
    with pytest.raises(SeedLoadError, match=r"a.jsonl: record 1 \(line 1\): field 'text' maps to column 'text', which "
                                            r"is missing; the record has columns \['other', 'response'\]"):
        load_texts(jsonl, "text")
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{broken\n')
    with pytest.raises(SeedLoadError, match="bad.jsonl: line 2: not valid JSON"):
        load_texts(tmp_path / "bad.jsonl", "text")
    (tmp_path / "num.jsonl").write_text('{"text": 3}\n')
    with pytest.raises(SeedLoadError, match="num.jsonl: record 1: field 'text' is int"):
        load_texts(tmp_path / "num.jsonl", "text")
    with pytest.raises(SeedLoadError, match="seed file not found"):
        load_texts(tmp_path / "missing.jsonl", "text")


def test_input_names_strip_suffix_and_disambiguate() -> None:
    assert input_names(["d/davinci_predictions.jsonl", "d/t0.jsonl"]) == ["davinci", "t0"]
    assert input_names(["a/x.jsonl", "b/x.jsonl"]) == ["a/x", "b/x"]


def test_run_writes_table_json_charts_and_mlflow(tmp_path: Path) -> None:
    repetitive = write_jsonl(tmp_path / "rep.jsonl", ["the same answer again and again"] * 20)
    varied = write_jsonl(
        tmp_path / "var.jsonl", [f"answer {i} about topic {i * 7} with word{i}" for i in range(20)]
    )
    report = run_diversity(
        [repetitive, varied], text_field="response", metrics=LEXICAL, output_dir=tmp_path / "out"
    )
    rep, var = (i.metrics for i in report.inputs)
    assert rep["compression_ratio"] > var["compression_ratio"]
    assert rep["homogenization_rougel"] == pytest.approx(1.0) and var["homogenization_rougel"] < 1.0
    assert var["ngram_diversity"] > rep["ngram_diversity"]
    table = markdown_table(report)
    assert table.splitlines()[0].startswith("| input | n | context_length | self_repetition ↓")  # length: no direction
    assert "| rep | 20 |" in table
    saved = json.loads((tmp_path / "out" / "diversity.json").read_text())
    assert [i["name"] for i in saved["inputs"]] == ["rep", "var"]
    assert sorted(Path(f).name for f in report.figures) == sorted(f"{m}.png" for m in LEXICAL)
    assert all(Path(f).read_bytes()[:4] == b"\x89PNG" for f in report.figures)
    import mlflow

    run = mlflow.search_runs(experiment_names=["diversity"], output_format="list")[0]
    assert run.data.metrics["var.compression_ratio"] == pytest.approx(var["compression_ratio"])


def test_unknown_metric_is_a_config_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", ["x", "y"])
    with pytest.raises(ConfigError, match="unknown diversity metric"):
        run_diversity([path], text_field="response", metrics=["nope"], output_dir=tmp_path / "o")
    with pytest.raises(ConfigError, match="needs 1 --ppl-model"):
        run_diversity([path], text_field="response", metrics=["perplexity"], output_dir=tmp_path / "o")


def test_cluster_agent_shares_criteria_across_inputs(tmp_path: Path) -> None:
    narrow = write_jsonl(tmp_path / "narrow.jsonl", [f"alpha text {i}" for i in range(30)])
    broad = write_jsonl(tmp_path / "broad.jsonl", [f"w{i} text {i}" for i in range(30)])
    lm, _ = canned_lm(topic_handler())
    config = ClusterAgentConfig(criteria_rounds=3, cluster_rounds=10, k_samples=5, num_threads=2)
    report = run_diversity(
        [narrow, broad],
        text_field="response",
        metrics=["context_length"],
        output_dir=tmp_path / "out",
        lm=lm,
        cluster_config=config,
    )
    narrow_r, broad_r = report.inputs
    assert narrow_r.metrics["llm_cluster"] == pytest.approx(1 / 5) and broad_r.metrics["llm_cluster"] == 5
    assert "± 0.000" in markdown_table(report)
    assert (tmp_path / "out" / "criteria.json").exists()
    for name in ("narrow", "broad"):
        assert (
            len((tmp_path / "out" / "cluster_agent" / name / "rounds.jsonl").read_text().splitlines()) == 10
        )
    assert (tmp_path / "out" / "llm_cluster.png").exists()


def _chart_titles(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Spy on every chart saved: file name -> its title."""
    from matplotlib.figure import Figure

    titles: dict[str, str] = {}
    save = Figure.savefig

    def spy(self: Figure, path: Any, *args: Any, **kwargs: Any) -> None:
        titles[Path(path).name] = self.axes[0].get_title()
        save(self, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    return titles


def test_simulated_cluster_chart_says_so_and_context_length_claims_no_direction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    titles = _chart_titles(monkeypatch)
    data = write_jsonl(tmp_path / "topics.jsonl", [f"w{i % 4} text {i}" for i in range(12)])
    lm, _ = canned_lm(topic_handler(), model="sim/canned")
    config = ClusterAgentConfig(criteria_rounds=2, cluster_rounds=3, k_samples=5, num_threads=2)
    report = run_diversity([data], text_field="response", metrics=["context_length", "ngram_diversity"],
                           output_dir=tmp_path / "out", lm=lm, cluster_config=config)
    assert report.simulated
    assert set(titles) == {"context_length.png", "ngram_diversity.png", "llm_cluster.png"}
    assert "SIMULATED LM" in titles["llm_cluster.png"]
    assert "SIMULATED" not in titles["ngram_diversity.png"]  # offline metrics do not come from the LM
    assert "diverse" not in titles["context_length.png"] and "higher = more diverse" in titles["ngram_diversity.png"]


def test_cli_prints_table_and_reports_bad_field(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from synthdspy.cli import app

    data = write_jsonl(tmp_path / "a_predictions.jsonl", ["one two three", "four five six seven"])
    args = ["diversity", str(data), "--text-field", "response", "--metrics", "context_length"]
    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "| a | 2 | 3.5 |" in result.stdout
    bad = CliRunner().invoke(app, ["diversity", str(data), "--text-field", "nope", "-o", str(tmp_path / "o")])
    assert bad.exit_code == 2 and "field 'nope' maps to column 'nope', which is missing" in bad.output


def test_cli_with_the_simulator_says_so_and_reports_what_the_criteria_cost(tmp_path: Path) -> None:
    import mlflow
    from typer.testing import CliRunner

    from synthdspy.cli import app

    texts = [f"Lesson {i}: how {w} works, with an example about {w}." for i, w in
             enumerate(["tides", "yeast", "rust", "orbits", "vaccines", "bridges", "glaciers", "printing"] * 2)]
    data = write_jsonl(tmp_path / "lessons.jsonl", texts)
    out = tmp_path / "out"
    args = ["diversity", str(data), "-f", "response", "--metrics", "context_length", "--lm", "sim/default",
            "-N", "4", "-K", "5", "-M", "2", "-J", "3", "--n-criteria", "2", "--threads", "2", "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "SIMULATED LM" in result.output and "completion tokens" in result.output
    report = json.loads((out / "diversity.json").read_text())
    assert report["simulated"] is True
    assert report["criteria_usage"]["prompt_tokens"] > 0
    summary = report["inputs"][0]["cluster_agent"]
    assert (summary["config"]["criteria_samples"], summary["config"]["n_criteria"]) == (3, 2)
    assert "Simulated LM" in (out / "diversity.md").read_text()
    run = mlflow.MlflowClient(report["tracking_uri"]).search_runs(
        [mlflow.MlflowClient(report["tracking_uri"]).get_experiment_by_name("diversity").experiment_id])[0]
    assert run.data.tags["simulated"] == "True" and run.data.metrics["criteria.prompt_tokens"] > 0
