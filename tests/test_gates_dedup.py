"""The dedup gate and find_duplicates: planted duplicates in real passages, decontamination, state."""

import copy
import json
import pickle
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from synthdspy.dedup import DedupIndex, find_duplicates, normalize, shingles
from synthdspy.gates.dedup import DedupGate, DedupParams, load_reference
from synthdspy.records import Record, Verdict
from synthdspy.registry import GATES

PASSAGES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "passages" / "passages.jsonl"


def passages(n: int) -> list[str]:
    """The first ``n`` real passages that are not duplicates of each other by exact hash or MinHash
    (the file holds the same articles under several prompt templates)."""
    texts = [json.loads(line)["text"] for line in PASSAGES.read_text(encoding="utf-8").splitlines()[: 4 * n]]
    dup = {h.key for h in find_duplicates(texts, embedding=False, minhash_threshold=0.5)}
    return [t for i, t in enumerate(texts) if i not in dup][:n]


def edit_words(text: str, k: int, rng: random.Random) -> str:
    """``text`` with ``k`` words replaced by other words."""
    words = text.split()
    for i in rng.sample(range(len(words)), k):
        words[i] = rng.choice(["banana", "quietly", "seventeen", "orbit", "lantern"])
    return " ".join(words)


def respace(text: str) -> str:
    """Same words, different case and spacing."""
    return "  ".join(text.upper().split()).replace(". ", " .\n")


def swap_pairs(text: str, period: int = 6) -> str:
    """``text`` with every ``period``-th pair of adjacent words swapped: almost no shared word
    trigrams (Jaccard below 0.3), nearly the same embedding (cosine above 0.95)."""
    words = text.split()
    for i in range(0, len(words) - 1, period):
        words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


PLANTS = {"exact": lambda t, rng: t, "respace": lambda t, rng: respace(t),
          "edit3": lambda t, rng: edit_words(t, 3, rng), "swap": lambda t, rng: swap_pairs(t)}


def planted_rows(base: list[str], kinds: list[str], per_kind: int,
                 seed: int = 0) -> tuple[list[str], dict[int, int], dict[int, str]]:
    """(texts, {planted position: original position}, {planted position: kind}): ``base`` with
    ``per_kind`` planted copies of each kind, each inserted at a random place after its original."""
    rng = random.Random(seed)
    rows: list[dict] = [{"text": t, "base": b} for b, t in enumerate(base)]
    for j, orig in enumerate(rng.sample(range(len(base) // 2), per_kind * len(kinds))):
        kind = kinds[j % len(kinds)]
        after = next(i for i, r in enumerate(rows) if r.get("base") == orig)
        plant = {"text": PLANTS[kind](rows[after]["text"], rng), "of": orig, "kind": kind}
        rows.insert(rng.randrange(after + 1, len(rows) + 1), plant)
    base_pos = {r["base"]: i for i, r in enumerate(rows) if "base" in r}
    truth = {i: base_pos[r["of"]] for i, r in enumerate(rows) if "of" in r}
    planted = {i: r["kind"] for i, r in enumerate(rows) if "kind" in r}
    return [r["text"] for r in rows], truth, planted


def gate_on_copy(tmp_path: Path, texts: list[str], gate: DedupGate) -> list[Verdict]:
    """Write ``texts`` as a JSONL copy with row ids, read it back and run every row through ``gate``."""
    path = tmp_path / "passages_planted.jsonl"
    path.write_text("".join(json.dumps({"id": f"row-{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [gate(Record(id=r["id"], task="copy", output=r["text"])) for r in rows]


def planted_scores(verdicts: list[Verdict], truth: dict[int, int],
                   planted: dict[int, str]) -> tuple[float, float, dict[str, int], set[str]]:
    """(precision, recall, correct hits per kind, methods used) of the gate on the planted rows; a
    hit is correct when the row is planted and the reason names its original."""
    flagged = {i for i, v in enumerate(verdicts) if not v.passed}
    correct = {i for i in flagged if i in truth and verdicts[i].reason.startswith(f"duplicate of row-{truth[i]} ")}
    by_kind = {k: sum(1 for i in correct if planted[i] == k) for k in sorted(set(planted.values()))}
    methods = {verdicts[i].reason.split("(")[1].split()[0] for i in correct}
    precision, recall = len(correct) / max(1, len(flagged)), len(correct) / len(truth)
    print(f"\nplanted {len(truth)} in {len(verdicts)} rows: precision {precision:.3f} recall {recall:.3f} "
          f"found per kind {by_kind} by {sorted(methods)}")
    return precision, recall, by_kind, methods


def test_registered_and_validated(tmp_path):
    assert GATES["dedup"].cls is DedupGate
    with pytest.raises(ValueError, match="not found"):
        DedupParams(reference=str(tmp_path / "missing.jsonl"))
    with pytest.raises(ValueError):
        DedupParams(minhash_threshold=0)
    with pytest.raises(ValueError, match="at least one"):
        DedupIndex(exact=False, minhash=False, embedding=False)


def test_normalize_and_shingles():
    assert normalize("Hello,   WORLD!\n ﬁne") == "hello world fine"
    assert shingles("a b c d", 3) == {"a b c", "b c d"}
    assert shingles("a b", 3) == {"a b"}
    assert shingles("", 3) == set()


def test_planted_duplicates_in_300_real_passages(tmp_path):
    texts, truth, planted = planted_rows(passages(300), ["exact", "respace", "edit3"], per_kind=10)
    verdicts = gate_on_copy(tmp_path, texts, DedupGate(embedding=False))
    precision, recall, by_kind, methods = planted_scores(verdicts, truth, planted)
    assert all(verdicts[o].passed for o in truth.values()), "the first occurrence is kept"
    assert (precision, recall) == (1.0, 1.0)
    assert methods == {"exact", "minhash"}


def test_planted_paraphrases_need_embeddings(tmp_path):
    base = [" ".join(t.split()[:80]) for t in passages(40)]  # short texts keep the encoder fast
    texts, truth, planted = planted_rows(base, ["swap", "edit3"], per_kind=4, seed=2)
    verdicts = gate_on_copy(tmp_path, texts, DedupGate())
    precision, recall, by_kind, methods = planted_scores(verdicts, truth, planted)
    assert (precision, recall) == (1.0, 1.0)
    assert all(verdicts[i].reason.split("(")[1].startswith("embedding") for i, k in planted.items() if k == "swap")
    lexical_only = gate_on_copy(tmp_path, texts, DedupGate(embedding=False))
    assert planted_scores(lexical_only, truth, planted)[2] == {"edit3": 4, "swap": 0}


def test_planted_duplicates_all_methods_full_passages_fast(tmp_path):
    """The slow test below on 60 full-length passages with 3 plants of each kind (12): the same checks on
    every kind, by every method, fast enough to run by default."""
    texts, truth, planted = planted_rows(passages(60), list(PLANTS), per_kind=3, seed=3)
    verdicts = gate_on_copy(tmp_path, texts, DedupGate())
    precision, recall, by_kind, methods = planted_scores(verdicts, truth, planted)
    assert all(verdicts[o].passed for o in truth.values())
    assert by_kind["exact"] == by_kind["respace"] == by_kind["edit3"] == 3
    assert recall >= 0.9 and precision >= 0.95
    assert "embedding" in methods


@pytest.mark.slow
def test_planted_duplicates_all_methods_full_passages(tmp_path):
    """300 full passages, 8 plants of each kind: the figure behind the README's dedup recall/precision."""
    texts, truth, planted = planted_rows(passages(300), list(PLANTS), per_kind=8, seed=3)
    verdicts = gate_on_copy(tmp_path, texts, DedupGate())
    precision, recall, by_kind, _ = planted_scores(verdicts, truth, planted)
    assert all(verdicts[o].passed for o in truth.values())
    assert by_kind["exact"] == by_kind["respace"] == by_kind["edit3"] == 8
    assert recall >= 0.9 and precision >= 0.95


def test_find_duplicates_matches_the_plants():
    texts, truth, planted = planted_rows(passages(200), ["exact", "respace", "edit3", "swap"], per_kind=5, seed=1)
    found = {h.key: h.of for h in find_duplicates(texts, embedding=False)}
    assert found == {i: o for i, o in truth.items() if planted[i] != "swap"}


def test_decontamination_against_a_reference_file(tmp_path):
    texts = passages(60)
    eval_set, train = texts[:20], texts[20:]
    ref = tmp_path / "eval.jsonl"
    ref.write_text("".join(json.dumps({"id": f"q{i}", "doc": {"body": t}}) + "\n" for i, t in enumerate(eval_set)))
    leaked = {3: eval_set[5], 11: edit_words(eval_set[7], 2, random.Random(0)), 17: respace(eval_set[0])}
    rows = [leaked.get(i, t) for i, t in enumerate(train)]
    gate = DedupGate(reference=str(ref), reference_field="doc.body", embedding=False)
    verdicts = [gate(Record(id=f"r{i}", task="t", output=t)) for i, t in enumerate(rows)]
    bad = {i: v for i, v in enumerate(verdicts) if not v.passed}
    assert set(bad) == set(leaked)
    assert all(v.diagnosis == "CONTAMINATED" for v in bad.values())
    assert bad[3].reason.startswith(f"contaminated: matches reference {ref}#q5 (exact")
    assert "#q7 (minhash" in bad[11].reason
    hits = find_duplicates(rows, reference=eval_set, embedding=False)
    assert {h.key: h.of for h in hits} == {3: 5, 11: 7, 17: 0}
    assert all(h.reference for h in hits)


def test_text_reference_and_bad_reference_rows(tmp_path):
    txt = tmp_path / "eval.txt"
    txt.write_text("first eval line about tides\n\nsecond eval line about volcanoes\n")
    texts, keys = load_reference(txt)
    assert texts == ["first eval line about tides", "second eval line about volcanoes"]
    assert keys == [f"{txt}:1", f"{txt}:3"]
    bad = tmp_path / "eval.jsonl"
    bad.write_text('{"text": "ok"}\n{"body": "no text"}\n')
    from synthdspy.seeds.loading import SeedLoadError

    with pytest.raises(SeedLoadError, match=r"eval.jsonl: record 2 \(line 2\): .*'text'"):
        DedupGate(reference=str(bad), embedding=False)(Record(id="r", task="t", output="x"))


def unit_encoder(texts: list[str]) -> np.ndarray:
    """A stand-in encoder: bag of hashed words, unit length (no model needed)."""
    out = np.zeros((len(texts), 64), dtype=np.float32)
    for i, t in enumerate(texts):
        for w in normalize(t).split():
            out[i, hash(w) % 64] += 1
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_retried_record_is_not_its_own_duplicate():
    index = DedupIndex(encoder=unit_encoder)
    assert index.check("a", "the cat sat on the mat today") is None
    assert index.check("a", "the cat sat on the mat today") is None  # same id again: a retry
    assert index.check("a", "a completely different sentence now") is None  # replaced
    assert index.check("b", "the cat sat on the mat today") is None  # old text of "a" is gone
    hit = index.check("c", "The cat sat on the mat, today!")
    assert (hit.of, hit.method, hit.similarity) == ("b", "exact", 1.0)
    assert len(index) == 2


def test_rejected_records_are_not_remembered():
    gate = DedupGate(embedding=False)
    rejected = Record(id="a", task="t", output="same words here", verdicts=[Verdict(gate="g", passed=False)])
    assert gate(rejected).passed
    assert gate(Record(id="b", task="t", output="same words here")).passed
    assert not gate(Record(id="c", task="t", output="same words here")).passed
    remember_all = DedupGate(embedding=False, index_rejected=True)
    assert remember_all(rejected).passed
    assert remember_all(Record(id="b", task="t", output="same words here")).reason == "duplicate of a (exact 1.000)"


def test_field_text_compares_instruction_and_output():
    gate = DedupGate(field="text", embedding=False)
    assert gate(Record(id="a", task="t", instruction="Q one?", output="yes")).passed
    assert gate(Record(id="b", task="t", instruction="Q two?", output="yes")).passed
    assert not gate(Record(id="c", task="t", instruction="q ONE", output="Yes.")).passed


def test_thread_safe_first_occurrence_wins_once():
    gate = DedupGate(embedding=False)
    groups = [f"group {g} " + " ".join(f"w{g}_{k}" for k in range(20)) for g in range(10)]
    records = [Record(id=f"r{i}", task="t", output=groups[i % 10]) for i in range(200)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        verdicts = list(pool.map(gate, records))
    assert sum(v.passed for v in verdicts) == 10


def test_copies_are_independent():
    gate = DedupGate(embedding=False)
    assert gate(Record(id="a", task="t", output="one two three four")).passed
    clone = copy.deepcopy(gate)
    restored = pickle.loads(pickle.dumps(gate))
    for other in (clone, restored):
        assert not other(Record(id="b", task="t", output="one two three four")).passed
        assert other(Record(id="c", task="t", output="five six seven eight")).passed
    assert gate(Record(id="d", task="t", output="five six seven eight")).passed


def test_restore_remembers_only_what_the_gate_kept():
    def stored(rid: str, text: str, *verdicts: tuple[str, bool]) -> Record:
        return Record(id=rid, task="t", output=text, verdicts=[Verdict(gate=g, passed=ok) for g, ok in verdicts])

    records = [stored("kept", "alpha beta gamma delta", ("reward", True), ("dedup", True)),
               stored("low", "epsilon zeta eta theta", ("reward", False), ("dedup", True)),
               stored("dup", "alpha beta gamma delta", ("reward", True), ("dedup", False)),
               stored("ungated", "iota kappa lambda mu", ("reward", True))]
    gate = DedupGate(embedding=False)
    gate.restore(iter(records))
    assert len(gate.index) == 1
    assert gate(Record(id="x", task="t", output="Alpha beta, gamma delta!")).reason == "duplicate of kept (exact 1.000)"
    assert gate(Record(id="y", task="t", output="epsilon zeta eta theta")).passed
    with_rejected = DedupGate(embedding=False, index_rejected=True)
    with_rejected.restore(records)
    assert not with_rejected(Record(id="z", task="t", output="epsilon zeta eta theta")).passed


def test_a_chain_without_stateful_gates_does_not_read_the_stored_records():
    from synthdspy.gates.judged import RewardGate
    from synthdspy.program import GateChain

    def unreadable():
        raise AssertionError("the store was read")
        yield

    GateChain([RewardGate()]).restore(unreadable())
    dedup = DedupGate(embedding=False)
    GateChain([RewardGate(), dedup]).restore(
        iter([Record(id="a", task="t", output="one two three", verdicts=[Verdict(gate="dedup", passed=True)])]))
    assert len(dedup.index) == 1
