"""Word-based chunking of long source documents into overlapping passages, and chunk seeds."""

from __future__ import annotations

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


def chunk_seeds(seeds: list[Seed], size: int, overlap: int = 0, field: str = "source") -> list[Seed]:
    """One seed per chunk of each seed's ``data[field]`` text.

    A chunk seed copies its parent's data, replaces ``field`` with the chunk and adds
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
        for i, chunk in enumerate(chunk_words(text, size, overlap)):
            data = {**seed.data, field: chunk, "parent_id": seed.id, "chunk_index": i}
            out.append(Seed(id=f"{seed.id}#{i}", data=data))
    return out
