"""Large stores: exports stream (never every row in memory), the MLflow records table is capped."""

from __future__ import annotations

import tracemalloc

import datasets
import pandas as pd

from synthdspy.mlflow_records import table_sample
from synthdspy.records import Record, Verdict
from synthdspy.store import RecordStore


def record(i: int, passed: bool = True, size: int = 100) -> Record:
    return Record(id=f"r{i:06d}", task="t", output=f"{i} " + "y" * size,
                  verdicts=[Verdict(gate="g", passed=passed, reason="" if passed else "low")])


def test_export_streams_rows_instead_of_holding_them_all(tmp_path):
    """3,000 records of 10 KB (30 MB of text): exporting the dataset and Parquet file allocates less
    than one copy of the rows at its peak (the Arrow writer holds one batch of 1,000 rows; building
    the rows in a list first peaked at three copies),
    and every row arrives, in order."""
    with RecordStore(tmp_path / "store", fsync_every=1000) as store:
        for i in range(3000):
            store.append(record(i, size=10_000))
        total = 3000 * 10_000
        tracemalloc.start()
        store.export(tmp_path / "ds", "dataset")
        store.export(tmp_path / "r.parquet", "parquet")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < total * 3 // 4, f"peak {peak / 1e6:.1f} MB for {total / 1e6:.0f} MB of rows"
    ds = datasets.load_from_disk(str(tmp_path / "ds"))
    assert ds.num_rows == 3000 and ds[0]["id"] == "r000000" and ds[2999]["id"] == "r002999"
    assert len(ds[7]["output"]) == len(record(7, size=10_000).output)
    assert list(pd.read_parquet(tmp_path / "r.parquet", columns=["id"])["id"]) == [f"r{i:06d}" for i in range(3000)]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the scratch directories are gone


def test_export_after_more_appends_is_not_served_from_a_stale_cache(tmp_path):
    with RecordStore(tmp_path / "store") as store:
        store.append(record(0))
        assert datasets.load_from_disk(str(store.export(tmp_path / "a"))).num_rows == 1
        store.append(record(1))
        assert store.to_dataset().num_rows == 2
        assert datasets.load_from_disk(str(store.export(tmp_path / "a"))).num_rows == 2  # overwritten


def test_table_sample_keeps_rejected_first_then_passed_in_write_order():
    records = [record(i, passed=i % 7 != 3) for i in range(30)]  # rejected: 3, 10, 17, 24
    chosen, total, described = table_sample(iter(records), max_rows=10)
    assert total == 30
    assert len(chosen) == 10
    assert {r.id for r in chosen if not r.passed} == {"r000003", "r000010", "r000017", "r000024"}
    assert [r.id for r in chosen if r.passed] == [f"r{i:06d}" for i in (0, 1, 2, 4, 5, 6)]
    assert [r.id for r in chosen] == sorted(r.id for r in chosen)  # write order
    assert described.startswith("10 of 30 records (all 4 rejected, then the first 6 passed")
    few, total, described = table_sample(iter(records[:5]), max_rows=10)
    assert few == records[:5] and described == "all 5 records"
    capped, _, described = table_sample(iter(records), max_rows=2)
    assert [r.id for r in capped] == ["r000003", "r000010"] and "the first 2 of 4 rejected" in described
