"""A re-run of a finished generate run skips re-exporting (``generate/exports.json``), and any change
(a larger ``-n``, another format, a deleted export) exports again. Pipeline test over the simulator."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
from datasets import load_from_disk

from synthdspy.config import load_experiment
from synthdspy.pipeline import run_generate

ROOT = Path(__file__).parent.parent


def _exp(tmp_path: Path):
    return load_experiment(ROOT / "experiments" / "quickstart.toml",
                           [f"output.dir={json.dumps(str(tmp_path / 'out'))}", "gates=[]", "tracking.autolog=false",
                            "seeds.sampling_seed=77"])


def _mtimes(directory: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in directory.rglob("*") if p.is_file()}


def test_a_rerun_that_changes_nothing_skips_the_exports_and_any_change_redoes_them(tmp_path):
    exp = _exp(tmp_path)
    first = run_generate(exp, n=4, export=("dataset", "jsonl"), show_progress=False)
    generate = first.store_dir.parent
    before = _mtimes(first.dataset_dir) | _mtimes(generate / "records.jsonl")
    again = run_generate(exp, n=4, export=("dataset", "jsonl"), show_progress=False)
    assert again.stats.units_run == 0 and _mtimes(again.dataset_dir) | _mtimes(generate / "records.jsonl") == before
    mlflow.set_tracking_uri(again.tracking_uri)
    assert mlflow.get_run(again.run_id).data.tags["outputs"] == "unchanged"
    assert mlflow.get_run(first.run_id).data.tags.get("outputs") is None

    more = run_generate(exp, n=6, export=("dataset", "jsonl"), show_progress=False)  # new records: exported
    assert len(load_from_disk(str(more.dataset_dir))) == 6
    assert len((generate / "records.jsonl").read_text().splitlines()) == 6

    run_generate(exp, n=6, export=("dataset", "jsonl", "parquet"), show_progress=False)  # another format
    assert (generate / "records.parquet").exists()
    shutil.rmtree(more.dataset_dir)  # an export removed by hand is made again
    run_generate(exp, n=6, export=("dataset", "jsonl", "parquet"), show_progress=False)
    assert len(load_from_disk(str(more.dataset_dir))) == 6
