"""The offline simulator playing a base model on a text-completion endpoint (a toy for pipeline tests).

A base model continues a document: given a prompt in :class:`~synthdspy.base_prefix.BasePrompt`'s
layout, it writes the answer of the last query and then, unless stopped, rambles on into a next
``# Query:`` block. The toy does the same with the simulator's answer: it recovers the chat
messages from the prompt (:func:`chat_view`), has the simulator answer them, drops what the
prompt already ends with (the primer), and appends :data:`RAMBLE`. Stop sequences are applied
by the HTTP route, as servers do, and by the client for the in-process :class:`TextSimulator`.
None of its text is evidence of what a real base model would write.

:func:`answer_completion` is the ``POST /v1/completions`` route of :mod:`synthdspy.sim_server`
(OpenAI's legacy completions format: ``prompt``, ``stop``, ``n``, ``max_tokens``; answers
``object: "text_completion"`` with ``choices[i].text`` and usage), screened like the chat route
by :class:`~synthdspy.provider_server.Provider`: API key, quota, model, context window, RPM/TPM
429s with ``retry-after`` and ``x-ratelimit-*`` headers, injected faults, latency, truncation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
import uuid
from pathlib import Path
from typing import Any

from synthdspy.base_prefix import ANSWER, QUERY, content_text
from synthdspy.provider_server import (
    MODEL_ID,
    REFUSAL,
    Answer,
    max_tokens_of,
    openai_error,
    request_key,
    truncate,
)
from synthdspy.simulator import (
    SimCall,
    SimReply,
    SimulatedRateLimitError,
    SimulatedServerError,
    Simulator,
    count_tokens,
)

#: What the toy writes after its answer when nothing stops it: the start of a next query.
RAMBLE = "\n```\n\n# Query:\n```\nThank you. One more question:"
#: Names this toy in the simulator's cache key (``user``): text answers cached by another build
#: of it are never replayed.
TEXT_SIM_BUILD = "text/" + hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
_FIELD_HEADER = re.compile(r"^\[\[ ## \w+ ## \]\]\s*$", re.MULTILINE)


def _split_system(query: str) -> tuple[str, str]:
    """(system, user) of the last query: DSPy's system text ends with its objective, and the
    user message starts at the first input header (or the closing "Respond with" line)."""
    objective = query.find("your objective is:")
    if objective < 0:
        return "", query
    starts = [i for i in (query.find("\n\n[[ ## ", objective), query.find("\n\nRespond with", objective)) if i >= 0]
    if not starts:
        return query, ""
    return query[: min(starts)], query[min(starts) + 2 :]


def chat_view(prompt: str) -> list[dict]:
    """The chat messages a prompt in BasePrompt's layout was rendered from: the system part of
    the last query, earlier query/answer blocks holding ``[[ ## field ## ]]`` header lines (DSPy
    demos; the prefix's own examples are skipped), and the last query's user part. A prompt in
    another layout is one user message."""
    start = prompt.rfind(QUERY)
    if start < 0:
        return [{"role": "user", "content": prompt}]
    query = prompt[start + len(QUERY) :].partition(ANSWER)[0]
    system, user = _split_system(query)
    messages = [{"role": "system", "content": system}] if system else []
    for block in prompt[:start].split(QUERY)[1:]:
        demo_query, sep, demo_answer = block.partition(ANSWER)
        if sep and _FIELD_HEADER.search(demo_query):
            demo_answer = demo_answer.rstrip().removesuffix("```").rstrip()
            messages += [{"role": "user", "content": demo_query}, {"role": "assistant", "content": demo_answer}]
    return [*messages, {"role": "user", "content": user}]


def continuation(prompt: str, answer: str) -> str:
    """``answer`` as a continuation of ``prompt``: its longest head that the prompt already ends
    with (the primer) removed, then :data:`RAMBLE`."""
    for k in range(min(len(answer), len(prompt), 400), 0, -1):
        if prompt.endswith(answer[:k]):
            return answer[k:] + RAMBLE
    return answer + RAMBLE


def apply_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    """``text`` cut before the earliest of the ``stop`` sequences; (text, whether one was found)."""
    cuts = [text.find(s) for s in stop if s and s in text]
    return (text[: min(cuts)], True) if cuts else (text, False)


class TextSimulator(Simulator):
    """The in-process simulator for a text-model role: each call's single user message is a
    rendered prompt, answered as :func:`continuation` (no stop applied: the client trims)."""

    def answer(self, call: SimCall, malformed: bool = False) -> SimReply:
        """The continuation of the call's prompt (see :class:`Simulator.answer`)."""
        prompt = "\n\n".join(content_text(m.get("content")) for m in call.messages)
        reply = super().answer(dataclasses.replace(call, messages=chat_view(prompt)), malformed)
        text = continuation(prompt, reply.text)
        return SimReply(text, count_tokens(prompt), count_tokens(text))


def text_completion_body(body: dict, prompt: str, replies: list[SimReply], content_filter: bool = False) -> dict:
    """OpenAI ``text_completion`` body: each reply as a continuation of ``prompt``, cut at the
    request's ``stop`` sequences (finish_reason "stop") and then to ``max_tokens`` simulator
    tokens (finish_reason "length"); a content-filtered answer is empty text per choice."""
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else list(stop)
    limit, choices, completion_tokens = max_tokens_of(body), [], 0
    for i, reply in enumerate(replies):
        if content_filter:
            choices.append({"index": i, "text": "", "logprobs": None, "finish_reason": "content_filter"})
            completion_tokens += count_tokens(REFUSAL)
            continue
        text, _ = apply_stop(continuation(prompt, reply.text), stop)
        text, cut = truncate(text, limit)
        choices.append({"index": i, "text": text, "logprobs": None, "finish_reason": "length" if cut else "stop"})
        completion_tokens += count_tokens(text)
    prompt_tokens = count_tokens(prompt)
    return {
        "id": f"cmpl-sim-{uuid.uuid4().hex[:12]}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": body.get("model", MODEL_ID),
        "choices": choices,
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def _prompt_of(body: dict) -> str:
    prompt = body["prompt"]
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise TypeError("prompt must be a string (or a list of one string)")
    if (max_tokens_of(body) or 0) < 0 or int(body.get("n") or 1) < 1:
        raise ValueError("max_tokens must be >= 0 and n >= 1")
    return prompt


def answer_completion(handler: Any, raw: bytes) -> None:
    """Answer ``POST /v1/completions`` on ``handler`` (sim_server's request handler: its
    ``server.provider`` / ``server.simulator`` and its ``_finish`` / ``_send`` writers), in the
    chat route's order: auth, body, stream refusal, screen, latency and fault, hang, answer."""
    provider, sim = handler.server.provider, handler.server.simulator
    body = handler.accept(raw, _prompt_of)
    if body is None:
        return
    prompt = _prompt_of(body)
    as_chat = {**body, "messages": [{"role": "user", "content": prompt}]}  # the estimate counts the whole prompt
    admitted, fault = handler.admit(as_chat)
    if not admitted:
        return
    call = SimCall(chat_view(prompt), temperature=body.get("temperature"), seed=body.get("seed"))
    retry = {"retry_after": f"{sim.options.retry_after_s:g}"}
    try:
        replies = [sim.complete(call)]
    except (SimulatedRateLimitError, SimulatedServerError) as exc:
        status, kind = (429, "rate_limit_error") if isinstance(exc, SimulatedRateLimitError) else (500, "server_error")
        handler._finish(openai_error(status, exc.message, kind, kind, **retry))
        return
    replies += [sim.answer(dataclasses.replace(call, candidate=i)) for i in range(1, int(body.get("n") or 1))]
    answer = Answer(200, text_completion_body(body, prompt, replies, content_filter=fault == "content_filter"))
    if fault == "drop":
        provider.stats.count("dropped")
        handler._send(answer, drop=True)
    else:
        handler._finish(answer, request_key(as_chat))
