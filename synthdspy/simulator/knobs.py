"""Quality knobs: the keyword families in instructions that switch writing behaviours on
(`KNOBS`, `detect_knobs`), and the phrases an instruction-rewriting optimizer request adds."""

from __future__ import annotations

import re

KNOBS: dict[str, tuple[str, ...]] = {
    "grounding": ("source", "the passage", "grounded", "faithful", "cite", "only from", "evidence"),
    "reasoning": ("step by step", "step-by-step", "reason", "explain"),
    "keywords": ("keyword",),
    "persona": ("persona", "style", "voice", "audience", "tone"),
    "diversity": ("diverse", "vary", "varied", "distinct", "unusual", "different angle"),
}


def detect_knobs(instructions: str) -> dict[str, bool]:
    """Which `KNOBS` families the instructions mention (case-insensitive).

    Back-quoted field names (DSPy's default "Given the fields `source`..." text) are removed
    first, so a field called `source` does not by itself switch grounding on.
    """
    text = re.sub(r"`[^`]*`", " ", instructions).lower()
    return {knob: any(word in text for word in words) for knob, words in KNOBS.items()}


KNOB_PHRASES: dict[str, tuple[str, ...]] = {
    "grounding": ("Ground every statement in the source passage.", "Use only facts found in the passage."),
    "reasoning": ("Think step by step before answering.", "Explain the reasoning step by step."),
    "keywords": ("Use each of the given keywords.", "Work every listed keyword into the text."),
    "persona": ("Write in the voice and style of the given persona.", "Match the persona's tone."),
    "diversity": ("Vary the angle, opening and structure.", "Take an unusual, distinct angle each time."),
}
_KNOB_HINTS: dict[str, tuple[str, ...]] = {
    "grounding": ("overlap", "unsupported", "hallucinat", "factual"),
    "reasoning": ("steps", "reasoning", "logic"),
    "keywords": ("keywords", "terms"),
    "persona": ("persona", "you are a"),
    "diversity": ("repetit", "duplicate", "similar", "creative"),
}
