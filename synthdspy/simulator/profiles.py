"""Text profiles and their surface `similarity`: what the grouping answers compare when they
decide which samples belong together."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass

from synthdspy.simulator.fields import _stems

_LINE_LABEL = re.compile(r"^[ \t]*([A-Za-z][A-Za-z ]{0,24}?)[ \t]*:", re.MULTILINE)


@dataclass(frozen=True)
class TextProfile:
    """What `similarity` compares in a text: its content-word stems (`_stems`), its word 3-gram
    shingles, its line labels (a word or two and a colon at a line start: "Input:", "Subject:",
    lower-cased, without the colon), the share of its non-empty lines that carry a label, and its
    first three words (lower-cased)."""

    stems: frozenset[str]
    shingles: frozenset[tuple[str, ...]]
    labels: frozenset[str]
    opening: tuple[str, ...]
    labelled_share: float = 0.0

    @classmethod
    def of(cls, text: str) -> TextProfile:
        """Profile of `text`."""
        words = re.findall(r"[a-z0-9']+", text.lower())
        lines = [line for line in text.splitlines() if line.strip()]
        labelled = len(_LINE_LABEL.findall(text))
        return cls(
            frozenset(_stems(text)),
            frozenset(zip(words, words[1:], words[2:], strict=False)),
            frozenset(m.strip().lower() for m in _LINE_LABEL.findall(text)),
            tuple(words[:3]),
            min(1.0, labelled / len(lines)) if lines else 0.0,
        )


def _without_shared_stems(profiles: dict[int, TextProfile]) -> dict[int, TextProfile]:
    """Drop from every profile the content stems that more than half of the shown samples use.

    What several texts share with the whole batch (a template's wording, a common format) says
    nothing about which of them belong together, as a judge reading them side by side would see;
    what remains are the distinguishing words (topics). Shingles are kept, so near-duplicates still
    match. Batches of fewer than three samples are left as they are.
    """
    if len(profiles) < 3:
        return profiles
    counts = Counter(stem for p in profiles.values() for stem in p.stems)
    common = {stem for stem, n in counts.items() if n > len(profiles) / 2}
    return {i: dataclasses.replace(p, stems=p.stems - common) for i, p in profiles.items()}


def _jaccard(a: frozenset, b: frozenset) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def similarity(a: str | TextProfile, b: str | TextProfile) -> float:
    """Surface similarity of two texts in [0, 1]: the simulator's stand-in for a judge's sense that
    two texts share a topic or a template.

    The largest of three Jaccard similarities: of the content-word stems (same topic), of the
    word 3-gram shingles (near-duplicates; Broder 1997, "On the resemblance and containment of
    documents"), and 0.8 x that of the line labels (same form, e.g. "Input:"/"Output:" pairs),
    scaled by the smaller share of labelled lines (a shared "Question:/Answer:" footer under
    long prose is a weak likeness; texts made of labelled lines are a strong one);
    plus 0.2, capped at 1, when both open with the same three words. Two empty texts count as
    identical (1.0), an empty and a non-empty one as unrelated (0.0). The weights, and
    `CLUSTER_THRESHOLD` = 0.3 they are read against, are this simulator's own, set by hand so
    that unrelated real responses (the self-instruct predictions, news passages) stay apart
    and same-template ones group (no paper).
    """
    p = a if isinstance(a, TextProfile) else TextProfile.of(a)
    q = b if isinstance(b, TextProfile) else TextProfile.of(b)
    if not p.opening or not q.opening:
        return 1.0 if p.opening == q.opening else 0.0
    score = max(
        _jaccard(p.stems, q.stems),
        _jaccard(p.shingles, q.shingles),
        0.8 * min(p.labelled_share, q.labelled_share) * _jaccard(p.labels, q.labels),
    )
    if len(p.opening) == 3 and p.opening == q.opening:
        score += 0.2
    return min(1.0, score)
