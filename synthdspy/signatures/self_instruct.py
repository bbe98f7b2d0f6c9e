"""Self-instruct: new tasks written from a few example tasks (Wang et al. 2023, section 2.2)."""

from __future__ import annotations

import dspy
from pydantic import BaseModel, Field


class TaskExample(BaseModel):
    """One instruction-following task: the instruction, an optional input and a reference output."""

    instruction: str = Field(description="one or two sentences, a question or an imperative")
    input: str = Field("", description="a concrete input the instruction works on, or empty if it needs none")
    output: str = Field(description="a correct response to the instruction and input, under 100 words")


class GenerateTasks(dspy.Signature):
    """Invent new tasks for training a text-only assistant to follow instructions, using the examples
    only as a guide to the format.

    Make the tasks diverse: use a different main verb in each, mix questions with commands, and
    cover many kinds of task (open-ended writing, classification, editing, extraction, reasoning,
    advice ...). Each task must be doable in text alone: no images, audio, files or actions in the
    world. Give an input only when the task needs one, and then make it realistic and specific
    (no placeholders, under 100 words). Answer each task correctly in under 100 words."""

    examples: list[TaskExample] = dspy.InputField(desc="example tasks")
    num_tasks: int = dspy.InputField(desc="how many new tasks to write")
    tasks: list[TaskExample] = dspy.OutputField(desc="num_tasks new tasks unlike the examples and each other")
