"""LM roles on a text-completion endpoint (``[lm.<role>] model_type = "text"``): base models.

The adapter's chat messages are rendered into one URIAL-style prompt behind the role's prefix
(:mod:`synthdspy.base_prefix`; Lin et al. 2023, sec. 3) *above* DSPy's response cache, so the
prefix is part of the cache key; the answer is the primer plus the continuation, cut at the stop
sequences, which the adapter then parses as usual (a parse failure counts like any other).

Real endpoints: :class:`TextProviderEngine` is a :class:`~synthdspy.provider_engine.ProviderEngine`
(same limiter, retries, failure classes, truncation and refusal checks, metering) whose single
attempt is a LiteLLM ``text_completion`` (``POST {api_base}/completions``) with the rendered
prompt sent verbatim. Known limit: LiteLLM keeps no response headers of successful text
completions, so the endpoint limiter learns only from 429 answers and their ``retry-after`` and
``x-ratelimit-*`` headers, not from every answer as on the chat route.

``sim/...`` roles: the in-process simulator answers as a base model would
(:class:`~synthdspy.base_sim.TextSimulator`); stop sequences are then applied by the client.
"""

from __future__ import annotations

import os
from typing import Any

from dspy.clients.engines.litellm_engine import AsyncLiteLLMEngine, LiteLLMEngine

from synthdspy.base_prefix import STOP, BasePrompt, content_text
from synthdspy.provider_engine import AsyncProviderEngine, ProviderEngine


def _text_arguments(engine: Any, request: dict[str, Any]) -> dict[str, Any]:
    """LiteLLM ``text_completion`` arguments of ``request`` (one rendered user message plus options)
    sent to ``{api_base}/completions`` as model ``<name>`` of ``<provider>/<name>``. With no
    ``api_key`` set, the key is ``$<PROVIDER>_API_KEY`` (as LiteLLM reads it for chat), else
    ``EMPTY`` (vLLM's placeholder for a server without keys)."""
    sent = {k: v for k, v in request.items() if k not in ("messages", "model", "rollout_id")}
    prompt = "\n\n".join(content_text(m.get("content")) for m in request.get("messages") or [])
    model = engine.wire_model or request["model"]
    provider, _, name = model.partition("/") if "/" in model else ("openai", "", model)
    options = dict(engine.client_options)
    if not options.get("api_key"):
        options["api_key"] = os.environ.get(f"{provider.upper()}_API_KEY") or "EMPTY"
    return {"model": f"text-completion-openai/{name}", "prompt": prompt, "num_retries": 0, **options, **sent}


class _TextCompletionAttempt(LiteLLMEngine):
    """One LiteLLM ``text_completion`` attempt with the prompt sent as it is (DSPy's own text path
    appends "BEGIN RESPONSE:"), in DSPy's error mapping and result shape."""

    def complete_legacy(self, lm: Any, request: dict[str, Any], **context: Any) -> Any:
        """Send ``request`` as :func:`_text_arguments` describes.

        Raises:
            Exception: LiteLLM's errors mapped by DSPy (classified by ProviderEngine).
        """
        import litellm
        from dspy.clients.call_context import completed_legacy
        from dspy.clients.call_result import CallResult
        from dspy.clients.engines.litellm_errors import litellm_errors

        with litellm_errors(model=lm.model):
            raw = litellm.text_completion(**_text_arguments(self, request))
        completed_legacy(raw)
        return CallResult.legacy(lm, raw, kwargs=request)


class _AsyncTextCompletionAttempt(AsyncLiteLLMEngine):
    """:class:`_TextCompletionAttempt` on LiteLLM's async client."""

    async def complete_legacy(self, lm: Any, request: dict[str, Any], **context: Any) -> Any:
        """Send ``request`` as :func:`_text_arguments` describes.

        Raises:
            Exception: LiteLLM's errors mapped by DSPy (classified by AsyncProviderEngine).
        """
        import litellm
        from dspy.clients.call_context import completed_legacy
        from dspy.clients.call_result import CallResult
        from dspy.clients.engines.litellm_errors import litellm_errors

        with litellm_errors(model=lm.model):
            raw = await litellm.atext_completion(**_text_arguments(self, request))
        completed_legacy(raw)
        return CallResult.legacy(lm, raw, kwargs=request)


class TextProviderEngine(ProviderEngine, _TextCompletionAttempt):
    """:class:`ProviderEngine` whose attempts are text completions (same arguments)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model_type = "text"


class AsyncTextProviderEngine(AsyncProviderEngine, _AsyncTextCompletionAttempt):
    """:class:`AsyncProviderEngine` whose attempts are text completions (same arguments)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model_type = "text"


class TextPromptMixin:
    """Mixin for a metered DSPy LM of a text role: renders each call's messages behind
    ``base_prompt`` and returns primer + completion cut at the LM's ``stop`` sequences."""

    base_prompt: BasePrompt

    def _render(self, prompt: Any, messages: Any, kwargs: dict[str, Any]) -> tuple[list[dict], str, list[str]]:
        """(the one message sent, the primer, the stop sequences) of a call."""
        rendered = self.base_prompt.render(messages if messages is not None else [{"role": "user", "content": prompt}])
        stop = kwargs.get("stop", self.kwargs.get("stop")) or STOP  # type: ignore[attr-defined]
        stop = [stop] if isinstance(stop, str) else list(stop)
        return [{"role": "user", "content": rendered.text}], rendered.primer, stop

    def __call__(self, prompt: Any = None, *, messages: Any = None, **kwargs: Any) -> list[Any]:
        sent, primer, stop = self._render(prompt, messages, kwargs)
        outputs = super().__call__(messages=sent, **kwargs)  # type: ignore[misc]
        return [_finish(out, primer, stop) for out in outputs]

    async def acall(self, prompt: Any = None, *, messages: Any = None, **kwargs: Any) -> list[Any]:
        sent, primer, stop = self._render(prompt, messages, kwargs)
        outputs = await super().acall(messages=sent, **kwargs)  # type: ignore[misc]
        return [_finish(out, primer, stop) for out in outputs]


def _finish(output: Any, primer: str, stop: list[str]) -> Any:
    if isinstance(output, dict):
        return {**output, "text": BasePrompt.finish(output.get("text") or "", primer, stop)}
    return BasePrompt.finish(output or "", primer, stop)


def stop_sequences(extra_stop: Any) -> list[str]:
    """:data:`~synthdspy.base_prefix.STOP` plus the role's own ``extra.stop`` (a string or list)."""
    own = [extra_stop] if isinstance(extra_stop, str) else list(extra_stop or [])
    return [*STOP, *(s for s in own if s not in STOP)]
