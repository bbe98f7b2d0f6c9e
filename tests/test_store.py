"""RecordStore: resume after kills, thread safety, shard rotation and exports."""

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from synthdspy.records import Record, Verdict
from synthdspy.store import RecordStore, StoreError

CHILD = """
import sys
from synthdspy.records import Record, Verdict
from synthdspy.store import RecordStore
store = RecordStore(sys.argv[1], shard_size=40, fsync_every=1000)
i = 0
while True:
    store.append(Record(id=f"r{i:06d}", task="t", output=str(i) * 20000,
                        verdicts=[Verdict(gate="g", passed=i % 3 != 0, reason="x")]))
    i += 1
"""


def make(i: int, passed: bool = True, **extra) -> Record:
    verdicts = [Verdict(gate="reward", passed=passed, score=7.0 if passed else 2.0, reason=f"why {i}")]
    return Record(
        id=f"r{i:06d}",
        task="qa",
        instruction=f"question {i}",
        output=f"answer {i}",
        dimensions={"Style": "Critical"},
        metadata={"i": i, "nested": {"k": [i]}},
        verdicts=verdicts,
        **extra,
    )


def test_append_dedups_and_reopen_keeps_everything(tmp_path):
    with RecordStore(tmp_path) as store:
        assert store.append(make(0)) and store.append(make(1, passed=False))
        assert not store.append(make(0))
        assert len(store) == 2 and store.n_passed == 1 and store.n_rejected == 1
    with RecordStore(tmp_path) as store:
        assert store.ids == {"r000000", "r000001"}
        rejected = list(store.iter_records(passed=False))
        assert [r.id for r in rejected] == ["r000001"]
        assert rejected[0].verdicts[0].reason == "why 1" and not rejected[0].verdicts[0].passed
        assert store.append_many([make(i) for i in range(5)]) == 3
    assert len((tmp_path / "records-00000.jsonl").read_text().splitlines()) == 5


def test_truncated_last_line_is_dropped_and_rest_kept(tmp_path, caplog):
    with RecordStore(tmp_path) as store:
        for i in range(4):
            store.append(make(i))
    shard = tmp_path / "records-00000.jsonl"
    whole = make(4).model_dump_json()
    with shard.open("a") as f:
        f.write(whole[: len(whole) // 2])
    with caplog.at_level("WARNING"), RecordStore(tmp_path) as store:
        assert len(store) == 4
        assert "torn last line 5" in caplog.text
        assert store.append(make(4))
    lines = shard.read_text().splitlines()
    assert [Record.model_validate_json(x).id for x in lines] == [f"r{i:06d}" for i in range(5)]


def test_complete_last_record_missing_newline_is_kept(tmp_path):
    shard = tmp_path / "records-00000.jsonl"
    shard.write_text(make(0).model_dump_json() + "\n" + make(1).model_dump_json())
    with RecordStore(tmp_path) as store:
        assert len(store) == 2
        store.append(make(2))
    assert len(shard.read_text().splitlines()) == 3


def test_corruption_before_the_end_is_an_error(tmp_path):
    shard = tmp_path / "records-00000.jsonl"
    shard.write_text(make(0).model_dump_json() + "\n{broken\n" + make(1).model_dump_json() + "\n")
    with pytest.raises(StoreError, match=r"records-00000\.jsonl: line 2"):
        RecordStore(tmp_path)


def test_sigkill_mid_run_then_resume(tmp_path):
    root = Path(__file__).resolve().parents[1]
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], cwd=root)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if sum(p.stat().st_size for p in tmp_path.glob("records-*.jsonl")) > 8_000_000:
                break
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    raw = b"".join(p.read_bytes() for p in sorted(tmp_path.glob("records-*.jsonl")))
    complete = raw.count(b"\n")
    assert complete >= 80  # spans at least two shards
    with RecordStore(tmp_path, shard_size=40) as store:
        n = len(store)
        assert n == complete
        assert store.ids == {f"r{i:06d}" for i in range(n)}
        ids = [r.id for r in store.iter_records()]
        assert len(ids) == len(set(ids)) == n
        added = store.append_many(
            Record(id=f"r{i:06d}", task="t", output=str(i) * 20000) for i in range(n + 10)
        )
        assert added == 10
    with RecordStore(tmp_path, shard_size=40) as store:
        assert len(store) == n + 10


def test_concurrent_appends(tmp_path):
    store = RecordStore(tmp_path, shard_size=250, fsync_every=50)

    def worker(offset: int) -> None:
        for i in range(300):
            store.append(make((i * 7 + offset) % 1000))  # threads overlap on ids

    threads = [threading.Thread(target=worker, args=(k * 150,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    reopened = RecordStore(tmp_path, shard_size=250)
    ids = [r.id for r in reopened.iter_records()]
    expected = {f"r{(i * 7 + k * 150) % 1000:06d}" for k in range(8) for i in range(300)}
    assert len(ids) == len(set(ids)) and set(ids) == expected
    for p in tmp_path.glob("records-*.jsonl"):
        assert len(p.read_text().splitlines()) <= 250


def test_shard_rotation_survives_reopen(tmp_path):
    with RecordStore(tmp_path, shard_size=3) as store:
        for i in range(7):
            store.append(make(i))
    with RecordStore(tmp_path, shard_size=3) as store:
        for i in range(7, 10):
            store.append(make(i))
    sizes = [len(p.read_text().splitlines()) for p in sorted(tmp_path.glob("records-*.jsonl"))]
    assert sizes == [3, 3, 3, 1]


def test_exports_open_with_standard_readers(tmp_path):
    import datasets
    import pandas as pd

    store = RecordStore(tmp_path / "store")
    for i in range(6):
        store.append(make(i, passed=i % 2 == 0, responses=[f"a{i}", f"b{i}"], reward_scores=[1.0, 2.5]))
    store.append(make(9, turns=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]))
    ds = datasets.load_from_disk(str(store.export(tmp_path / "ds", "dataset")))
    assert ds.num_rows == 4 and all(ds["passed"])
    row = ds[0]
    assert json.loads(row["metadata"]) == {"i": 0, "nested": {"k": [0]}}
    assert json.loads(row["verdicts"])[0]["gate"] == "reward" and row["responses"] == ["a0", "b0"]
    assert ds[3]["turns"][1] == {"role": "assistant", "content": "yo"}
    everything = datasets.load_from_disk(str(store.export(tmp_path / "all", "dataset", passed_only=False)))
    assert everything.num_rows == 7 and sorted(everything["passed"]) == [False] * 3 + [True] * 4
    frame = pd.read_parquet(store.export(tmp_path / "out.parquet", "parquet", passed_only=False))
    assert list(frame["id"]) == [f"r{i:06d}" for i in (0, 1, 2, 3, 4, 5, 9)]
    assert frame["chosen"].isna().all()
    lines = store.export(tmp_path / "out.jsonl", "jsonl").read_text().splitlines()
    back = [Record.model_validate_json(x) for x in lines]
    assert back == list(store.iter_records(passed=True))
    with pytest.raises(ValueError, match="expected one of"):
        store.export(tmp_path / "x", "csv")
    store.close()


def test_empty_store_exports_and_push_needs_token(tmp_path, monkeypatch):
    import datasets

    store = RecordStore(tmp_path / "s")
    assert datasets.load_from_disk(str(store.export(tmp_path / "ds"))).num_rows == 0
    monkeypatch.delenv("MY_TOKEN", raising=False)
    with pytest.raises(StoreError, match="MY_TOKEN"):
        store.push_to_hub("me/data", token_env="MY_TOKEN")
    store.close()


def test_odd_turn_keys_are_refused_not_dropped(tmp_path):
    with RecordStore(tmp_path) as store:
        store.append(make(0, turns=[{"role": "user", "content": "x", "name": "bob"}]))
        with pytest.raises(StoreError, match="r000000"):
            store.to_dataset()
