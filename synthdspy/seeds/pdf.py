"""Reading a PDF's text layer with ``pypdf``, page by page, for document seeds.

A page without a text layer (a scanned image that was never OCR'd) is skipped with a warning; a
page whose text looks like OCR noise is kept with a warning; an encrypted PDF is opened with the
password from the environment variable ``[seeds] pdf_password_env`` names (or with the empty user
password some PDFs have); an empty, corrupt or locked file raises :class:`SeedLoadError` naming it.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from synthdspy.seeds.loading import SeedLoadError
from synthdspy.seeds.text_formats import Document, Section

log = logging.getLogger(__name__)

PAGE_BREAK = "\f"
"""What joins the pages in :attr:`Document.text` (a form feed, as ``pdftotext`` writes)."""
NOISE_SHARE = 0.5
"""A page whose lettered words are less than this share real words is flagged as OCR noise."""
NOISE_MIN_WORDS = 5
LETTER = re.compile(r"[^\W\d_]")
REAL_WORD = re.compile(r"[^\W\d_]{3,}")


def word_share(text: str) -> tuple[float, int]:
    """The share of ``text``'s words with a letter (any script; dot leaders, numbers and stray
    punctuation are not counted) that hold a run of 3+ letters, and how many words have a letter;
    ``(1.0, 0)`` when none has. On the shipped PDFs, clean and OCR'd prose and tables of contents
    score 0.74-1.0, the specks-and-fragments page of ``issue-301.pdf`` 0.11."""
    words = [w for w in text.split() if LETTER.search(w)]
    return (sum(bool(REAL_WORD.search(w)) for w in words) / len(words), len(words)) if words else (1.0, 0)


def tidy(text: str) -> str:
    """``text`` without the spaces pypdf leaves at line ends and with runs of blank lines cut to one,
    so a page of layout whitespace does not fill a chunk's prompt; words and line breaks are kept."""
    return re.sub(r"\n{3,}", "\n\n", re.sub(r"[ \t]+\n", "\n", text)).strip()


def _pages(numbers: list[int]) -> str:
    return ("page " if len(numbers) == 1 else "pages ") + ", ".join(map(str, numbers))


def _open(path: Path, password_env: str):  # -> pypdf.PdfReader
    """A reader of ``path``, decrypted when it is encrypted.

    Raises:
        SeedLoadError: the file is empty or not a readable PDF; it is encrypted with a user password
            and ``password_env`` is unset, names an unset variable, or holds a wrong password.
    """
    import pypdf
    from pypdf.errors import PdfReadError, PdfStreamError

    if path.stat().st_size == 0:
        raise SeedLoadError(f"{path}: the file is empty (0 bytes)")
    try:
        reader = pypdf.PdfReader(path)
    except (PdfReadError, PdfStreamError, OSError, ValueError) as exc:
        raise SeedLoadError(f"{path}: not a readable PDF ({type(exc).__name__}: {exc})") from None
    if not reader.is_encrypted:
        return reader
    password = os.environ.get(password_env, "") if password_env else ""
    try:
        opened = reader.decrypt(password)
    except (PdfReadError, NotImplementedError) as exc:  # an unsupported or broken security handler
        raise SeedLoadError(f"{path}: encrypted, and pypdf cannot decrypt it ({exc})") from None
    if password and opened == pypdf.PasswordType.NOT_DECRYPTED:
        raise SeedLoadError(f"{path}: encrypted, and the password in ${password_env} does not open it")
    if not password and opened != pypdf.PasswordType.USER_PASSWORD:
        where = (f"${password_env} is not set" if password_env
                 else "set [seeds] pdf_password_env to the name of a variable that holds it")
        raise SeedLoadError(f"{path}: encrypted with a password; {where}")
    if password:
        log.info("%s: decrypted with the password in $%s", path, password_env)
    return reader


def read_pdf(path: Path, password_env: str = "") -> Document:
    """The text layer of the PDF at ``path``: one section per page that has text.

    :attr:`Document.text` is the pages' text (``pypdf``'s ``extract_text``, :func:`tidy`) joined by
    form feeds; sections start at each page with its 1-based number; blocks start at blank lines.

    Logs a warning (naming the file and pages) for pages without a text layer, which are skipped,
    and for pages that look like OCR noise (:func:`word_share` below :data:`NOISE_SHARE` over at
    least :data:`NOISE_MIN_WORDS` lettered words), which are kept and listed in
    :attr:`Document.noisy_pages`.

    Raises:
        SeedLoadError: empty file (0 bytes), not a PDF, encrypted and not opened (see :func:`_open`),
            or no page with any text (a scanned document without OCR).
    """
    from pypdf.errors import PyPdfError

    reader = _open(path, password_env)
    parts: list[str] = []
    sections: list[Section] = []
    blank: list[int] = []
    noisy: list[int] = []
    offset = 0
    for number, page in enumerate(reader.pages, 1):
        try:
            text = tidy(page.extract_text() or "")
        except (PyPdfError, KeyError, ValueError, TypeError) as exc:  # a broken content stream
            log.warning("%s: page %d: pypdf cannot extract its text (%s); skipped it", path, number, exc)
            continue
        if not text.split():
            blank.append(number)
            continue
        share, lettered = word_share(text)
        if lettered >= NOISE_MIN_WORDS and share < NOISE_SHARE:
            noisy.append(number)
        if parts:
            offset += len(PAGE_BREAK)
        sections.append(Section(start=offset, page=number))
        parts.append(text)
        offset += len(text)
    total = len(reader.pages)
    if not parts:
        raise SeedLoadError(
            f"{path}: no text layer on any of its {total} page(s) (a scanned document without OCR?); "
            "OCR it first, e.g. with ocrmypdf"
        )
    if blank:
        log.warning("%s: %s of %d %s no text layer (scanned without OCR?): skipped", path, _pages(blank), total,
                    "has" if len(blank) == 1 else "have")
    if noisy:
        log.warning("%s: %s %s like OCR noise (under %d%% real words): kept; check the records made from it",
                    path, _pages(noisy), "looks" if len(noisy) == 1 else "look", round(NOISE_SHARE * 100))
    text = PAGE_BREAK.join(parts)
    blocks = [m.end() for m in re.finditer(r"\n[ \t]*\n", text)]
    return Document(path=path, format="pdf", text=text, sections=sections, blocks=blocks, noisy_pages=noisy)
