"""Gate report of a generate run: pass rate and common failure reasons per gate; for
``adversarial_qa`` records a confusion matrix of injected failure type against the
``hallucination`` gate's diagnosis; for records judged by the ``dimension`` gate, a confusion
matrix of target against predicted value per dimension.

For gates whose verdicts carry pairwise outcomes (``details`` with ``wins``, ``ties``, ``losses``,
as the ``pairwise`` gate writes them), the summed outcomes and the win and tie rates.

Failures are grouped by category (:func:`failure_category`): a reason's leading code, the verdict's
diagnosis, or, for a judge's free-text rationale, where its score falls against the gate's
threshold. Each category shows its count, one whole example reason and its mean score. The
threshold of a scored gate comes from the run's ``generation.json`` beside the store (the gate's
own default when the run did not set it); the gate table shows it with the gate's mean score.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, get_args

from synthdspy.gates.dimension import ConfusionMatrix, confusion_from_records
from synthdspy.records import Record, Verdict
from synthdspy.signatures.hallucination import Diagnosis
from synthdspy.store import SHARD_PATTERN, read_records
from synthdspy.tasks.adversarial import EXPECTED_DIAGNOSIS, QA_INJECTIONS

_CODE_WORD = r"[a-z][a-z0-9_]*|[A-Z][A-Z0-9_]*"  # snake_case or UPPER_CASE: "Vague: ..." is prose, not a code
_CODE = re.compile(rf"^({_CODE_WORD}):")
_IDENTIFIER = re.compile(rf"^(?:{_CODE_WORD})$")
NOT_JUDGED = "(not judged)"
TOP_REASONS = 5
EXAMPLE_CHARS = 400  # an example reason longer than this ends at the last word boundary before it
FACTS_FILE = "generation.json"
OUTCOME_KEYS = ("wins", "ties", "losses", "inconsistent")


def failure_category(verdict: Verdict, threshold: float | None = None) -> str:
    """The category a failed verdict counts under, the first that applies: the reason's leading
    ``code:``, a snake_case or UPPER_CASE word (``rejected_above_threshold: chosen 8, rejected 7``);
    the verdict's ``diagnosis``; a reason that is one such word (``no_source``); ``below_threshold``
    or ``at_or_above_threshold`` when the verdict has a score and the gate a ``threshold``; else
    ``(free-text reason)`` (``(no reason)`` when the reason is empty)."""
    reason = verdict.reason.strip()
    match = _CODE.match(reason)
    if match:
        return match.group(1)
    if verdict.diagnosis:
        return verdict.diagnosis
    if _IDENTIFIER.match(reason):
        return reason
    if verdict.score is not None and threshold is not None:
        return "below_threshold" if verdict.score < threshold else "at_or_above_threshold"
    return "(free-text reason)" if reason else "(no reason)"


def short_example(reason: str) -> str:
    """``reason`` on one line; past :data:`EXAMPLE_CHARS` characters it ends at a word boundary with ``" ..."``."""
    text = " ".join(reason.split())
    if len(text) <= EXAMPLE_CHARS:
        return text
    cut = text.rfind(" ", 0, EXAMPLE_CHARS + 1)
    return text[: cut if cut > 0 else EXAMPLE_CHARS] + " ..."


@dataclass
class FailureGroup:
    """Failed verdicts of one gate in one :func:`failure_category`: how many, the first one's reason
    (:func:`short_example`) and the mean of their scores (None when none has a score)."""

    category: str
    count: int
    example: str
    mean_score: float | None


@dataclass
class GateSummary:
    """One gate over a run: verdict count, passes, pass rate, its most common failure categories,
    ``threshold`` (None for a gate without one, or unknown), the mean score of its scored verdicts,
    and ``outcomes``: the sums of :data:`OUTCOME_KEYS` over verdicts whose details have them (empty otherwise)."""

    gate: str
    n: int
    passed: int
    pass_rate: float
    failures: list[FailureGroup]
    diagnoses: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    threshold: float | None = None
    mean_score: float | None = None

    @property
    def failure_reasons(self) -> list[tuple[str, int]]:
        """(category, count) of :attr:`failures`, most common first."""
        return [(f.category, f.count) for f in self.failures]


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
    ``run_dir/store`` (``run_dir`` is a ``generate`` directory), else ``run_dir/generate/store``
    (``run_dir`` is the experiment's output directory).

    Raises:
        FileNotFoundError: none holds any ``records-NNNNN.jsonl`` shard.
    """
    run_dir = Path(run_dir)
    for candidate in (run_dir, run_dir / "store", run_dir / "generate" / "store"):
        if candidate.is_dir() and any(SHARD_PATTERN.fullmatch(p.name) for p in candidate.iterdir()):
            return candidate
    raise FileNotFoundError(
        f"{run_dir}: no record store here, in {run_dir / 'store'} or in {run_dir / 'generate' / 'store'} "
        "(expected records-00000.jsonl)"
    )


def gate_thresholds(store_dir: Path) -> dict[str, float]:
    """``threshold`` per gate name from the run's ``generation.json`` beside ``store_dir``: the value
    the run set, else the gate's default. Empty when the file is missing or unreadable; a gate used
    twice with different thresholds, or without a ``threshold`` parameter, is left out."""
    try:
        facts = json.loads((store_dir.parent / FACTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    from synthdspy.catalog import GATES

    found: dict[str, set[float]] = {}
    for cfg in facts.get("gates") or [] if isinstance(facts, dict) else []:
        entry = GATES.get(cfg.get("name")) if isinstance(cfg, dict) else None
        field_info = entry.params.model_fields.get("threshold") if entry else None
        if field_info is None:
            continue
        value = cfg.get("threshold", field_info.default)
        if isinstance(value, (int, float)):
            found.setdefault(cfg["name"], set()).add(float(value))
    return {name: values.pop() for name, values in found.items() if len(values) == 1}


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _failure_groups(failed: list[Verdict], threshold: float | None) -> list[FailureGroup]:
    """The :data:`TOP_REASONS` most common categories of ``failed``, most common first."""
    groups: dict[str, list[Verdict]] = {}
    for v in failed:
        groups.setdefault(failure_category(v, threshold), []).append(v)
    ranked = sorted(groups.items(), key=lambda kv: -len(kv[1]))[:TOP_REASONS]
    return [FailureGroup(category, len(vs), short_example(vs[0].reason),
                         _mean([v.score for v in vs if v.score is not None])) for category, vs in ranked]


def summarize_gates(records: list[Record], thresholds: dict[str, float] | None = None) -> list[GateSummary]:
    """Per gate, in order of first appearance: verdicts, passes, top failure categories (scored
    against ``thresholds[gate]`` when given), diagnoses, pairwise outcomes, threshold and mean score."""
    thresholds = thresholds or {}
    order: dict[str, None] = {}
    totals: Counter[str] = Counter()
    passes: Counter[str] = Counter()
    failed: dict[str, list[Verdict]] = {}
    scores: dict[str, list[float]] = {}
    diagnoses: dict[str, Counter[str]] = {}
    outcomes: dict[str, Counter[str]] = {}
    for record in records:
        for v in record.verdicts:
            order.setdefault(v.gate)
            totals[v.gate] += 1
            passes[v.gate] += v.passed
            if not v.passed:
                failed.setdefault(v.gate, []).append(v)
            if v.score is not None:
                scores.setdefault(v.gate, []).append(v.score)
            if v.diagnosis:
                diagnoses.setdefault(v.gate, Counter())[v.diagnosis] += 1
            if all(isinstance(v.details.get(k), int) for k in OUTCOME_KEYS[:3]):
                outcomes.setdefault(v.gate, Counter()).update({k: int(v.details.get(k, 0)) for k in OUTCOME_KEYS})
    return [
        GateSummary(gate, totals[gate], passes[gate], passes[gate] / totals[gate],
                    _failure_groups(failed.get(gate, []), thresholds.get(gate)), dict(diagnoses.get(gate, {})),
                    {k: outcomes[gate][k] for k in OUTCOME_KEYS} if gate in outcomes else {},
                    thresholds.get(gate), _mean(scores.get(gate, [])))
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
        gates=summarize_gates(records, gate_thresholds(store_dir)),
        confusion=confusion_matrix(records),
        dimensions=confusion_from_records(records),
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _score_note(group: FailureGroup, threshold: float | None) -> str:
    """`` (mean score 4, threshold 6.5)`` for a scored group, ``""`` for an unscored one."""
    if group.mean_score is None:
        return ""
    against = f", threshold {threshold:g}" if threshold is not None else ""
    return f" (mean score {group.mean_score:.3g}{against})"


def to_markdown(report: GateReport) -> str:
    """The report as Markdown: a gate table, failure reasons, and the confusion matrix if any."""
    lines = ["# Gate report", "", f"Store: `{report.store_dir}`", ""]
    if report.simulated:
        lines += ["**Simulated LM:** these records and verdicts come from synthdspy's offline simulator, "
                  "not a language model; the figures only exercise the pipeline.", ""]
    lines += [f"Records: {report.n_records}, passed every gate: {report.n_passed} "
              f"({_pct(_rate(report.n_passed, report.n_records))})", "",
              "| gate | verdicts | passed | pass rate | threshold | mean score |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {g.gate} | {g.n} | {g.passed} | {_pct(g.pass_rate)} | {_num(g.threshold)} | {_num(g.mean_score)} |"
              for g in report.gates]
    for g in report.gates:
        if g.failures:
            lines += ["", f"## {g.gate}: failures by category", ""]
            lines += [f"- **{f.category}**: {f.count}{_score_note(f, g.threshold)}; e.g. {f.example}"
                      for f in g.failures]
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
