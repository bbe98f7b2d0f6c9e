"""Gate report of a generate run: pass rate and common failure reasons per gate; for
``adversarial_qa`` records a confusion matrix of injected failure type against the
``hallucination`` gate's diagnosis; for records judged by the ``dimension`` gate, a confusion
matrix of target against predicted value per dimension.

For gates whose verdicts carry pairwise outcomes (``details`` with ``wins``, ``ties``, ``losses``,
as the ``pairwise`` gate writes them), the summed outcomes and the win and tie rates.

Reasons are grouped by their code: a reason written ``"code: details"`` (``rejected_above_threshold:
chosen 8, rejected 7``, ``GENERATOR_PARAMETRIC: ...``) counts under ``code``; any other reason
counts as its first 120 characters.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, get_args

from synthdspy.gates.dimension import ConfusionMatrix, confusion_from_records
from synthdspy.records import Record
from synthdspy.signatures.hallucination import Diagnosis
from synthdspy.store import SHARD_PATTERN, read_records
from synthdspy.tasks.adversarial import EXPECTED_DIAGNOSIS, QA_INJECTIONS

_CODE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*):")
NOT_JUDGED = "(not judged)"
TOP_REASONS = 5
OUTCOME_KEYS = ("wins", "ties", "losses", "inconsistent")


def reason_key(reason: str) -> str:
    """The group a verdict reason counts under: its leading ``code:``, else its first 120 characters."""
    match = _CODE.match(reason.strip())
    if match:
        return match.group(1)
    return reason.strip()[:120] or "(no reason)"


@dataclass
class GateSummary:
    """One gate over a run: verdict count, passes, pass rate, its most common failure reasons, and
    ``outcomes``: the sums of :data:`OUTCOME_KEYS` over verdicts whose details have them (empty otherwise)."""

    gate: str
    n: int
    passed: int
    pass_rate: float
    failure_reasons: list[tuple[str, int]]
    diagnoses: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)


@dataclass
class Confusion:
    """Injected type (rows) against hallucination diagnosis (columns) for adversarial_qa records.

    ``agreement``: share of judged records whose diagnosis equals the expected one (NONE for clean).
    ``detection_rate``: share of judged injected records the gate failed; ``false_alarm_rate``: share
    of judged clean records it failed (None when there are none).
    """

    rows: list[str]
    columns: list[str]
    counts: dict[str, dict[str, int]]
    n: int
    agreement: float | None
    detection_rate: float | None
    false_alarm_rate: float | None


@dataclass
class GateReport:
    """A generate run's gate report (see the module docstring)."""

    store_dir: str
    simulated: bool
    n_records: int
    n_passed: int
    gates: list[GateSummary]
    confusion: Confusion | None
    dimensions: dict[str, ConfusionMatrix] = field(default_factory=dict)


def find_store(run_dir: str | Path) -> Path:
    """The store directory of a run: ``run_dir`` itself when it holds record shards, else
    ``run_dir/generate/store``.

    Raises:
        FileNotFoundError: neither holds any ``records-NNNNN.jsonl`` shard.
    """
    run_dir = Path(run_dir)
    for candidate in (run_dir, run_dir / "generate" / "store"):
        if candidate.is_dir() and any(SHARD_PATTERN.fullmatch(p.name) for p in candidate.iterdir()):
            return candidate
    raise FileNotFoundError(
        f"{run_dir}: no record store here or in {run_dir / 'generate' / 'store'} (expected records-00000.jsonl)"
    )


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def summarize_gates(records: list[Record]) -> list[GateSummary]:
    """Per gate, in order of first appearance: verdicts, passes, top failure reasons, diagnoses,
    pairwise outcomes."""
    order: dict[str, None] = {}
    totals: Counter[str] = Counter()
    passes: Counter[str] = Counter()
    reasons: dict[str, Counter[str]] = {}
    diagnoses: dict[str, Counter[str]] = {}
    outcomes: dict[str, Counter[str]] = {}
    for record in records:
        for v in record.verdicts:
            order.setdefault(v.gate)
            totals[v.gate] += 1
            passes[v.gate] += v.passed
            if not v.passed:
                reasons.setdefault(v.gate, Counter())[reason_key(v.reason)] += 1
            if v.diagnosis:
                diagnoses.setdefault(v.gate, Counter())[v.diagnosis] += 1
            if all(isinstance(v.details.get(k), int) for k in OUTCOME_KEYS[:3]):
                outcomes.setdefault(v.gate, Counter()).update({k: int(v.details.get(k, 0)) for k in OUTCOME_KEYS})
    return [
        GateSummary(gate, totals[gate], passes[gate], passes[gate] / totals[gate],
                    reasons.get(gate, Counter()).most_common(TOP_REASONS), dict(diagnoses.get(gate, {})),
                    {k: outcomes[gate][k] for k in OUTCOME_KEYS} if gate in outcomes else {})
        for gate in order
    ]


def confusion_matrix(records: list[Record]) -> Confusion | None:
    """The injected-type x diagnosis matrix over ``adversarial_qa`` records (None when there are none).

    Row: ``metadata.injection_type`` or ``"none"``. Column: the ``hallucination`` verdict's diagnosis,
    ``"NONE"`` when it passed, ``"(not judged)"`` when the record has no such verdict.
    """
    rows_seen: Counter[str] = Counter()
    counts: dict[str, Counter[str]] = {}
    agree = judged = injected = detected = clean = alarms = 0
    for record in records:
        if record.task != "adversarial_qa":
            continue
        row = record.metadata.get("injection_type") or "none"
        verdict = next((v for v in record.verdicts if v.gate == "hallucination"), None)
        column = NOT_JUDGED if verdict is None else (verdict.diagnosis or "NONE")
        rows_seen[row] += 1
        counts.setdefault(row, Counter())[column] += 1
        if verdict is None:
            continue
        judged += 1
        agree += column == EXPECTED_DIAGNOSIS.get(row, "NONE")
        if row == "none":
            clean += 1
            alarms += not verdict.passed
        else:
            injected += 1
            detected += not verdict.passed
    if not rows_seen:
        return None
    rows = [r for r in ("none", *QA_INJECTIONS) if r in rows_seen] + sorted(set(rows_seen) - {"none", *QA_INJECTIONS})
    present = {c for row in counts.values() for c in row}
    columns = [*get_args(Diagnosis), *([NOT_JUDGED] if NOT_JUDGED in present else [])] + sorted(
        present - {*get_args(Diagnosis), NOT_JUDGED})
    table = {r: {c: counts[r].get(c, 0) for c in columns} for r in rows}
    return Confusion(rows, columns, table, sum(rows_seen.values()), _rate(agree, judged), _rate(detected, injected),
                     _rate(alarms, clean))


def gate_report(run_dir: str | Path) -> GateReport:
    """Read the run's store (:func:`find_store`, read-only) and build its :class:`GateReport`.

    Raises:
        FileNotFoundError: no store at ``run_dir``.
        synthdspy.store.StoreError: a corrupt store file.
    """
    store_dir = find_store(run_dir)
    records = list(read_records(store_dir))
    return GateReport(
        store_dir=str(store_dir),
        simulated=any(r.provenance.lm.startswith("sim/") for r in records),
        n_records=len(records),
        n_passed=sum(r.passed for r in records),
        gates=summarize_gates(records),
        confusion=confusion_matrix(records),
        dimensions=confusion_from_records(records),
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def to_markdown(report: GateReport) -> str:
    """The report as Markdown: a gate table, failure reasons, and the confusion matrix if any."""
    lines = ["# Gate report", "", f"Store: `{report.store_dir}`", ""]
    if report.simulated:
        lines += ["**Simulated LM:** these records and verdicts come from synthdspy's offline simulator, "
                  "not a language model; the figures only exercise the pipeline.", ""]
    lines += [f"Records: {report.n_records}, passed every gate: {report.n_passed} "
              f"({_pct(_rate(report.n_passed, report.n_records))})", "",
              "| gate | verdicts | passed | pass rate |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {g.gate} | {g.n} | {g.passed} | {_pct(g.pass_rate)} |" for g in report.gates]
    for g in report.gates:
        if g.failure_reasons:
            lines += ["", f"## {g.gate}: most common failure reasons", ""]
            lines += [f"- {count} x {reason}" for reason, count in g.failure_reasons]
    for g in report.gates:
        if g.outcomes:
            o = g.outcomes
            total = o["wins"] + o["ties"] + o["losses"]
            lines += ["", f"## {g.gate}: pairwise outcomes", "",
                      f"Wins {o['wins']}, ties {o['ties']}, losses {o['losses']}: win rate "
                      f"{_pct(_rate(o['wins'], total))}, tie rate {_pct(_rate(o['ties'], total))}; "
                      f"comparisons whose two orders disagreed: {o['inconsistent']}"]
    c = report.confusion
    if c is not None:
        lines += ["", "## adversarial_qa: injected type (rows) x hallucination diagnosis (columns)", "",
                  "| injected | " + " | ".join(c.columns) + " |", "| --- |" + " ---: |" * len(c.columns)]
        lines += [f"| {r} | " + " | ".join(str(c.counts[r][col]) for col in c.columns) + " |" for r in c.rows]
        lines += ["", f"Records: {c.n}; diagnosis equals the expected one: {_pct(c.agreement)}; "
                  f"injected records failed: {_pct(c.detection_rate)}; clean records failed: "
                  f"{_pct(c.false_alarm_rate)}"]
    for dim, m in report.dimensions.items():
        lines += ["", f"## dimension {dim}: target (rows) x predicted (columns)", "",
                  "| target | " + " | ".join(m.labels) + " |", "| --- |" + " ---: |" * len(m.labels)]
        lines += [f"| {label} | " + " | ".join(map(str, row)) + " |"
                  for label, row in zip(m.labels, m.matrix, strict=True)]
        lines += ["", f"Texts: {m.total}; classified as their target: {_pct(m.accuracy)}"]
    return "\n".join(lines) + "\n"


def write_gate_report(report: GateReport, out_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``gate_report.json`` and ``gate_report.md`` into ``out_dir`` (default: the directory
    holding the store). Returns (json path, markdown path)."""
    out = Path(out_dir) if out_dir is not None else Path(report.store_dir).parent
    out.mkdir(parents=True, exist_ok=True)
    blob: dict[str, Any] = asdict(report)
    json_path, md_path = out / "gate_report.json", out / "gate_report.md"
    json_path.write_text(json.dumps(blob, indent=2, ensure_ascii=False), encoding="utf-8")
    md_path.write_text(to_markdown(report), encoding="utf-8")
    return json_path, md_path
