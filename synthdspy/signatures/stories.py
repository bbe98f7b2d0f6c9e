"""Simple-vocabulary children's stories with required words and features (Eldan & Li 2023, section 2)."""

from __future__ import annotations

import dspy


class WriteStory(dspy.Signature):
    """Write a short story of 3 to 5 paragraphs using only very simple words that a three-year-old
    would understand. The story must use the given verb, noun and adjective (a verb may be inflected,
    such as "jumped" for "jump") and have every listed feature."""

    verb: str = dspy.InputField()
    noun: str = dspy.InputField()
    adjective: str = dspy.InputField()
    features: list[str] = dspy.InputField(desc="properties the story must have")
    story: str = dspy.OutputField(desc="the story alone, paragraphs separated by blank lines")
