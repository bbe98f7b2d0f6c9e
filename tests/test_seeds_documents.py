"""Documents as seeds: the real PDFs and Markdown pages in ../shared/data/documents (edge cases
included) and HTML, text, directories and globs the tests make; chunking at section and paragraph
boundaries by words and tokens; provenance from every chunk to every record."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pypdf
import pytest

from synthdspy.config import SeedsConfig, load_experiment
from synthdspy.configio import ConfigError
from synthdspy.seeds.chunking import chunk_spans, cl100k_tokens
from synthdspy.seeds.documents import document_paths, load_documents, read_document
from synthdspy.seeds.loading import SeedLoadError
from synthdspy.seeds.source import experiment_seeds

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT.parent / "shared" / "data" / "documents"
PDF = DOCS / "pdf"
MD = DOCS / "markdown"
PASSWORD_ENV = "SYNTHDSPY_TEST_PDF_PASSWORD"
R6_PASSWORD = "asdfzxcv"  # pypdf's tests/test_encryption.py: the user password of r6-user-password.pdf


@pytest.fixture(autouse=True, scope="module")
def _shared_documents():
    """CI always has ../shared/data: fail, never skip, when it is missing."""
    if not (PDF / "example.pdf").is_file() or not (MD / "extract-text.md").is_file():
        pytest.fail(f"{DOCS} is missing: the document tests need the shared data")


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("synthdspy")]


# --- chunking --------------------------------------------------------------------------------


def test_chunks_end_at_the_strongest_boundary_past_half_and_overlap_inside_sections():
    para = " ".join(f"p{i}" for i in range(12))
    text = f"{para}\n\n{para.replace('p', 'q')}\n\n# Two\n{para.replace('p', 'r')}"
    section = text.index("# Two")
    blocks = [0, text.index("q0"), section]
    spans = chunk_spans(text, size=20, overlap=4, sections=[section], blocks=blocks)
    chunks = [text[a:b] for a, b in spans]
    # 20 words would reach q7; the block start at q0 (word 12) is past half, so the chunk ends there
    assert chunks[0] == para
    # the next starts 4 words back (overlap), and stops before the section although words remain
    assert chunks[1].startswith("p8 p9 p10 p11\n\nq0") and chunks[1].endswith("q11")
    # after a section boundary there is no overlap: the chunk starts at the heading
    assert chunks[2].startswith("# Two\nr0") and chunks[2].endswith("r11")
    assert len(chunks) == 3


def test_chunk_spans_hard_cut_long_word_and_bad_sizes():
    words = [f"w{i}" for i in range(25)]
    spans = chunk_spans(" ".join(words), size=10, overlap=3)
    text = " ".join(words)
    chunks = [text[a:b].split() for a, b in spans]
    assert [c[0] for c in chunks] == ["w0", "w7", "w14", "w21"] and all(len(c) <= 10 for c in chunks)
    assert chunks[-1][-1] == "w24"
    # a word longer than the size (in tokens) is a chunk of its own instead of a loop
    long = "x" * 400
    spaced = f"a {long} b"
    assert [spaced[a:b] for a, b in chunk_spans(spaced, 3, count=cl100k_tokens)] == ["a", long, "b"]
    assert chunk_spans("   ", 5) == []
    for size, overlap in [(5, 5), (0, 0), (3, -1)]:
        with pytest.raises(ValueError, match="size > overlap"):
            chunk_spans("a b c", size, overlap)


def test_token_chunks_fit_the_token_budget_measured_on_the_whole_chunk():
    import litellm

    seeds = load_documents(str(MD / "extract-text.md"), chunk_tokens=120, overlap=20)
    words = load_documents(str(MD / "extract-text.md"), chunk_words=120, overlap=20)
    assert len(seeds) > len(words)  # a token is shorter than a word: more chunks for the same size
    for seed in seeds:
        text = seed.data["source"]
        whole = len(litellm.encode(model="", text=text))  # encoded in one go, newlines included
        assert whole <= 120 + text.count("\n"), (whole, text[:80])


# --- PDFs ------------------------------------------------------------------------------------


def test_pdf_pages_are_sections_and_chunks_name_their_page_range():
    doc = read_document(PDF / "GeoBase_NHNC1_Data_Model_UML_EN.pdf")
    assert [s.page for s in doc.sections] == list(range(1, 20))
    assert doc.text.count("\f") == 18
    seeds = load_documents(str(PDF / "GeoBase_NHNC1_Data_Model_UML_EN.pdf"), chunk_words=150, overlap=20)
    reader = pypdf.PdfReader(PDF / "GeoBase_NHNC1_Data_Model_UML_EN.pdf")
    pages_seen = set()
    for seed in seeds:
        where = seed.metadata["document"]
        first, last = where["pages"]
        assert where["file"].endswith("GeoBase_NHNC1_Data_Model_UML_EN.pdf") and where["format"] == "pdf"
        assert seed.data["source"] == doc.text[where["char_start"] : where["char_end"]]
        # the chunk's first and last words are on the pages it names (pypdf read independently)
        chunk_words = seed.data["source"].split()
        assert chunk_words[0] in reader.pages[first - 1].extract_text().split()
        assert chunk_words[-1] in reader.pages[last - 1].extract_text().split()
        pages_seen.update(range(first, last + 1))
    assert pages_seen == set(range(1, 20))
    assert any(s.metadata["document"]["pages"][0] < s.metadata["document"]["pages"][1] for s in seeds)


def test_empty_and_scanned_pdfs_given_alone_are_errors_naming_the_file():
    with pytest.raises(SeedLoadError, match=r"empty\.pdf: the file is empty \(0 bytes\)"):
        load_documents(str(PDF / "empty.pdf"))
    with pytest.raises(SeedLoadError, match=r"git\.pdf: no text layer on any of its 1 page\(s\)"):
        load_documents(str(PDF / "git.pdf"))


def test_a_scanned_page_among_text_pages_is_skipped_with_a_warning(tmp_path, caplog):
    writer = pypdf.PdfWriter()
    writer.append(PDF / "example.pdf")
    writer.append(PDF / "git.pdf")  # an image of a page, no text layer
    writer.append(PDF / "side-by-side-subfig.pdf")
    path = tmp_path / "mixed.pdf"
    writer.write(path)
    with caplog.at_level(logging.WARNING):
        doc = read_document(path)
    assert [s.page for s in doc.sections] == [1, 3]
    assert warnings_of(caplog) == [f"{path}: page 2 of 3 has no text layer (scanned without OCR?): skipped"]
    seeds = load_documents(str(path), chunk_words=1000)
    assert seeds[0].metadata["document"]["pages"] == [1, 3]


def test_ocr_noise_is_kept_with_a_warning_and_marked_in_provenance(caplog):
    with caplog.at_level(logging.WARNING):
        seeds = load_documents(str(PDF / "issue-301.pdf"))
        clean = load_documents(str(PDF / "Seige_of_Vicksburg_Sample_OCR.pdf"))  # real but decent OCR
    assert len(seeds) == 1 and seeds[0].metadata["document"]["ocr_noise_pages"] == [1]
    assert warnings_of(caplog) == [
        f"{PDF / 'issue-301.pdf'}: page 1 looks like OCR noise (under 50% real words): kept; "
        "check the records made from it"
    ]
    assert all("ocr_noise_pages" not in s.metadata["document"] for s in clean)
    assert "VICKSBURG" in clean[0].data["source"].replace(" ", "") or "Vicksburg" in clean[0].data["source"]


def test_an_encrypted_pdf_needs_its_password_from_the_environment(monkeypatch):
    path = str(PDF / "r6-user-password.pdf")
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    with pytest.raises(SeedLoadError, match=r"r6-user-password\.pdf: encrypted with a password; set \[seeds\] "
                                            r"pdf_password_env"):
        load_documents(path)
    with pytest.raises(SeedLoadError, match=rf"r6-user-password\.pdf: .*\${PASSWORD_ENV} is not set"):
        load_documents(path, password_env=PASSWORD_ENV)
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    with pytest.raises(SeedLoadError, match=rf"the password in \${PASSWORD_ENV} does not open it") as err:
        load_documents(path, password_env=PASSWORD_ENV)
    assert "not-the-password" not in str(err.value)
    monkeypatch.setenv(PASSWORD_ENV, R6_PASSWORD)
    (seed,) = load_documents(path, password_env=PASSWORD_ENV)
    assert seed.data["source"].startswith("pdf encryption test")
    assert seed.metadata["document"]["pages"] == [1, 1]


def test_a_pdf_encrypted_with_an_empty_user_password_opens_without_one(tmp_path):
    writer = pypdf.PdfWriter(clone_from=PDF / "example.pdf")
    writer.encrypt(user_password="", owner_password="owner-only", algorithm="AES-256")
    path = tmp_path / "permissions-only.pdf"
    writer.write(path)
    assert pypdf.PdfReader(path).is_encrypted
    (seed,) = load_documents(str(path), chunk_words=500)
    assert seed.data["source"].startswith("Example document")


def test_a_corrupt_pdf_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.7\nthis is not a PDF body at all\n")
    with pytest.raises(SeedLoadError, match=rf"{re.escape(str(path))}: not a readable PDF"):
        load_documents(str(path))


# --- Markdown, HTML, text ----------------------------------------------------------------------


def test_markdown_chunks_carry_the_heading_path_they_start_under():
    path = MD / "extract-text.md"
    text = path.read_text(encoding="utf-8")
    seeds = load_documents(str(path), chunk_words=120, overlap=15)
    fences = [m.start() for m in re.finditer(r"^```", text, re.M)]  # the file has no ~~~ fences
    headings = [(m.start(), m.group(1), m.group(2)) for m in re.finditer(r"^(#{1,6}) (.+)$", text, re.M)
                if sum(f < m.start() for f in fences) % 2 == 0]  # "# comment" lines inside code are not headings
    assert len(seeds) > 5
    for seed in seeds:
        where = seed.metadata["document"]
        start, end = where["char_start"], where["char_end"]
        assert seed.data["source"] == text[start:end] and len(seed.data["source"].split()) <= 120
        above = [(level, title) for pos, level, title in headings if pos <= start]
        assert where["heading"].split(" > ")[-1] == above[-1][1]
    deep = [s for s in seeds if s.metadata["document"]["heading"].count(" > ") >= 2]
    assert deep and deep[0].metadata["document"]["heading"].startswith("Extract Text from a PDF > ")


def test_html_main_text_without_boilerplate_and_with_headings(tmp_path):
    body = " ".join(["Every employee has twenty-five days of paid leave a year, booked two weeks ahead."] * 6)
    path = tmp_path / "handbook.html"
    path.write_text(
        "<html><head><meta charset='utf-8'><title>Handbook</title></head><body>"
        "<nav><a href='/'>Home</a> | <a href='/about'>About us</a></nav><main>"
        "<h1>Employee handbook</h1><p>Our office opens at nine and closes at six; badge in at the front desk, "
        "where visitors sign the book and collect a pass.</p>"
        f"<h2>Leave</h2><p>{body}</p><h2>Expenses</h2><p>Receipts are filed within thirty days; travel is booked "
        "through the travel desk, economy class for trips under six hours.</p></main>"
        "<footer>Copyright 2026 Example Corp. All rights reserved.</footer></body></html>",
        encoding="utf-8",
    )
    seeds = load_documents(str(path), chunk_words=60)
    text = " ".join(s.data["source"] for s in seeds)
    assert "twenty-five days" in text and "Receipts are filed" in text
    assert "About us" not in text and "All rights reserved" not in text
    headings = [s.metadata["document"]["heading"] for s in seeds]
    assert headings[0] == "Employee handbook" and "Employee handbook > Expenses" in headings
    assert {s.metadata["document"]["format"] for s in seeds} == {"html"}
    empty = tmp_path / "nothing.html"
    empty.write_text("<html><head><title>x</title></head><body><script>var a = 1;</script></body></html>")
    with pytest.raises(SeedLoadError, match=r"nothing\.html: trafilatura found no main text"):
        load_documents(str(empty))


def test_plain_text_chunks_end_at_paragraphs(tmp_path):
    paragraphs = [" ".join(f"{chr(97 + k)}{i}" for i in range(40)) for k in range(5)]
    path = tmp_path / "notes.txt"
    path.write_text("\n\n".join(paragraphs), encoding="utf-8")
    seeds = load_documents(str(path), chunk_words=100, overlap=10)
    # 100 words would cut the third paragraph; the chunk ends where the second one does
    assert [s.data["source"].split()[-1] for s in seeds] == ["b39", "d39", "e39"]
    assert seeds[1].data["source"].split()[:10] == paragraphs[1].split()[-10:]
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("ok\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(SeedLoadError, match=r"latin1\.txt: line 2: byte 0xe9 is not UTF-8"):
        load_documents(str(bad))


def test_fields_map_the_text_column_and_reject_others(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("one two three", encoding="utf-8")
    assert load_documents(str(path))[0].data == {"source": "one two three"}
    assert load_documents(str(path), fields={"passage": "text"})[0].data == {"passage": "one two three"}
    with pytest.raises(SeedLoadError, match=r"a\.txt: seeds.fields \{'source': 'body'\} name columns"):
        load_documents(str(path), fields={"source": "body"})
    with pytest.raises(SeedLoadError, match=r"chunk_overlap \(300\) must be smaller than the chunk size \(300\)"):
        load_documents(str(path), overlap=300)  # the default document chunk is 300 words


# --- directories, globs, the shipped experiment ------------------------------------------------


def test_the_documents_directory_warns_once_per_edge_case_and_keeps_the_rest(caplog, monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    with caplog.at_level(logging.WARNING):
        seeds = load_documents(str(DOCS), chunk_words=250, overlap=30, password_env=PASSWORD_ENV)
    messages = warnings_of(caplog)
    expected = {
        "empty.pdf": "the file is empty (0 bytes); skipped the file",
        "git.pdf": "no text layer on any of its 1 page(s)",
        "issue-301.pdf": "page 1 looks like OCR noise",
        "r6-user-password.pdf": f"${PASSWORD_ENV} is not set; skipped the file",
    }
    for name, needle in expected.items():
        assert [m for m in messages if name in m and needle in m], (name, messages)
    assert len(messages) == len(expected)
    files = {Path(s.metadata["document"]["file"]).name for s in seeds}
    assert files == {p.name for p in MD.glob("*.md")} | {
        "GeoBase_NHNC1_Data_Model_UML_EN.pdf", "Seige_of_Vicksburg_Sample_OCR.pdf", "example.pdf",
        "issue-301.pdf", "multilang.pdf", "side-by-side-subfig.pdf"}
    for seed in seeds:
        where = seed.metadata["document"]
        assert Path(where["file"]).is_file() and ("pages" in where or "heading" in where)
    assert len({s.id for s in seeds}) == len(seeds)


def test_globs_and_directories_list_only_documents(tmp_path):
    paths, several = document_paths(str(MD / "*.md"))
    assert several and len(paths) == 14 and paths == sorted(paths)
    (tmp_path / "sub").mkdir()
    shutil.copy(PDF / "example.pdf", tmp_path / "sub" / "example.pdf")
    (tmp_path / "notes.txt").write_text("a short note", encoding="utf-8")
    (tmp_path / "rows.jsonl").write_text('{"text": "not a document"}\n', encoding="utf-8")
    paths, several = document_paths(str(tmp_path))
    assert several and [p.name for p in paths] == ["notes.txt", "example.pdf"]
    assert [p.name for p in document_paths(str(tmp_path / "**" / "*.pdf"))[0]] == ["example.pdf"]
    with pytest.raises(SeedLoadError, match=r"no document files"):
        document_paths(str(tmp_path / "*.docx"))


def test_experiment_seeds_from_documents_are_shuffled_and_configured_by_seeds_keys(tmp_path):
    cfg = SeedsConfig(source=str(MD / "*.md"), chunk_tokens=200, chunk_overlap=20, sampling_seed=1)
    seeds = experiment_seeds(cfg, 30)
    assert len(seeds) == 30 and len({s.metadata["document"]["file"] for s in seeds[:10]}) > 3
    assert [s.id for s in experiment_seeds(cfg, 30)] == [s.id for s in seeds]
    with pytest.raises(ValueError, match="not both"):
        SeedsConfig(chunk_words=10, chunk_tokens=10)
    with pytest.raises(ValueError, match=r"chunk_overlap \(50\) must be smaller than chunk_tokens \(50\)"):
        SeedsConfig(chunk_tokens=50, chunk_overlap=50)
    exp = load_experiment(ROOT / "experiments" / "documents_qa.toml", seeds=str(MD / "*.md"))
    assert exp.seeds.source.endswith("*.md")
    with pytest.raises(ConfigError, match="no such file"):
        load_experiment(ROOT / "experiments" / "documents_qa.toml", seeds=str(tmp_path / "missing.pdf"))


def _records(store: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(store.glob("records-*.jsonl")) for line in f.read_text().splitlines()]


def test_generate_over_http_writes_document_provenance_into_every_record(tmp_path, monkeypatch):
    """Pipeline test (simulated answers over the provider-realistic HTTP endpoint, with a rate limit):
    it checks that provenance flows from the chunks to every stored record, passed or rejected, not
    the quality of anything generated."""
    from synthdspy.pipeline import run_generate
    from synthdspy.provider_server import ProviderOptions
    from synthdspy.sim_server import serve_provider

    monkeypatch.setenv("SYNTHDSPY_TEST_PROVIDER_KEY", "sk-test-documents-0123456789")
    with serve_provider(provider=ProviderOptions(rpm=600, seed=2)) as ep:
        sets = [f"output.dir={json.dumps(str(tmp_path / 'out'))}", "tracking.autolog=false",
                f"seeds.source={json.dumps(str(DOCS))}"]
        for role in ("generator", "judge"):
            sets += [f"lm.{role}.model=openai/sim-model", f"lm.{role}.api_base={json.dumps(ep.url)}",
                     f"lm.{role}.api_key_env=SYNTHDSPY_TEST_PROVIDER_KEY"]
        out = run_generate(load_experiment(ROOT / "experiments" / "documents_qa.toml", sets), n=8,
                           show_progress=False)
        assert ep.stats()["requests"] >= 4
    records = _records(tmp_path / "out" / "generate" / "store")
    assert out.stats.passed >= 8 and len(records) >= 8
    for record in records:
        where = record["metadata"]["document"]
        assert Path(where["file"]).is_file() and ("pages" in where or "heading" in where)
        assert record["metadata"]["difficulty"] == "medium"  # the task's own metadata is kept beside it
        source = Path(where["file"]).read_text(encoding="utf-8") if where["format"] == "markdown" else None
        if source is not None:  # a Markdown chunk is the file's own text at its offsets
            assert record["input"] == source[where["char_start"] : where["char_end"]]


def test_cli_generate_on_the_shipped_documents_names_each_edge_case(tmp_path):
    """Pipeline test (simulator): the done-when command, smaller; it checks the messages on stderr
    and the provenance in the exported records, not the quality of the simulated pairs."""
    env = {k: v for k, v in os.environ.items() if k != "SYNTHDSPY_PDF_PASSWORD"}
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "synthdspy", "generate", "experiments/documents_qa.toml", "-n", "6",
         "--set", f"output.dir={json.dumps(str(out))}", "--set", "tracking.autolog=false",
         "--export", "jsonl"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for needle in ["empty.pdf: the file is empty", "git.pdf: no text layer", "issue-301.pdf: page 1 looks like OCR",
                   "r6-user-password.pdf: encrypted with a password; $SYNTHDSPY_PDF_PASSWORD is not set"]:
        assert needle in proc.stderr, needle
    exported = [json.loads(x) for x in (out / "generate" / "records.jsonl").read_text().splitlines()]
    assert len(exported) == 6
    assert all("pages" in r["metadata"]["document"] or "heading" in r["metadata"]["document"] for r in exported)
