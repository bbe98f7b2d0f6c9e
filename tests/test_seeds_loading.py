"""Seed loading on the real shared data and on malformed files, splitting and chunking."""

import json
from pathlib import Path

import pytest

from synthdspy.records import content_hash
from synthdspy.seeds.chunking import chunk_seeds, chunk_words
from synthdspy.seeds.loading import SeedLoadError, load_seeds, parse_hub_id

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The shared data directory; CI always has it, so a missing one fails the test instead of skipping it."""
    if not DATA.is_dir():
        pytest.fail(f"{DATA} is missing: these tests read the shared data")
    return DATA


needs_data = pytest.mark.usefixtures("shared_data")


@needs_data
def test_passages_keep_their_ids():
    seeds = load_seeds(DATA / "passages" / "passages.jsonl", fields={"source": "text", "origin": "source"})
    assert len(seeds) == 3730
    assert seeds[0].id == "cnn_dailymail-00000"
    assert set(seeds[0].data) == {"source", "origin"}
    assert len({s.id for s in seeds}) == 3730


@needs_data
def test_gsm8k_ids_are_content_hashes_and_limit_shuffle():
    path = DATA / "gsm8k" / "train.jsonl"
    fields = {"question": "question", "answer": "answer"}
    seeds = load_seeds(path, fields=fields)
    assert len(seeds) == 7473
    first = json.loads(path.open().readline())
    assert seeds[0].data == first and seeds[0].id == content_hash(first)
    a = load_seeds(path, fields=fields, limit=50, shuffle_seed=3)
    b = load_seeds(path, fields=fields, limit=50, shuffle_seed=3)
    assert [s.id for s in a] == [s.id for s in b]
    assert [s.id for s in a] != [s.id for s in seeds[:50]]


@needs_data
def test_self_instruct_nested_fields():
    fields = {"instruction": "instruction", "input": "instances.0.input", "output": "instances.0.output"}
    seeds = load_seeds(DATA / "self_instruct" / "seed_tasks.jsonl", fields=fields)
    assert len(seeds) == 175 and seeds[0].id == "seed_task_0"
    assert seeds[0].data["output"].startswith("Yes, you can have")
    whole = load_seeds(DATA / "self_instruct" / "seed_tasks.jsonl", limit=1)[0]
    assert "id" not in whole.data and isinstance(whole.data["instances"], list)


def test_missing_field_names_file_record_and_columns(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"question": "a", "answer": "1"}\n{"question": "b"}\n')
    with pytest.raises(SeedLoadError) as err:
        load_seeds(path, fields={"question": "question", "answer": "answer"})
    msg = str(err.value)
    assert str(path) in msg and "record 2" in msg and "'answer'" in msg and "['question']" in msg


def test_bad_line_names_file_and_line(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"text": "fine"}\n\n{"text": "broken\n')
    with pytest.raises(SeedLoadError, match=r"s\.jsonl: line 3: not valid JSON"):
        load_seeds(path)
    path.write_text('{"text": "fine"}\n[1, 2]\n')
    with pytest.raises(SeedLoadError, match="line 2: expected a JSON object"):
        load_seeds(path)


def test_missing_file_and_unknown_type(tmp_path):
    with pytest.raises(SeedLoadError, match="not found"):
        load_seeds(tmp_path / "absent.jsonl")
    odd = tmp_path / "seeds.xml"
    odd.write_text("<x/>")
    with pytest.raises(SeedLoadError, match="unsupported seed file type"):
        load_seeds(odd)


def test_json_csv_parquet_agree(tmp_path):
    import pandas as pd

    rows = [{"id": f"r{i}", "question": f"q{i}", "answer": str(i * 3)} for i in range(5)]
    (tmp_path / "s.json").write_text(json.dumps(rows))
    pd.DataFrame(rows).to_csv(tmp_path / "s.csv", index=False)
    pd.DataFrame(rows).to_parquet(tmp_path / "s.parquet")
    loaded = [load_seeds(tmp_path / f"s.{ext}") for ext in ("json", "csv", "parquet")]
    assert loaded[0] == loaded[1] == loaded[2]
    assert [s.id for s in loaded[0]] == [f"r{i}" for i in range(5)]
    assert loaded[0][4].data == {"question": "q4", "answer": "12"}
    (tmp_path / "bad.json").write_text('{"a": 1}')
    with pytest.raises(SeedLoadError, match="expected a JSON list"):
        load_seeds(tmp_path / "bad.json")


def test_parse_hub_id():
    assert parse_hub_id("hf://openai/gsm8k:main@test") == ("openai/gsm8k", "main", "test")
    assert parse_hub_id("hf://openai/gsm8k:main") == ("openai/gsm8k", "main", "train")
    assert parse_hub_id("hf://owner/name") == ("owner/name", None, "train")
    for bad in ("hf://gsm8k", "hf://a/b/c", "hf://owner/name@", "hf://owner/name:", "openai/gsm8k"):
        with pytest.raises(SeedLoadError):
            parse_hub_id(bad)


def test_an_unreachable_hub_dataset_is_a_seed_error_that_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(SeedLoadError, match=r"hf://nobody/no-such-data: cannot load it .*--seeds"):
        load_seeds("hf://nobody/no-such-data")


def test_chunk_words_overlap_and_coverage():
    words = [f"w{i}" for i in range(23)]
    chunks = chunk_words("  ".join(words), size=10, overlap=3)
    assert [c.split()[0] for c in chunks] == ["w0", "w7", "w14"]
    assert chunks[-1].split()[-1] == "w22" and len(chunks[-1].split()) == 9
    assert chunks[0].split()[-3:] == chunks[1].split()[:3]
    assert chunk_words("a b c", size=5) == ["a b c"]
    assert chunk_words("", size=5) == []
    assert len(chunk_words(" ".join(words[:20]), size=10, overlap=0)) == 2
    for size, overlap in ((5, 5), (5, -1), (0, 0)):
        with pytest.raises(ValueError, match="size > overlap >= 0"):
            chunk_words("a b", size, overlap)


@needs_data
def test_chunk_seeds_on_real_passages():
    seeds = load_seeds(DATA / "passages" / "passages.jsonl", fields={"source": "text"}, limit=40)
    chunks = chunk_seeds(seeds, size=50, overlap=10)
    assert len(chunks) > len(seeds)
    by_parent = {}
    for c in chunks:
        by_parent.setdefault(c.data["parent_id"], []).append(c)
        assert c.id == f"{c.data['parent_id']}#{c.data['chunk_index']}"
    assert set(by_parent) == {s.id for s in seeds}
    first = seeds[0]
    rebuilt = [c.data["source"] for c in by_parent[first.id]]
    assert rebuilt == chunk_words(first.data["source"], 50, 10)
    with pytest.raises(ValueError, match="data\\['text'\\]"):
        chunk_seeds(seeds[:1], 50, 10, field="text")
