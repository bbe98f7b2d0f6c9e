"""Chunking long texts into overlapping passages: plain word windows (:func:`chunk_words`) and
structure-aware spans (:func:`chunk_spans`) that prefer section and paragraph boundaries, by words
or tokens; and chunk seeds."""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Callable

from synthdspy.records import Seed


def chunk_words(text: str, size: int, overlap: int = 0) -> list[str]:
    """Split ``text`` on whitespace into ``size``-word chunks, consecutive ones sharing ``overlap`` words.

    Chunks start every ``size - overlap`` words; the last chunk ends at the last word (it may be
    shorter than ``size``) and no chunk lies wholly inside the previous one. Whitespace inside a
    chunk is normalised to single spaces. Empty text gives no chunks.

    Raises:
        ValueError: unless ``size > overlap >= 0``.
    """
    if not size > overlap >= 0:
        raise ValueError(f"chunking needs size > overlap >= 0, got size={size}, overlap={overlap}")
    words = text.split()
    step = size - overlap
    chunks = []
    for start in range(0, len(words), step):
        chunks.append(" ".join(words[start : start + size]))
        if start + size >= len(words):
            break
    return chunks


def chunk_seeds(
    seeds: list[Seed], size: int, overlap: int = 0, field: str = "source", count: Callable[[str], int] | None = None
) -> list[Seed]:
    """One seed per chunk of each seed's ``data[field]`` text: :func:`chunk_words` windows, or with
    ``count`` (tokens: :func:`cl100k_tokens`) :func:`chunk_spans` sized in its units.

    A chunk seed copies its parent's data and metadata, replaces ``field`` with the chunk and adds
    ``parent_id`` and ``chunk_index``; its id is ``"{parent id}#{chunk index}"``.

    Raises:
        ValueError: bad ``size``/``overlap`` (see :func:`chunk_words`), or a seed whose
            ``data[field]`` is missing or not a string (naming the seed id).
    """
    out = []
    for seed in seeds:
        text = seed.data.get(field)
        if not isinstance(text, str):
            raise ValueError(
                f"seed {seed.id}: data[{field!r}] must be a string to chunk; the seed has {sorted(seed.data)}"
            )
        if count is None:
            chunks = chunk_words(text, size, overlap)
        else:
            chunks = [text[start:end] for start, end in chunk_spans(text, size, overlap, count=count)]
        for i, chunk in enumerate(chunks):
            data = {**seed.data, field: chunk, "parent_id": seed.id, "chunk_index": i}
            out.append(Seed(id=f"{seed.id}#{i}", data=data, metadata=seed.metadata))
    return out


WORD = re.compile(r"\S+")
SECTION, BLOCK, LINE = 3, 2, 1
"""Boundary strengths: a section start (Markdown heading, PDF page), a block start (paragraph,
code block, table, list), a line break; a plain space between two words is 0."""


def boundary_strengths(text: str, words: list[tuple[int, int]], sections: list[int], blocks: list[int]) -> list[int]:
    """For each word (its ``(start, end)`` character span), how strong the boundary before it is.

    Word ``k`` gets :data:`SECTION` when a section start lies in ``(end of word k-1, start of word k]``,
    else :data:`BLOCK` for a block start there, else :data:`LINE` when the gap holds a newline, else 0.
    Word 0 gets :data:`SECTION`.
    """
    strengths = [LINE if "\n" in text[words[k - 1][1] : start] else 0 for k, (start, _) in enumerate(words) if k]
    strengths.insert(0, SECTION)
    starts = [start for start, _ in words]
    for level, offsets in ((BLOCK, blocks), (SECTION, sections)):
        for offset in offsets:
            k = bisect.bisect_left(starts, offset)
            if k < len(words):
                strengths[k] = max(strengths[k], level)
    return strengths


def chunk_spans(
    text: str,
    size: int,
    overlap: int = 0,
    sections: list[int] | None = None,
    blocks: list[int] | None = None,
    count: Callable[[str], int] | None = None,
) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of overlapping chunks of ``text`` that prefer to end at
    section, then block, then line boundaries.

    Sizes are in words, or in the units ``count`` gives each word (tokens: :func:`cl100k_tokens`).
    A chunk holds at most ``size`` units (a single longer word is a chunk of its own). It ends at
    the strongest boundary (:func:`boundary_strengths`) among the ends that leave it more than
    half full, the latest on a tie, and at the last word that fits when there is none. The next
    chunk starts ``overlap`` units before that end, except after a section boundary, where it
    starts at the section. Text between the words (newlines, blank lines) is kept as it is.

    Args:
        text: the document text; ``sections`` and ``blocks`` are character offsets into it where a
            section or a block begins.

    Raises:
        ValueError: unless ``size > overlap >= 0``.
    """
    if not size > overlap >= 0:
        raise ValueError(f"chunking needs size > overlap >= 0, got size={size}, overlap={overlap}")
    words = [m.span() for m in WORD.finditer(text)]
    if not words:
        return []
    strengths = boundary_strengths(text, words, sections or [], blocks or [])
    total = [0]
    for start, end in words:
        total.append(total[-1] + (count(text[start:end]) if count else 1))
    spans, i, n = [], 0, len(words)
    while True:
        last = max(bisect.bisect_right(total, total[i] + size) - 1, i + 1)
        j = n
        if last < n:
            j, fill = last, total[i] + size / 2
            for k in range(last - 1, i, -1):
                if total[k] <= fill or strengths[j] == SECTION:
                    break
                if strengths[k] > strengths[j]:
                    j = k
        spans.append((words[i][0], words[j - 1][1]))
        if j >= n:
            return spans
        i = j if strengths[j] == SECTION or not overlap else max(bisect.bisect_left(total, total[j] - overlap), i + 1)


@functools.lru_cache(maxsize=65536)
def cl100k_tokens(word: str) -> int:
    """Tokens of ``word`` after a space in OpenAI's ``cl100k_base`` encoding (tiktoken, from the
    copy LiteLLM ships, so it works offline). Counting word by word leaves out the newlines
    between words, so a chunk's count can be a little below that of its text encoded whole."""
    import litellm

    return len(litellm.encode(model="", text=" " + word))
