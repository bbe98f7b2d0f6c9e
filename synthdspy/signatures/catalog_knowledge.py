"""Signatures of three reference-catalog methods: EntiGraph (Yang et al. 2024, "Synthetic continued
pretraining", section 2.2), Skill-Mix (Yu et al. 2023; Kaur et al. 2024 "Instruct-SkillMix") and
instruction backtranslation with self-curation (Li et al. 2023, "Self-Alignment with Instruction
Backtranslation", section 2)."""

from __future__ import annotations

import dspy


class ExtractEntities(dspy.Signature):
    """List the salient entities of the passage: the people, places, organisations, objects, events,
    concepts, quantities and dates that matter to what it says. Name each one exactly as the passage
    does, once, most important first."""

    passage: str = dspy.InputField(desc="the source text")
    entities: list[str] = dspy.OutputField(desc="short names of the salient entities, no duplicates")


class RelateEntities(dspy.Signature):
    """Using only what the passage states, analyse how the given entities bear on one another: how
    they are connected, how one affects or explains another, where they contrast, and what the
    passage as a whole says through their relationship. Do not add facts the passage does not support;
    when the passage links them only indirectly, trace that path through the passage."""

    passage: str = dspy.InputField(desc="the source text")
    entities: list[str] = dspy.InputField(desc="the two or three entities to relate")
    analysis: str = dspy.OutputField(desc="a few paragraphs of analysis grounded in the passage")


class WriteSkillMixExample(dspy.Signature):
    """Write one request a user might send to an assistant, and the assistant's answer, such that a
    good answer has to use every one of the listed skills. The skills must show naturally in the
    answer, not be named or explained there. Keep the request self-contained and about the topic
    when one is given; any subject will do when the topic is empty."""

    skills: list[str] = dspy.InputField(desc="each skill as 'name: definition'")
    topic: str = dspy.InputField(desc="what the request should be about; may be empty")
    instruction: str = dspy.OutputField(desc="the user's request")
    answer: str = dspy.OutputField(desc="a high-quality answer that exercises every listed skill")


class BacktranslateInstruction(dspy.Signature):
    """The text below was written as an assistant's answer to a user. Infer the instruction the user
    gave: specific enough that this text is a fitting, complete answer to it, and phrased as a user
    would write it. Do not mention that the text exists or quote it."""

    answer: str = dspy.InputField(desc="the text that answered the user")
    instruction: str = dspy.OutputField(desc="the user's instruction alone")


class CurateInstructionPair(dspy.Signature):
    """Rate how well the response serves as an AI assistant's answer to the instruction, on a 5-point
    scale: 1 = off topic, incomplete or unhelpful; 2 = addresses most of the request but not
    directly; 3 = helpful but reads like text from elsewhere (a blog post, an article, a forum
    reply) rather than an answer to this user; 4 = written as an assistant's answer, complete and
    clear, with small flaws in focus or concision; 5 = an ideal assistant's answer: focused,
    complete, accurate, well organised and free of irrelevant material."""

    instruction: str = dspy.InputField()
    response: str = dspy.InputField()
    score: int = dspy.OutputField(desc="an integer from 1 to 5")
    reason: str = dspy.OutputField(desc="why this score, in one or two sentences")
