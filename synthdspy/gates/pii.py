"""The deterministic ``pii`` gate: find personal data in a record's texts and reject or redact it.

Detection calls Microsoft Presidio's predefined recognizers directly (``presidio-analyzer``:
regular expressions plus checksums, no NLP model): email addresses, phone numbers (Google's
``phonenumbers`` matcher), credit-card numbers (Luhn checksum), IBANs (ISO 13616 mod-97
checksum), IPv4/IPv6 addresses and US social security numbers (invalid area/group/serial
blocks rejected). Presidio's ``AnalyzerEngine`` is not used: it loads a spaCy model that cannot be
downloaded here, and without one its context words cannot raise scores, so each finding keeps its
recognizer's base score (validated emails, cards and IBANs 1.0, IPs 0.6, SSNs 0.5, phones 0.4).
Email domains are checked against the public-suffix snapshot that ``tldextract`` ships, never
fetched from the network (Presidio's own check would try to download the list on every run).

Phone matching is stricter than Presidio's defaults, measured on the 3,730 shipped passages:
Presidio's leniency 1 over its default regions (which include Germany, whose plan allows very
short local numbers) matched four-digit years ("1649"), year ranges ("1694 - 1743") and DOI
fragments; leniency 2 (``phonenumbers``' STRICT_GROUPING) and at least 7 digits leave only
number-shaped matches (see ``tests/test_gates_pii.py`` for every finding left).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import Field

from synthdspy.gates.base import Gate
from synthdspy.records import Record, Verdict
from synthdspy.registry import Params, register_gate

Entity = Literal["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "US_SSN"]
TextField = Literal["instruction", "input", "output", "chosen", "rejected", "responses", "turns"]
ENTITIES: tuple[str, ...] = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "US_SSN")
FIELDS: tuple[str, ...] = ("instruction", "input", "output", "chosen", "rejected", "responses", "turns")
PHONE_REGIONS = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR")  # Presidio's default regions
PHONE_LENIENCY = 2  # phonenumbers.Leniency.STRICT_GROUPING
PHONE_MIN_DIGITS = 7


@dataclass(frozen=True)
class Span:
    """One detected item in one text: entity type, character offsets ``[start, end)`` and score in [0, 1]."""

    entity: str
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class Finding:
    """A :class:`Span` located in a record: ``where`` is the field (``output``, ``responses[2]``,
    ``turns[1]``: the turn's content); offsets index the text as it was before any redaction."""

    where: str
    span: Span

    def describe(self) -> str:
        """``"output[12:30] EMAIL_ADDRESS 1.00"``: location, type and score, never the matched text."""
        s = self.span
        return f"{self.where}[{s.start}:{s.end}] {s.entity} {s.score:.2f}"


def record_texts(record: Record, fields: list[str]) -> list[tuple[str, str]]:
    """(location, text) for each non-empty text of ``record`` among ``fields`` (names from
    :data:`FIELDS`), in that order: a plain field is located by its name, each item of
    ``responses`` as ``responses[i]`` and each turn's content as ``turns[i]``."""
    out: list[tuple[str, str]] = []
    for name in fields:
        if name == "responses":
            out += [(f"responses[{i}]", r) for i, r in enumerate(record.responses or []) if r]
        elif name == "turns":
            out += [(f"turns[{i}]", t.get("content", "")) for i, t in enumerate(record.turns or []) if t.get("content")]
        elif getattr(record, name):
            out.append((name, getattr(record, name)))
    return out


@cache
def _suffix_extractor() -> Any:
    """A ``tldextract.TLDExtract`` reading only its bundled public-suffix snapshot (no network, no cache dir)."""
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


def _recognizers(entities: tuple[str, ...], phone_regions: tuple[str, ...], phone_leniency: int) -> list[Any]:
    """Presidio recognizer instances for ``entities`` (imported here: presidio loads spaCy, ~3 s)."""
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )

    class OfflineEmailRecognizer(EmailRecognizer):
        """Presidio's email recognizer whose domain check uses tldextract's bundled snapshot."""

        def validate_result(self, pattern_text: str) -> bool:
            return _suffix_extractor()(pattern_text).fqdn != ""

    build = {
        "EMAIL_ADDRESS": OfflineEmailRecognizer,
        "PHONE_NUMBER": lambda: PhoneRecognizer(supported_regions=phone_regions, leniency=phone_leniency),
        "CREDIT_CARD": CreditCardRecognizer,
        "IBAN_CODE": IbanRecognizer,
        "IP_ADDRESS": IpRecognizer,
        "US_SSN": UsSsnRecognizer,
    }
    return [build[e]() for e in entities]


def resolve_overlaps(spans: list[Span]) -> list[Span]:
    """Non-overlapping spans sorted by start: of two overlapping spans the higher score wins, then
    the longer one, then the earlier one (one item matched by two recognizers, such as a card
    number that also parses as a phone number, is reported once, as its most certain type)."""
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (-s.score, -(s.end - s.start), s.start)):
        if all(span.end <= k.start or span.start >= k.end for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)


def redact(text: str, spans: list[Span]) -> str:
    """``text`` with each span (non-overlapping, as :func:`resolve_overlaps` returns) replaced by
    ``<ENTITY>``; every character outside the spans is kept as it was."""
    parts, pos = [], 0
    for span in sorted(spans, key=lambda s: s.start):
        parts += [text[pos:span.start], f"<{span.entity}>"]
        pos = span.end
    parts.append(text[pos:])
    return "".join(parts)


class PiiDetector:
    """Find personal data in text with Presidio's pattern recognizers (see the module docstring).

    Args:
        entities: the entity types to look for (a subset of :data:`ENTITIES`).
        min_score: findings scoring below this are dropped (Presidio's weakest patterns, a bare
            9-digit number as an SSN at 0.05 or ``::`` as an IPv6 address at 0.1, fall below the
            default 0.3).
        phone_regions: ISO country codes whose number formats the phone matcher tries.
        phone_leniency: ``phonenumbers.Leniency`` of the phone matcher, 0 (possible) to 3 (exact grouping).
        phone_min_digits: phone findings with fewer digits are dropped.

    Raises:
        ValueError: an unknown entity type.
    """

    def __init__(self, entities: tuple[str, ...] = ENTITIES, min_score: float = 0.3,
                 phone_regions: tuple[str, ...] = PHONE_REGIONS, phone_leniency: int = PHONE_LENIENCY,
                 phone_min_digits: int = PHONE_MIN_DIGITS) -> None:
        unknown = sorted(set(entities) - set(ENTITIES))
        if unknown:
            raise ValueError(f"unknown PII entity types {unknown}; known: {list(ENTITIES)}")
        self.entities = tuple(entities)
        self.min_score = min_score
        self.phone_min_digits = phone_min_digits
        self.recognizers = _recognizers(self.entities, tuple(phone_regions), phone_leniency)

    def find(self, text: str) -> list[Span]:
        """Non-overlapping findings in ``text`` at or above ``min_score``, sorted by start."""
        spans = [
            Span(r.entity_type, r.start, r.end, round(float(r.score), 4))
            for recognizer in self.recognizers
            for r in recognizer.analyze(text, list(recognizer.supported_entities), None)
            if r.score >= self.min_score and not self._short_phone(r.entity_type, text[r.start:r.end])
        ]
        return resolve_overlaps(spans)

    def _short_phone(self, entity: str, matched: str) -> bool:
        return entity == "PHONE_NUMBER" and sum(c.isdigit() for c in matched) < self.phone_min_digits


class PiiParams(Params):
    """Parameters of the ``pii`` gate."""

    action: Literal["reject", "redact"] = Field(
        "reject", description="reject: fail records with findings; redact: replace each with <ENTITY> and pass")
    fields: list[TextField] = Field(default_factory=lambda: list(FIELDS), min_length=1,
                                    description="record fields to check (absent ones are skipped)")
    entities: list[Entity] = Field(default_factory=lambda: list(ENTITIES), min_length=1)
    min_score: float = Field(0.3, ge=0, le=1, description="drop findings scored below this")
    phone_regions: list[str] = Field(default_factory=lambda: list(PHONE_REGIONS), min_length=1,
                                     description="ISO country codes whose phone formats are matched")
    phone_leniency: int = Field(PHONE_LENIENCY, ge=0, le=3, description="phonenumbers leniency, 0 loose - 3 strict")
    phone_min_digits: int = Field(PHONE_MIN_DIGITS, ge=1, description="drop phone matches with fewer digits")


@register_gate("pii", PiiParams)
class PiiGate(Gate):
    """Find personal data (emails, phones, card numbers, IBANs, IPs, US SSNs) and reject or redact.

    Checks each of ``fields`` that the record has: ``instruction``, ``input``, ``output``,
    ``chosen``, ``rejected``, every item of ``responses`` and every turn's ``content``.

    - ``reject``: fails when anything is found, reason ``pii_found: N findings: <list>``.
    - ``redact``: each finding is replaced in the record by ``<ENTITY>`` (for example
      ``<EMAIL_ADDRESS>``), all other characters kept; the record passes, reason
      ``redacted: N findings: <list>``.

    Each finding is listed as ``field[start:end] ENTITY score`` (offsets into the unredacted text);
    the matched text itself is never written into the verdict. ``details["findings"]`` holds the
    same as objects. The verdict's score is the number of findings.
    """

    name = "pii"
    blocking = True

    def __init__(self, action: str = "reject", fields: list[str] | None = None, entities: list[str] | None = None,
                 min_score: float = 0.3, phone_regions: list[str] | None = None,
                 phone_leniency: int = PHONE_LENIENCY, phone_min_digits: int = PHONE_MIN_DIGITS) -> None:
        super().__init__()
        self.action = action
        self.fields = list(fields or FIELDS)
        self.detector = PiiDetector(tuple(entities or ENTITIES), min_score, tuple(phone_regions or PHONE_REGIONS),
                                    phone_leniency, phone_min_digits)

    @staticmethod
    def _write(record: Record, where: str, text: str) -> None:
        """Store ``text`` at location ``where`` (as :func:`record_texts` names it) in ``record``."""
        if where.startswith("responses["):
            (record.responses or [])[int(where[10:-1])] = text
        elif where.startswith("turns["):
            (record.turns or [])[int(where[6:-1])]["content"] = text
        else:
            setattr(record, where, text)

    def forward(self, record: Record) -> Verdict:
        findings: list[Finding] = []
        for where, text in record_texts(record, self.fields):
            spans = self.detector.find(text)
            findings += [Finding(where, s) for s in spans]
            if spans and self.action == "redact":
                self._write(record, where, redact(text, spans))
        details = {"findings": [{"where": f.where, "entity": f.span.entity, "start": f.span.start,
                                 "end": f.span.end, "score": f.span.score} for f in findings]}
        if not findings:
            return Verdict(gate=self.name, passed=True, score=0.0, reason="no personal data found", details=details)
        listed = f"{len(findings)} findings: " + "; ".join(f.describe() for f in findings)
        if self.action == "redact":
            return Verdict(gate=self.name, passed=True, score=float(len(findings)), reason=f"redacted: {listed}",
                           details=details)
        return Verdict(gate=self.name, passed=False, score=float(len(findings)), reason=f"pii_found: {listed}",
                       details=details)
