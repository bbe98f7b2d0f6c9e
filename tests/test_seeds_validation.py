"""Bad seed input fails at load time, before any LM call, with one line naming the file and where:
empty files, bytes that are not UTF-8, corrupt Parquet, duplicate ids, null fields."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synthdspy.config import SeedsConfig
from synthdspy.seeds.loading import SeedLoadError, load_seeds
from synthdspy.seeds.source import experiment_seeds

ROOT = Path(__file__).resolve().parents[1]
DEAD_GENERATOR = ["--set", "lm.generator.model=openai/x", "--set", "lm.generator.api_base=http://127.0.0.1:9/v1"]


def _parquet(path: Path, rows: list[dict] | None = None, columns: tuple[str, ...] = ("id", "text")) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = rows if rows is not None else []
    table = pa.table({c: pa.array([r.get(c) for r in rows], type=pa.string()) for c in columns})
    pq.write_table(table, path)
    return path


def _bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    """One bad seed file per failure class -> (path, a regex its error must match)."""
    files = {
        "empty_jsonl": (tmp / "empty.jsonl", b"", "empty"),
        "blank_jsonl": (tmp / "blank.jsonl", b"\n  \n\n", "no rows"),
        "empty_json_list": (tmp / "empty.json", b"[]", "no rows"),
        "header_only_csv": (tmp / "header.csv", b"id,text\n", "no rows"),
        "latin1_jsonl": (tmp / "latin1.jsonl", b'{"id": "a", "text": "ok"}\n{"id": "b", "text": "caf\xe9"}\n',
                         r"line 2: byte 0xe9 at column 25 is not UTF-8"),
        "latin1_csv": (tmp / "latin1.csv", b"id,text\na,ok\nb,na\xefve\n", r"line 3: byte 0xef .* not UTF-8"),
        "random_parquet": (tmp / "random.parquet", bytes(range(256)) * 8, "not a readable Parquet file"),
        "duplicate_ids": (tmp / "dup.jsonl", b'{"id": "x", "text": "a"}\n{"id": "y", "text": "b"}\n\n'
                          b'{"id": "x", "text": "c"}\n', r"duplicate seed id 'x' \(line 1 and line 4\)"),
        "null_field": (tmp / "null.jsonl", b'{"id": "p1", "text": "fine"}\n{"id": "p2", "text": null}\n',
                       r"seed p2: field 'source' \(column 'text'\) is null \(line 2 of "),
    }
    for path, data, _ in files.values():
        path.write_bytes(data)
    files["empty_parquet"] = (_parquet(tmp / "none.parquet"), b"", "no rows")
    real = _parquet(tmp / "real.parquet", [{"id": str(i), "text": f"passage {i}"} for i in range(50)])
    cut = tmp / "truncated.parquet"
    cut.write_bytes(real.read_bytes()[: real.stat().st_size // 2])
    files["truncated_parquet"] = (cut, b"", "not a readable Parquet file")
    return {name: (path, pattern) for name, (path, _, pattern) in files.items()}


CASES = ["empty_jsonl", "blank_jsonl", "empty_json_list", "header_only_csv", "latin1_jsonl", "latin1_csv",
         "random_parquet", "duplicate_ids", "null_field", "empty_parquet", "truncated_parquet"]


@pytest.mark.parametrize("case", CASES)
def test_bad_seed_file_is_a_seed_load_error_naming_the_file(tmp_path, case):
    path, pattern = _bad_files(tmp_path)[case]
    with pytest.raises(SeedLoadError, match=pattern) as err:
        load_seeds(path, fields={"source": "text"})
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg


def test_null_fields_say_null_not_missing_in_every_format(tmp_path):
    rows = [{"id": "a", "text": "one"}, {"id": "b", "text": None}]
    (tmp_path / "s.json").write_text(json.dumps(rows))
    _parquet(tmp_path / "s.parquet", rows)
    (tmp_path / "s.csv").write_text("id,text\na,one\nb\n")  # a short row: no value for text
    for name, where in (("s.json", "record 2"), ("s.parquet", "row 2"), ("s.csv", "line 3")):
        with pytest.raises(SeedLoadError) as err:
            load_seeds(tmp_path / name, fields={"source": "text"})
        msg = str(err.value)
        assert f"seed b: field 'source' (column 'text') is null ({where} of {tmp_path / name})" in msg
        assert "missing" not in msg
    nested = tmp_path / "nested.jsonl"
    nested.write_text('{"instruction": "x", "instances": null}\n')
    with pytest.raises(SeedLoadError, match=r"record 1: field 'input' \(column 'instances.0.input'\) is null "
                                            r"at 'instances' \(line 1 of "):
        load_seeds(nested, fields={"instruction": "instruction", "input": "instances.0.input"})
    # Unmapped columns keep their nulls: a task may treat them as optional.
    assert load_seeds(nested)[0].data == {"instruction": "x", "instances": None}


def test_duplicate_ids_name_both_rows_in_every_format_and_hash_ids_are_not_checked(tmp_path):
    rows = [{"id": "k", "text": "a"}, {"id": "m", "text": "b"}, {"id": "k", "text": "c"}]
    (tmp_path / "s.json").write_text(json.dumps(rows))
    _parquet(tmp_path / "s.parquet", rows)
    (tmp_path / "s.csv").write_text("id,text\nk,a\nm,b\nk,c\n")
    for name, first, second in (("s.json", "record 1", "record 3"), ("s.parquet", "row 1", "row 3"),
                                ("s.csv", "line 2", "line 4")):
        with pytest.raises(SeedLoadError, match=rf"s\.{name[2:]}: duplicate seed id 'k' \({first} and {second}\)"):
            load_seeds(tmp_path / name)
    same = tmp_path / "same.jsonl"
    same.write_text('{"text": "a"}\n{"text": "a"}\n')
    assert len(load_seeds(same)) == 2


def test_csv_row_with_extra_fields_and_byte_order_marks(tmp_path):
    extra = tmp_path / "extra.csv"
    extra.write_text("id,text\na,one\nb,two,three\n")
    with pytest.raises(SeedLoadError, match=r"extra\.csv: line 3: 3 fields, but the header has 2"):
        load_seeds(extra)
    bom = tmp_path / "bom.csv"
    bom.write_bytes("id,text\na,caf\u00e9\n".encode("utf-8-sig"))
    assert [(s.id, s.data) for s in load_seeds(bom)] == [("a", {"text": "caf\u00e9"})]
    bom_jsonl = tmp_path / "bom.jsonl"
    bom_jsonl.write_bytes(b"\xef\xbb\xbf" + b'{"id": "a", "text": "x"}\n')
    assert load_seeds(bom_jsonl)[0].id == "a"


def test_chunking_a_seed_without_source_text_is_a_seed_load_error(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"source": "one two three"}\n{"source": null}\n')
    cfg = SeedsConfig(source=str(path), chunk_words=2)
    with pytest.raises(SeedLoadError, match=r"s\.jsonl: seeds\.chunk_words: seed \w+: data\['source'\] must be"):
        experiment_seeds(cfg, 4)


def _seed_error_line(output: str, path: Path) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("error:") and str(path) in lines[0]
    return lines[0]


@pytest.mark.parametrize("case", ["empty_parquet", "latin1_csv", "truncated_parquet", "duplicate_ids",
                                  "null_field"])
def test_generate_cli_fails_on_bad_seeds_with_one_line_and_exit_2(tmp_path, case):
    from synthdspy.cli import app

    path, pattern = _bad_files(tmp_path)[case]
    out = tmp_path / "out"
    args = ["generate", str(ROOT / "experiments" / "rephrase.toml"), "-n", "2", "--seeds", str(path),
            "--set", f"output.dir={out}", *DEAD_GENERATOR]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "80"})
    assert result.exit_code == 2, result.output
    assert re.search(pattern, _seed_error_line(result.output, path))
    assert not (out / "generate").exists()  # stopped before the store, the LMs and any call


def test_generate_command_line_stops_on_a_latin1_seed_file_before_any_lm_call(tmp_path):
    path, _ = _bad_files(tmp_path)["latin1_jsonl"]
    out = tmp_path / "out"
    cmd = [str(ROOT / ".venv" / "bin" / "synthdspy"), "generate", "experiments/rephrase.toml", "-n", "2",
           "--seeds", str(path), "--set", f"output.dir={out}", *DEAD_GENERATOR]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "80"})
    assert proc.returncode == 2, proc.stderr
    line = _seed_error_line(proc.stderr, path)
    assert "line 2: byte 0xe9" in line and "not UTF-8" in line and "Traceback" not in proc.stderr
    assert not (out / "generate").exists()
