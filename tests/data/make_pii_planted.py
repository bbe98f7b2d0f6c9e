"""Build ``tests/data/pii_planted.jsonl``: real passages, each with one sentence of planted personal
data inserted at the sentence boundary nearest its middle.

Run from the repository root (needs ``../shared/data/passages/passages.jsonl``)::

    python tests/data/make_pii_planted.py

Each row: ``passage_id``, ``inserted_at`` (character offset), ``inserted`` (the sentence and a
space), ``text`` (the passage with it), ``planted`` (entity, start, end, value of every item a PII
detector must find) and ``invalid`` (start, end, value of look-alikes it must not report: card
numbers and an IBAN with a wrong check digit). The chosen passages have no finding of their own.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

PASSAGES = Path("../shared/data/passages/passages.jsonl")
OUT = Path("tests/data/pii_planted.jsonl")

# (passage id, sentence template, [(entity, or None for an invalid look-alike, value)]): the values
# fill the template's {} in order; a value written into the template itself is listed with no {}.
PLANTS: list[tuple[str, str, list[tuple[str | None, str]]]] = [
    ("cnn_dailymail-00010", "Readers can reach the desk at {} or call {}.",
     [("EMAIL_ADDRESS", "maria.keller@northwind-mail.com"), ("PHONE_NUMBER", "+1 (415) 555-0132")]),
    ("cnn_dailymail-00200", "The donation was charged to card {} from the address {}.",
     [("CREDIT_CARD", "4111 1111 1111 1111"), ("IP_ADDRESS", "192.168.14.201")]),
    ("xsum-03015", "A typo left the number as {}, which no bank would accept.",
     [(None, "4111 1111 1111 1112")]),
    ("xsum-03301", "Her London office answers on {} and her email is {}.",
     [("PHONE_NUMBER", "+44 20 7946 0958"), ("EMAIL_ADDRESS", "anna.lindqvist@example.co.uk")]),
    ("wikipedia-01620", "Payment went through with {} while the server logged {}.",
     [("CREDIT_CARD", "5500-0000-0000-0004"), ("IP_ADDRESS", "2001:db8:85a3::8a2e:370:7334")]),
    ("wikipedia-02450", "The rejected card {} failed its check digit.",
     [(None, "5500-0000-0000-0005")]),
    ("multi_news-01105", "Send the forms to {} or phone {} before Friday.",
     [("EMAIL_ADDRESS", "j.okafor+billing@university.edu"), ("PHONE_NUMBER", "212-555-0199")]),
    ("multi_news-01200", "His Amex {} was used twice from {}.",
     [("CREDIT_CARD", "378282246310005"), ("IP_ADDRESS", "203.0.113.45")]),
    ("cnn_dailymail-00555", "Transfers go to IBAN {} and not to {}, a mistyped copy.",
     [("IBAN_CODE", "DE89 3704 0044 0532 0130 00"), (None, "DE89 3704 0044 0532 0130 01")]),
    ("xsum-03500", "The Berlin number is {} and the Paris one {}.",
     [("PHONE_NUMBER", "+49 30 9018 2044"), ("PHONE_NUMBER", "+33 1 42 68 53 00")]),
    ("wikipedia-02900", "Her social security number, {}, was printed on the letter.",
     [("US_SSN", "536-22-8726")]),
    ("multi_news-01300", "The order used {} but the clerk wrote down {}.",
     [("CREDIT_CARD", "6011 1111 1111 1117"), (None, "6011 1111 1111 1118")]),
    ("cnn_dailymail-00777", "Contact r_schmidt@posteo.de or the router at {} or {}.",
     [("EMAIL_ADDRESS", "r_schmidt@posteo.de"), ("IP_ADDRESS", "10.0.0.7"),
      ("IP_ADDRESS", "fe80::1ff:fe23:4567:890a")]),
    ("xsum-03650", "Call the office on {} or write to {}.",
     [("PHONE_NUMBER", "(617) 555-0148"), ("EMAIL_ADDRESS", "office.manager@harbor-dental.com")]),
    ("wikipedia-01800", "Visa {} was valid, {} was not.",
     [("CREDIT_CARD", "4012888888881881"), (None, "4012888888881882")]),
]


def plant(text: str, template: str, items: list[tuple[str | None, str]]) -> dict:
    """The row for one passage (see the module docstring)."""
    ends = [m.end() for m in re.finditer(r"[.!?]\s+", text) if m.end() < len(text)]
    cut = min(ends, key=lambda e: abs(e - len(text) // 2))
    sentence = template.format(*[v for _, v in items][-template.count("{}"):]) + " "
    new = text[:cut] + sentence + text[cut:]
    planted, invalid, pos = [], [], cut
    for entity, value in items:
        start = new.index(value, pos)
        pos = start + len(value)
        span = {"start": start, "end": pos, "value": value}
        (planted.append({"entity": entity, **span}) if entity else invalid.append(span))
    return {"inserted_at": cut, "inserted": sentence, "text": new, "planted": planted, "invalid": invalid}


def main() -> None:
    passages = {p["id"]: p["text"] for p in map(json.loads, PASSAGES.read_text(encoding="utf-8").splitlines())}
    with OUT.open("w", encoding="utf-8") as f:
        for pid, template, items in PLANTS:
            f.write(json.dumps({"passage_id": pid, **plant(passages[pid], template, items)}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
