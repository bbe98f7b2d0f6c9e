"""The ``pii`` gate: Presidio's pattern recognizers on real passages with planted personal data
(every planted item found, look-alikes with a wrong checksum not), every finding in the unmodified
passages accounted for, reject and redact actions, and a generate run over the provider endpoint."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from synthdspy.gates.pii import PiiDetector, PiiGate, PiiParams, Span, redact, resolve_overlaps
from synthdspy.records import Record

ROOT = Path(__file__).parent.parent
PLANTED = [json.loads(x) for x in (ROOT / "tests/data/pii_planted.jsonl").read_text(encoding="utf-8").splitlines()]
PASSAGES = ROOT.parent / "shared/data/passages/passages.jsonl"

# Every finding of the default detector in the 3,730 unmodified passages:
# (passage id, entity, start, end, matched text, class). Classes: "personal" (contact data of a
# named person), "organisation" (a real published number or address of a newsroom, hotline or
# police force: correctly detected, though not a private person's), "false_positive" (not contact
# data at all; the comment says what it is).
FOUND_IN_PASSAGES = [
    ("cnn_dailymail-00132", "PHONE_NUMBER", 1466, 1478, "800-540-7085", "organisation"),  # arson tip line
    ("cnn_dailymail-00338", "PHONE_NUMBER", 1573, 1585, "800-540-7085", "organisation"),  # same story, reworded
    ("cnn_dailymail-00533", "PHONE_NUMBER", 1548, 1560, "800-540-7085", "organisation"),
    ("cnn_dailymail-00728", "PHONE_NUMBER", 1490, 1502, "800-540-7085", "organisation"),
    ("cnn_dailymail-00986", "PHONE_NUMBER", 1502, 1514, "800-540-7085", "organisation"),
    # suicide prevention lifeline; the matcher keeps the opening parenthesis of "(1-800-..."
    ("multi_news-01060", "PHONE_NUMBER", 253, 268, "(1-800-273-8255", "organisation"),
    ("multi_news-01060", "PHONE_NUMBER", 1958, 1972, "1-888-628-9454", "organisation"),  # Spanish-language line
    ("multi_news-01060", "PHONE_NUMBER", 2001, 2015, "1-888-628-9454", "organisation"),
    ("multi_news-01062", "PHONE_NUMBER", 748, 762, "1-800-273-8255", "organisation"),
    ("multi_news-01063", "PHONE_NUMBER", 681, 695, "1-800-273-8255", "organisation"),
    ("multi_news-01316", "EMAIL_ADDRESS", 97, 116, "mdudek@suntimes.com", "personal"),  # a reporter's byline
    # a ten-digit video id inside an image URL, three times
    ("multi_news-01334", "PHONE_NUMBER", 37, 47, "1155968404", "false_positive"),
    ("multi_news-01334", "PHONE_NUMBER", 60, 70, "1155968404", "false_positive"),
    ("multi_news-01334", "PHONE_NUMBER", 112, 122, "1155968404", "false_positive"),
    ("multi_news-01365", "EMAIL_ADDRESS", 1155, 1186, "TheBigPodcastWithShaq@gmail.com", "organisation"),  # a show
    ("multi_news-01415", "PHONE_NUMBER", 1742, 1752, "1294086751", "false_positive"),  # a Unix time in a URL
    ("multi_news-01458", "EMAIL_ADDRESS", 1331, 1357, "llinehan@reviewjournal.com", "personal"),  # a reporter
    ("multi_news-01458", "PHONE_NUMBER", 1364, 1376, "702-383-0381", "personal"),  # the same reporter's phone
    ("multi_news-01545", "EMAIL_ADDRESS", 1643, 1666, "letters@theatlantic.com", "organisation"),  # letters desk
    ("multi_news-01550", "PHONE_NUMBER", 664, 676, "810-237-6800", "organisation"),  # a police department
]


@pytest.fixture(scope="module")
def detector() -> PiiDetector:
    return PiiDetector()


def rec(**fields) -> Record:
    return Record(**{"id": "r", "task": "t", **fields})


def test_the_planted_file_covers_every_kind_of_item():
    kinds = [p["entity"] for row in PLANTED for p in row["planted"]]
    assert {k: kinds.count(k) for k in set(kinds)} == {
        "EMAIL_ADDRESS": 5, "PHONE_NUMBER": 6, "CREDIT_CARD": 5, "IP_ADDRESS": 5, "IBAN_CODE": 1, "US_SSN": 1}
    invalid = [i["value"] for row in PLANTED for i in row["invalid"]]
    assert len(invalid) == 5 and sum(len(re.sub(r"\D", "", v)) in (15, 16) for v in invalid) == 4
    for row in PLANTED:
        for item in row["planted"] + row["invalid"]:
            assert row["text"][item["start"]:item["end"]] == item["value"]


@pytest.mark.usefixtures("needs_shared_data")
def test_the_planted_file_is_real_passages_with_one_inserted_sentence():
    texts = {p["id"]: p["text"] for p in map(json.loads, PASSAGES.read_text(encoding="utf-8").splitlines())}
    for row in PLANTED:
        original, at = texts[row["passage_id"]], row["inserted_at"]
        assert row["text"] == original[:at] + row["inserted"] + original[at:]


def test_every_planted_item_is_found_and_nothing_else(detector):
    for row in PLANTED:
        found = [(s.entity, s.start, s.end) for s in detector.find(row["text"])]
        assert found == [(p["entity"], p["start"], p["end"]) for p in row["planted"]], row["passage_id"]


def test_numbers_with_a_wrong_check_digit_are_not_reported(detector):
    for row in PLANTED:
        spans = detector.find(row["text"])
        for bad in row["invalid"]:
            assert all(s.end <= bad["start"] or s.start >= bad["end"] for s in spans), bad["value"]
    valid, typo = "Card 4111 1111 1111 1111.", "Card 4111 1111 1111 1112."
    assert [s.entity for s in detector.find(valid)] == ["CREDIT_CARD"] and detector.find(typo) == []


@pytest.mark.usefixtures("needs_shared_data")
def test_every_finding_in_the_unmodified_passages_is_accounted_for(detector):
    found = []
    for p in map(json.loads, PASSAGES.read_text(encoding="utf-8").splitlines()):
        found += [(p["id"], s.entity, s.start, s.end, p["text"][s.start:s.end]) for s in detector.find(p["text"])]
    assert found == [f[:5] for f in FOUND_IN_PASSAGES]
    assert {f[5] for f in FOUND_IN_PASSAGES} == {"personal", "organisation", "false_positive"}


def test_short_numbers_and_years_are_not_phone_numbers(detector):
    text = "It ran between 1649 and 1654 ( circa 1694 - 1743 ) ; see annurev-astro-081913-040012 ."
    assert detector.find(text) == []
    loose = PiiDetector(("PHONE_NUMBER",), phone_leniency=1, phone_min_digits=1)
    assert loose.find(text)  # Presidio's own settings match years: the stricter defaults are what drop them


def test_redaction_keeps_every_other_character():
    gate = PiiGate(action="redact")
    for row in PLANTED:
        record = rec(instruction="Summarise.", input=row["text"], output=row["text"])
        verdict = gate(record)
        expected, pos = "", 0
        for p in row["planted"]:
            expected += row["text"][pos:p["start"]] + f"<{p['entity']}>"
            pos = p["end"]
        expected += row["text"][pos:]
        assert record.input == expected and record.output == expected
        outside = re.split(r"<(?:EMAIL_ADDRESS|PHONE_NUMBER|CREDIT_CARD|IBAN_CODE|IP_ADDRESS|US_SSN)>", record.input)
        kept = [row["text"][a["end"]:b["start"]] for a, b in zip(row["planted"], row["planted"][1:], strict=False)]
        assert outside[1:-1] == kept
        n = 2 * len(row["planted"])
        assert verdict.passed and verdict.score == n
        expected_reason = f"redacted: {n} findings: " if n else "no personal data found"
        assert verdict.reason.startswith(expected_reason)
        assert record.instruction == "Summarise."


def test_reject_lists_every_finding_without_the_matched_text():
    row = next(r for r in PLANTED if len(r["planted"]) == 3)
    verdict = PiiGate()(rec(instruction="Summarise.", output=row["text"]))
    assert not verdict.passed and verdict.score == 3.0
    assert verdict.reason.startswith("pii_found: 3 findings: ")
    for p in row["planted"]:
        assert f"output[{p['start']}:{p['end']}] {p['entity']}" in verdict.reason
        assert p["value"] not in verdict.reason and p["value"] not in json.dumps(verdict.details)
    assert [f["entity"] for f in verdict.details["findings"]] == [p["entity"] for p in row["planted"]]
    clean = PiiGate()(rec(instruction="Name three rivers.", output="The Nile, the Amazon and the Danube."))
    assert clean.passed and clean.reason == "no personal data found" and clean.score == 0.0


def test_fields_and_entities_choose_what_is_checked():
    email, card = "Mail ada.marsh@example.org now.", "Pay with 4111 1111 1111 1111 today."
    record = rec(instruction=email, output="Done.", responses=["Fine.", card],
                 turns=[{"role": "user", "content": email}, {"role": "assistant", "content": "Ok."}])
    assert PiiGate(fields=["output"])(record).passed
    verdict = PiiGate(fields=["responses", "turns"])(record)
    assert [f["where"] for f in verdict.details["findings"]] == ["responses[1]", "turns[0]"]
    assert PiiGate(entities=["CREDIT_CARD"])(record).details["findings"] == [
        {"where": "responses[1]", "entity": "CREDIT_CARD", "start": 9, "end": 28, "score": 1.0}]
    PiiGate(action="redact", fields=["responses", "turns"])(record)
    assert record.responses == ["Fine.", "Pay with <CREDIT_CARD> today."]
    assert record.turns[0]["content"] == "Mail <EMAIL_ADDRESS> now." and record.instruction == email


def test_overlapping_spans_keep_the_surest_and_redact_once():
    spans = [Span("PHONE_NUMBER", 5, 24, 0.4), Span("CREDIT_CARD", 5, 24, 1.0), Span("US_SSN", 30, 41, 0.5)]
    kept = resolve_overlaps(spans)
    assert kept == [Span("CREDIT_CARD", 5, 24, 1.0), Span("US_SSN", 30, 41, 0.5)]
    text = "card 4111 1111 1111 1111, ssn 536-22-8726."
    assert redact(text, kept) == "card <CREDIT_CARD>, ssn <US_SSN>."


def test_bad_parameters_are_refused():
    with pytest.raises(ValidationError, match="entities"):
        PiiParams(entities=["PERSON"])
    with pytest.raises(ValidationError, match="action"):
        PiiParams(action="mask")
    with pytest.raises(ValueError, match="unknown PII entity types"):
        PiiDetector(("PASSPORT",))


def test_generate_over_the_provider_endpoint_redacts_planted_seeds(tmp_path, monkeypatch):
    """Pipeline test over the provider-realistic endpoint (simulator answers, so only the plumbing
    is checked): seeds are the planted passages, the pii gate redacts the seed and the answers."""
    from synthdspy.config import load_experiment
    from synthdspy.pipeline import run_generate
    from synthdspy.provider_server import ProviderOptions
    from synthdspy.sim_server import serve_provider

    monkeypatch.setenv("SYNTHDSPY_TEST_PROVIDER_KEY", "sk-test-provider-key-0123456789")
    with serve_provider(provider=ProviderOptions(server_error_rate=0.2, seed=4)) as ep:
        sets = [f"output.dir={json.dumps(str(tmp_path / 'out'))}", "tracking.autolog=false",
                'gates=[{name = "pii", action = "redact"}]', "seeds.train_size=10", "seeds.dev_size=5",
                "lm.generator.num_retries=3"]
        for key, value in (("model", "openai/sim-model"), ("api_base", json.dumps(ep.url)),
                           ("api_key_env", "SYNTHDSPY_TEST_PROVIDER_KEY")):
            sets.append(f"lm.generator.{key}={value}")
        exp = load_experiment(ROOT / "experiments/safe_qa.toml", sets, seeds=str(ROOT / "tests/data/pii_planted.jsonl"))
        out = run_generate(exp, n=8, show_progress=False)
        assert ep.stats()["by_status"].get(500, 0) >= 1
    records = [json.loads(x) for x in (out.store_dir / "records-00000.jsonl").read_text().splitlines()]
    assert out.stats.passed >= 8 and all(r["provenance"]["lm"] == "openai/sim-model" for r in records)
    values = [p["value"] for row in PLANTED for p in row["planted"]]
    redacted = [r for r in records if r["verdicts"][0]["reason"].startswith("redacted: ")]
    assert len(redacted) >= 6 and all("<" in r["input"] for r in redacted)
    assert not any(v in json.dumps(r) for r in records for v in values)
