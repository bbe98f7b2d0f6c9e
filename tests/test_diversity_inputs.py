"""`synthdspy diversity` inputs and outputs: every seed format through the seed loader, directory errors,
and the default output directory ``runs/diversity/<name>``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_diversity_cluster_agent import memory_cache  # noqa: F401
from typer.testing import CliRunner

from synthdspy.metrics.diversity.inputs import load_texts, run_name
from synthdspy.metrics.diversity.report import run_diversity
from synthdspy.seeds.loading import SeedLoadError, load_seeds

MARKDOWN = Path(__file__).resolve().parents[2] / "shared" / "data" / "documents" / "markdown"


def test_csv_json_and_parquet_inputs_are_read_like_seeds(tmp_path: Path) -> None:
    import datasets

    (tmp_path / "a.csv").write_text("id,text\n1,first text\n2,second text\n", encoding="utf-8")
    assert load_texts(tmp_path / "a.csv", "text") == ["first text", "second text"]
    (tmp_path / "b.json").write_text(json.dumps([{"body": {"text": "nested one"}}, {"body": {"text": "two"}}]))
    assert load_texts(tmp_path / "b.json", "body.text") == ["nested one", "two"]  # dotted paths, as in [seeds]
    datasets.Dataset.from_dict({"text": ["p", "q"]}).to_parquet(str(tmp_path / "c.parquet"))
    assert load_texts(tmp_path / "c.parquet", "text") == ["p", "q"]


def test_documents_directory_is_read_as_chunks() -> None:
    """CI always has ../shared/data: fail, never skip, when it is missing."""
    assert MARKDOWN.is_dir(), f"{MARKDOWN} is missing (../shared/data is part of the test environment)"
    texts = load_texts(MARKDOWN, "text")
    assert len(texts) > len(list(MARKDOWN.glob("*.md")))  # several chunks per page
    assert any("pypdf" in t for t in texts)


def test_generate_dataset_export_is_read_by_the_seed_loader(tmp_path: Path) -> None:
    import datasets

    datasets.Dataset.from_dict({"id": ["r1", "r2"], "output": ["an answer", "another"]}).save_to_disk(
        str(tmp_path / "dataset"))
    seeds = load_seeds(tmp_path / "dataset", fields={"text": "output"})
    assert [s.data["text"] for s in seeds] == ["an answer", "another"] and seeds[0].id == "r1"
    assert load_texts(tmp_path / "dataset", "output") == ["an answer", "another"]


def test_errors_name_the_file_and_record(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"response": "x"}\n{"response": 3}\n')
    with pytest.raises(SeedLoadError, match=r"a.jsonl: record 2: field 'response' is int, expected text"):
        load_texts(tmp_path / "a.jsonl", "response")
    with pytest.raises(SeedLoadError, match=r"a.jsonl: record 1 \(line 1\): field 'text' maps to column 'text', "
                                            r"which is missing; the record has columns \['response'\]"):
        load_texts(tmp_path / "a.jsonl", "text")
    with pytest.raises(SeedLoadError, match="missing.jsonl: seed file not found"):
        load_texts(tmp_path / "missing.jsonl", "text")


def test_a_directory_that_is_neither_a_dataset_nor_documents_says_so(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "records.jsonl").write_text('{"text": "x"}\n')
    with pytest.raises(SeedLoadError) as info:
        load_texts(tmp_path / "runs", "text")
    message = str(info.value)
    assert str(tmp_path / "runs") in message and "is a directory" in message
    assert "save_to_disk" in message and ".jsonl" in message and "\n" not in message
    with pytest.raises(SeedLoadError, match=r"runs: is a directory"):  # the seed loader says so too
        load_seeds(tmp_path / "runs")


def test_criteria_path_that_is_a_directory_is_a_one_line_error(tmp_path: Path) -> None:
    from synthdspy.cli import app

    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"text": f"text {i} here"}) + "\n" for i in range(12)))
    (tmp_path / "old").mkdir()
    args = ["diversity", str(tmp_path / "a.jsonl"), "--metrics", "context_length", "--lm", "sim/default",
            "--criteria", str(tmp_path / "old"), "-N", "2", "-K", "5", "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("error:"))
    assert f"{tmp_path / 'old'}: is a directory" in line and "criteria.json" in line


def test_run_name_comes_from_the_inputs() -> None:
    assert run_name(["d/davinci_predictions.jsonl"]) == "davinci"
    assert run_name(["d/a.jsonl", "d/b.parquet"]) == "a_vs_b"
    many = [f"d/model-{i}-with-a-long-name.jsonl" for i in range(8)]
    assert run_name(many) == "model-0-with-a-long-name_and_7_more"
    assert run_name(["x/a.jsonl", "y/a.jsonl"]) == "x-a_vs_y-a"


def test_default_output_is_runs_diversity_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from synthdspy.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "lessons.jsonl").write_text('{"text": "one two"}\n{"text": "three"}\n')
    report = run_diversity([tmp_path / "lessons.jsonl"], metrics=["context_length"])
    assert Path(report.output_dir) == Path("runs/diversity/lessons")
    assert (tmp_path / "runs" / "diversity" / "lessons" / "diversity.json").exists()
    result = CliRunner().invoke(app, ["diversity", "lessons.jsonl", "--metrics", "context_length"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "diversity_report").exists()
    assert "runs/diversity/lessons/diversity.json" in result.output
