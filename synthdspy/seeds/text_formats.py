"""A document's text with its structure (:class:`Document`), and readers for Markdown, HTML and
plain text.

Markdown structure comes from ``markdown-it-py``'s token stream (CommonMark with tables): each
heading opens a section, each top-level block (paragraph, fenced code, table, list, quote) opens a
block, so a chunk never has to end inside a code block. HTML goes through ``trafilatura``, which
drops navigation, footers and other boilerplate and writes the main text as Markdown with its
headings, read as Markdown from there (Barbaresi 2021, "Trafilatura: A Web Scraping Library and
Command-Line Tool for Text Discovery and Extraction", ACL demo track). Plain text has one section,
with blocks at blank lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from synthdspy.seeds.loading import SeedLoadError

BLANK_LINE = re.compile(r"\n[ \t]*\n")


@dataclass(frozen=True)
class Section:
    """Where a section starts in :attr:`Document.text` (a character offset), and its PDF page
    (1-based) or its heading path (``"Install > With pip"``; empty before the first heading)."""

    start: int
    page: int | None = None
    heading: str = ""


@dataclass
class Document:
    """A document's text and structure.

    ``format``: ``pdf``, ``markdown``, ``html`` or ``text``. ``text``: the file's text (Markdown,
    plain text) or the text extracted from it (PDF: pages joined by form feeds; HTML: trafilatura's
    Markdown); every offset is a character offset into it. ``sections``: in order, the first at 0.
    ``blocks``: offsets where a paragraph or other block begins. ``noisy_pages``: PDF pages flagged
    as OCR noise.
    """

    path: Path
    format: str
    text: str
    sections: list[Section]
    blocks: list[int] = field(default_factory=list)
    noisy_pages: list[int] = field(default_factory=list)


def _line_offsets(text: str) -> list[int]:
    """The character offset of each line's start (and of the end of the text, last)."""
    offsets = [0]
    for line in text.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    return offsets


def markdown_structure(text: str) -> tuple[list[Section], list[int]]:
    """Sections (one per heading, plus one at 0 for any text before the first) and block starts of
    Markdown ``text``, from ``markdown-it-py`` tokens' source line maps.

    A heading's path joins the texts of the open headings above it with ``" > "``: under
    ``# A`` and ``## B``, a ``### C`` is ``"A > B > C"``.
    """
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    lines = _line_offsets(text)
    sections: list[Section] = []
    blocks: list[int] = []
    open_headings: list[tuple[int, str]] = []
    for i, token in enumerate(tokens):
        if token.level != 0 or token.nesting == -1 or not token.map:
            continue
        start = lines[min(token.map[0], len(lines) - 1)]
        blocks.append(start)
        if token.type == "heading_open":
            level = int(token.tag[1:])
            title = " ".join(tokens[i + 1].content.split())
            open_headings = [(lv, t) for lv, t in open_headings if lv < level] + [(level, title)]
            sections.append(Section(start=start, heading=" > ".join(t for _, t in open_headings)))
    if not sections or sections[0].start > 0:
        sections.insert(0, Section(start=0))
    return sections, blocks


def read_markdown(path: Path, text: str, fmt: str = "markdown") -> Document:
    """A Markdown document (``fmt`` names where the Markdown came from: ``markdown`` or ``html``)."""
    sections, blocks = markdown_structure(text)
    return Document(path=path, format=fmt, text=text, sections=sections, blocks=blocks)


def decode(path: Path) -> str:
    """The UTF-8 text of ``path`` (a leading byte-order mark dropped).

    Raises:
        SeedLoadError: the file is empty, or not UTF-8 (naming the first bad byte's line).
    """
    data = path.read_bytes()
    if not data:
        raise SeedLoadError(f"{path}: the file is empty (0 bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SeedLoadError(
            f"{path}: line {line}: byte 0x{data[exc.start]:02x} is not UTF-8; re-save the file as UTF-8"
        ) from None


def read_text(path: Path) -> Document:
    """A plain-text document: one section, blocks at blank lines.

    Raises:
        SeedLoadError: see :func:`decode`.
    """
    text = decode(path)
    blocks = [m.end() for m in BLANK_LINE.finditer(text)]
    return Document(path=path, format="text", text=text, sections=[Section(start=0)], blocks=blocks)


def read_html(path: Path) -> Document:
    """The main text of an HTML page, as trafilatura's Markdown (which it decodes from the page's
    declared or detected charset), read as Markdown.

    Raises:
        SeedLoadError: the file is empty, or trafilatura finds no main text in it.
    """
    import trafilatura

    data = path.read_bytes()
    if not data:
        raise SeedLoadError(f"{path}: the file is empty (0 bytes)")
    text = trafilatura.extract(data, output_format="markdown", favor_recall=True, include_comments=False)
    if not text or not text.strip():
        raise SeedLoadError(f"{path}: trafilatura found no main text in this HTML page")
    return read_markdown(path, text, fmt="html")
