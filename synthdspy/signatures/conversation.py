"""Multi-turn conversation signatures: turn-by-turn steps, or a whole conversation in one call."""

from __future__ import annotations

from typing import Literal

import dspy
from pydantic import BaseModel, Field


class Turn(BaseModel):
    """One message of a conversation."""

    role: Literal["user", "assistant"]
    content: str


class Exchange(BaseModel):
    """One user message and the assistant's reply to it."""

    user: str = Field(description="the user's message")
    assistant: str = Field(description="the assistant's reply")


class OpenConversation(dspy.Signature):
    """Write the first message of a learning conversation about the source passage: one specific
    question a curious user would ask about it."""

    source: str = dspy.InputField(desc="the source passage")
    question: str = dspy.OutputField(desc="the user's opening question")


class FollowUpQuestion(dspy.Signature):
    """Continue the conversation as the user: write one natural follow-up question that builds on
    the assistant's last reply and explores another part of the source passage."""

    source: str = dspy.InputField(desc="the source passage; may be empty")
    conversation: list[Turn] = dspy.InputField(desc="every message so far, oldest first")
    question: str = dspy.OutputField(desc="the user's next message")


class ReplyInConversation(dspy.Signature):
    """Reply as the assistant to the user's latest message, in 2-5 sentences, consistent with
    everything said so far and grounded in the source passage when one is given."""

    source: str = dspy.InputField(desc="the source passage; may be empty")
    conversation: list[Turn] = dspy.InputField(desc="every message so far, oldest first; the last is the user's")
    reply: str = dspy.OutputField(desc="the assistant's reply")


class WriteConversation(dspy.Signature):
    """Write a whole learning conversation between a user and an assistant about the source passage:
    the user asks, the assistant answers in 2-5 grounded sentences, and each later question follows
    up on the previous answer. Start with the opening question when one is given."""

    source: str = dspy.InputField(desc="the source passage; may be empty")
    opening: str = dspy.InputField(desc="the user's first message, or empty to write one")
    num_exchanges: int = dspy.InputField(desc="how many user/assistant exchanges to write")
    exchanges: list[Exchange] = dspy.OutputField(desc="exactly num_exchanges exchanges, in order")
