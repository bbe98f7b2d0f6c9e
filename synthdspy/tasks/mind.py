"""``mind``: passages or solved math problems rewritten as conversations (Akter et al. 2024, MIND)."""

from __future__ import annotations

from typing import Literal

import dspy
from pydantic import Field

from synthdspy.records import Record, Seed, SeedFieldError
from synthdspy.registry import Params, register_task
from synthdspy.signatures.augment import WriteConversation
from synthdspy.tasks.base import Task, sampling_config
from synthdspy.tasks.rotation import rotate

Conversation = Literal["teacher_student", "two_students", "layman_expert", "debaters"]

# conversation kind -> (the two roles, the setting shown to the LM)
CONVERSATIONS: dict[str, tuple[tuple[str, str], str]] = {
    "teacher_student": (("Teacher", "Student"),
                        "A teacher guides a student through the material; the student asks when unsure."),
    "two_students": (("Student A", "Student B"),
                     "Two students work through the material together, checking and correcting each other."),
    "layman_expert": (("Layman", "Expert"),
                      "A curious person with no background asks an expert, who explains in plain words."),
    "debaters": (("Debater A", "Debater B"),
                 "Two debaters take opposing readings of the material and argue them with its evidence, "
                 "ending where the material settles the question."),
}


def render_turns(turns: list[dict[str, str]]) -> str:
    """The conversation as text, one ``role: content`` line per turn (what output-reading gates judge)."""
    return "\n".join(f"{t['role']}: {t['content']}" for t in turns)


class MindParams(Params):
    """Parameters of the ``mind`` task: the conversation kinds to use (default all four)."""

    conversations: list[Conversation] = Field(default_factory=lambda: list(CONVERSATIONS), min_length=1)


@register_task("mind", MindParams)
class MindTask(Task):
    """A two-role conversation carrying a passage's or a solved math problem's knowledge (MIND).

    Content: a passage (``source``) or a math problem with its solution (``question`` and
    ``answer``); one record per seed and rollout.

    The kind rotates over ``conversations`` like :class:`~synthdspy.tasks.rephrase.RephraseTask`'s
    styles. ``record.turns`` holds the conversation ({role, content}), ``record.output`` the same as
    ``role: content`` lines (for gates that judge ``output``), ``record.input`` the content it was
    made from; metadata ``conversation``, ``roles``, ``roles_ok`` (every turn spoken by one of the
    two roles) and, for a math seed, ``gold_answer``.
    """

    name = "mind"

    def __init__(self, conversations: list[str] | None = None) -> None:
        super().__init__()
        self.conversations = list(conversations or CONVERSATIONS)
        self.converse = dspy.Predict(WriteConversation)

    def content_of(self, seed: Seed) -> str:
        """The seed's passage, or its problem and solution.

        Raises:
            SeedFieldError: the seed has neither ``source`` nor ``question`` with ``answer``.
        """
        if seed.data.get("source"):
            return str(seed.data["source"])
        if seed.data.get("question") and seed.data.get("answer"):
            return f"Problem: {seed.data['question']}\n\nSolution: {seed.data['answer']}"
        raise SeedFieldError(
            f"seed {seed.id}: task {self.name!r} needs 'source', or 'question' and 'answer'; "
            f"the seed has {sorted(seed.data)}"
        )

    def forward(self, seed: Seed, rollout: int = 0) -> list[Record]:
        content = self.content_of(seed)
        kind = rotate(self.conversations, seed.id, rollout)
        roles, setting = CONVERSATIONS[kind]
        pred = self.converse(content=content, roles=list(roles), setting=setting, config=sampling_config(rollout))
        turns = [{"role": t.role.strip(), "content": t.content.strip()} for t in pred.turns]
        metadata = {"conversation": kind, "roles": list(roles), "roles_ok": all(t["role"] in roles for t in turns)}
        if not seed.data.get("source"):
            metadata["gold_answer"] = seed.data["answer"]
        return [
            self.record(
                seed, rollout, 0, instruction=f"A conversation ({kind.replace('_', ' ')}) about the content.",
                input=content, turns=turns, output=render_turns(turns), metadata=metadata,
            )
        ]
