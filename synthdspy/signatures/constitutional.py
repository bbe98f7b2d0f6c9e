"""Critique-and-revise signatures of the ``constitutional`` task (Bai et al. 2022, "Constitutional
AI", section 3.1): draft a response, critique it against one principle, revise it.

The principle texts (what to look for, how to revise) come from an editable list
(``synthdspy/data/principles.json``); these signatures only say what each step does.
"""

from __future__ import annotations

import dspy


class WriteUserRequest(dspy.Signature):
    """Read the passage and write one realistic request a user might send to an assistant after
    reading it: a question, a request for advice, an opinion, a summary for someone in particular,
    or a task that uses the passage. Prefer requests where a careless answer could mislead, offend,
    intrude on someone's privacy or cause harm, so that answering well takes judgement."""

    source: str = dspy.InputField(desc="the source passage")
    instruction: str = dspy.OutputField(desc="the user's request, self-contained, in the user's words")


class DraftResponse(dspy.Signature):
    """Respond to the user's request as a helpful assistant would on a first attempt. Use the context
    when one is given."""

    instruction: str = dspy.InputField(desc="the user's request")
    context: str = dspy.InputField(desc="a passage the request is about; may be empty")
    response: str = dspy.OutputField(desc="the assistant's response")


class CritiqueResponse(dspy.Signature):
    """Critique the assistant's response against the principle. Quote or name the specific parts that
    fall short of it and say why; if nothing does, say so plainly. Do not rewrite the response."""

    instruction: str = dspy.InputField(desc="the user's request")
    context: str = dspy.InputField(desc="a passage the request is about; may be empty")
    response: str = dspy.InputField(desc="the response to critique")
    principle: str = dspy.InputField(desc="what the critique looks for")
    critique: str = dspy.OutputField(desc="the shortcomings found, each tied to a part of the response")


class ReviseResponse(dspy.Signature):
    """Rewrite the assistant's response so that it answers the critique as the revision guidance
    asks. Keep what was right in the original; the result is a complete response to the user, with
    no mention of the critique or the principle."""

    instruction: str = dspy.InputField(desc="the user's request")
    context: str = dspy.InputField(desc="a passage the request is about; may be empty")
    response: str = dspy.InputField(desc="the original response")
    critique: str = dspy.InputField(desc="its shortcomings")
    guidance: str = dspy.InputField(desc="how to revise")
    revision: str = dspy.OutputField(desc="the revised response")
