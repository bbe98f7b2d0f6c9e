"""A generate run's records, gate report and generation facts as MLflow artifacts.

Stored records, passed and rejected, become rows of the table artifact ``records.json``
(``mlflow.log_table``): the MLflow UI shows it in the run's Artifacts tab as a table and in the
experiment's evaluation view, where rows can be searched and two runs' tables compared. The table
holds at most ``[tracking] table_rows`` records (default 10,000): every rejected record first (up
to the cap), then the passed ones in write order, shown in write order; the run's tag
``records_table`` says which (``all 120 records`` or ``10000 of 100000 records: ...``). The store
and the exports always hold every record. The gate
report (``gate_report.json``/``.md``, as ``synthdspy gate-report`` writes them) and the run's
generation facts (``generation.json``: task, program hash, prompts, gates, LMs; what the dataset
card is made from) are artifacts too, and each gate's pass rate is a metric.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from synthdspy.dataset_card import FACTS_FILE
from synthdspy.records import Record

TABLE_FILE = "records.json"
TABLE_ROWS = 10_000
TEXT_COLUMNS = ("task", "instruction", "input", "output", "chosen", "rejected")
JSON_COLUMNS = ("responses", "reward_scores", "turns", "dimensions", "metadata")
VERDICT_FIELDS = ("passed", "score", "reason", "diagnosis")


def record_row(record: Record) -> dict[str, Any]:
    """One table row: ``id``, ``passed``, ``failed_gates`` (comma-separated, empty when it passed),
    per verdict ``<gate>.passed/.score/.reason/.diagnosis`` (a gate that judged the record twice gets
    ``<gate>#2.*`` for its second verdict), the text fields, the structured fields as JSON strings
    (None when empty), ``seed_id``, ``lm`` and ``rollout_id``."""
    row: dict[str, Any] = {"id": record.id, "passed": record.passed,
                           "failed_gates": ",".join(v.gate for v in record.verdicts if not v.passed)}
    seen: dict[str, int] = {}
    for verdict in record.verdicts:
        seen[verdict.gate] = seen.get(verdict.gate, 0) + 1
        key = verdict.gate if seen[verdict.gate] == 1 else f"{verdict.gate}#{seen[verdict.gate]}"
        row.update({f"{key}.{field}": getattr(verdict, field) for field in VERDICT_FIELDS})
    row.update({name: getattr(record, name) for name in TEXT_COLUMNS})
    for name in JSON_COLUMNS:
        value = getattr(record, name)
        row[name] = json.dumps(value, ensure_ascii=False) if value else None
    row.update(seed_id=record.provenance.seed_id, lm=record.provenance.lm, rollout_id=record.provenance.rollout_id)
    return row


def records_table(records: Iterable[Record]) -> dict[str, list[Any]]:
    """The records as columns (``{column: [value per record]}``, rows as :func:`record_row`); a
    verdict column is None in the rows of records that gate did not judge."""
    rows = [record_row(r) for r in records]
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return {name: [row.get(name) for row in rows] for name in columns}


def table_sample(records: Iterable[Record], max_rows: int) -> tuple[list[Record], int, str]:
    """At most ``max_rows`` of ``records`` for the table, read in one pass holding at most
    ``2 * max_rows``: every rejected record (up to the cap), then passed ones in write order.

    Returns:
        The chosen records in write order, how many ``records`` there were, and a one-line
        description of the choice.
    """
    rejected: list[tuple[int, Record]] = []
    passed: list[tuple[int, Record]] = []
    total = n_rejected = 0
    for index, record in enumerate(records):
        total += 1
        n_rejected += not record.passed
        kept = passed if record.passed else rejected
        if len(kept) < max_rows:
            kept.append((index, record))
    if total <= max_rows:
        return [r for _, r in sorted(rejected + passed, key=lambda pair: pair[0])], total, f"all {total} records"
    rows = rejected[:max_rows] + passed[:max_rows - min(len(rejected), max_rows)]
    chosen = [r for _, r in sorted(rows, key=lambda pair: pair[0])]
    n_passed = len(chosen) - min(len(rejected), max_rows)
    what = f"all {n_rejected}" if n_rejected <= max_rows else f"the first {max_rows} of {n_rejected}"
    return chosen, total, (f"{len(chosen)} of {total} records ({what} rejected, then the first {n_passed} passed, "
                           "in write order; [tracking] table_rows caps it, the store and exports hold every record)")


def log_generate_artifacts(out: Path, store_dir: Path, facts: dict[str, Any], max_rows: int = TABLE_ROWS) -> None:
    """Write ``out/generation.json`` (``facts``) and the gate report into ``out``, and log them,
    the records table ``records.json`` (at most ``max_rows`` records of ``store_dir``, chosen by
    :func:`table_sample`, described by the tag ``records_table``) and the metrics
    ``gate.<name>.pass_rate`` to the active MLflow run. With no stored record (or ``max_rows`` 0),
    no table.

    Raises:
        synthdspy.store.StoreError: a corrupt store file.
    """
    import mlflow

    from synthdspy.gate_report import gate_report, write_gate_report
    from synthdspy.store import read_records
    from synthdspy.tracking import log_metrics

    facts_path = out / FACTS_FILE
    facts_path.write_text(json.dumps(facts, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    mlflow.log_artifact(str(facts_path))
    chosen, total, described = table_sample(read_records(store_dir), max_rows)
    if not total:  # no record stored (every unit failed): no table, no gate report
        return
    if chosen:
        mlflow.log_table(data=records_table(chosen), artifact_file=TABLE_FILE)
        mlflow.set_tag("records_table", described)
    report = gate_report(store_dir)
    for path in write_gate_report(report, out):
        mlflow.log_artifact(str(path))
    log_metrics({f"gate.{g.gate}.pass_rate": g.pass_rate for g in report.gates})
