"""Dimension-controlled pre-training text and its variations (strategy seed: generation and variation prompts).

A text is written against one chosen value of each information dimension (Format, Style, ...),
each value carrying its meaning, how to write it and what it trains; a variation rewrites a text
to another value of one dimension while keeping its content.
"""

from __future__ import annotations

import dspy


class WritePretrainingText(dspy.Signature):
    """Write one self-contained text for a language model's pre-training corpus.

    The text must show every target value at once. Each dimension is an independent property of a
    text (its format, reasoning, complexity, style ...); each target names the chosen value, what it
    means and how to write it. Write about the subject, stay within max_words words, and aim for
    textbook quality: accurate, concrete and specific, with no filler and no remarks about the
    targets themselves."""

    dimension_targets: str = dspy.InputField(
        desc="one block per dimension: its description, the chosen value, its meaning, how to write it, "
        "and what it trains"
    )
    subject: str = dspy.InputField(desc="the topic (with subtopics and keywords) or the instruction to write for")
    max_words: int = dspy.InputField(desc="upper limit on the text's length, in words")
    text: str = dspy.OutputField(desc="the text alone")


class RewriteToDimensionValue(dspy.Signature):
    """Rewrite the text so that it takes the target value on the given dimension.

    Keep its content: the same facts, claims, examples and conclusions, and, as far as possible,
    its other properties. Change only what this dimension governs, following the target value's
    instructions. Do not add new facts."""

    text: str = dspy.InputField(desc="the text to rewrite")
    dimension: str = dspy.InputField(desc="the dimension's name and what it describes")
    current_value: str = dspy.InputField(desc="the text's value on this dimension now, or 'unknown'")
    target_value: str = dspy.InputField(desc="the value to reach: its name, meaning and how to write it")
    rewritten: str = dspy.OutputField(desc="the rewritten text alone")
