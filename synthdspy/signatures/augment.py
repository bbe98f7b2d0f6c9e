"""Augmentation of real text: rephrasing in set styles (Maini et al. 2024, "Rephrase the Web") and
rewriting into conversations between two roles (Akter et al. 2024, MIND)."""

from __future__ import annotations

import dspy
from pydantic import BaseModel, Field


class RephrasePassage(dspy.Signature):
    """Rephrase the passage in the requested style.

    Keep every fact of the passage and add none; change only the wording and the form the style
    asks for."""

    passage: str = dspy.InputField(desc="the original text")
    style: str = dspy.InputField(desc="the target style and how to write in it")
    rephrased: str = dspy.OutputField(desc="the rephrased text alone")


class Turn(BaseModel):
    """One utterance of a conversation."""

    role: str = Field(description="the speaker, one of the given roles")
    content: str = Field(description="what the speaker says")


class WriteConversation(dspy.Signature):
    """Turn the content into a natural conversation between the two roles.

    The conversation must carry all of the content's knowledge: every fact, and for a problem every
    step of the solution and its final answer. The speakers take turns and talk as their roles
    would: they ask, explain, question and build on each other. Stay faithful to the content: add
    no fact it does not support."""

    content: str = dspy.InputField(desc="a passage, or a problem with its solution")
    roles: list[str] = dspy.InputField(desc="the two speakers")
    setting: str = dspy.InputField(desc="who the speakers are and how they talk")
    turns: list[Turn] = dspy.OutputField(desc="the conversation, alternating between the roles")
