"""The provider side of batch mode: an endpoint's files and batches through LiteLLM, and prices.

OpenAI Batch (platform.openai.com/docs/guides/batch): the requests are uploaded as one JSONL file
(``purpose=batch``; ``litellm.create_file``), a batch is created on it (``litellm.create_batch``,
``completion_window="24h"``), polled (``litellm.retrieve_batch``: ``status`` validating,
in_progress, finalizing, then completed, expired, failed or cancelled, with ``request_counts``),
and its ``output_file_id`` / ``error_file_id`` read (``litellm.file_content``). Any
OpenAI-compatible server with these routes works (``openai/...`` models with ``api_base``).
Anthropic's Message Batches are not covered: LiteLLM only retrieves them, it cannot create them.

Batch prices (:func:`batch_cost`): LiteLLM's ``input_cost_per_token_batches`` /
``output_cost_per_token_batches`` for the model; a role's own ``price`` is halved, as LiteLLM
does for a model without batch keys (OpenAI and Anthropic both sell batches at half price).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from synthdspy.config import LMRole, PriceConfig
from synthdspy.configio import ConfigError
from synthdspy.pricing import token_cost

ENDED = ("completed", "expired", "failed", "cancelled")
CHAT_URL = "/v1/chat/completions"


@dataclass(frozen=True)
class Endpoint:
    """Where a role's batches go: LiteLLM ``model``, ``api_base`` (None: the provider's), the key
    (never printed) and the HTTP ``timeout_s`` of one files/batches request."""

    model: str
    api_base: str | None
    api_key: str | None = field(repr=False)
    timeout_s: float

    @property
    def group(self) -> str:
        """``model @ api_base``: requests of one group go in one batch."""
        return f"{self.model} @ {self.api_base or 'default'}"

    @property
    def wire_model(self) -> str:
        """The model name the provider knows (LiteLLM's ``openai/`` prefix dropped)."""
        return self.model.partition("/")[2] if self.model.startswith("openai/") else self.model


def endpoint_for(role_name: str, role: LMRole) -> Endpoint:
    """The batch endpoint of an HTTP role.

    Raises:
        ConfigError: the provider has no batch API synthdspy can drive, the role is a text model,
            or its response cache is off (answers reach the program through the cache).
    """
    import os

    from synthdspy.lm import effective_api_base

    provider = role.model.partition("/")[0] if "/" in role.model else "openai"
    if provider != "openai":
        raise ConfigError(f"lm.{role_name}.model {role.model}: generate.batch drives OpenAI's Batch API (openai/... "
                          "models, any OpenAI-compatible api_base); run this role without batch")
    if role.model_type != "chat":
        raise ConfigError(f"lm.{role_name}.model_type {role.model_type!r}: generate.batch sends chat requests only")
    if not role.cache:
        raise ConfigError(f"lm.{role_name}.cache = false: generate.batch replays batch answers from the response "
                          "cache; set it to true")
    key = os.environ.get(role.api_key_env) if role.api_key_env else None
    return Endpoint(role.model, effective_api_base(role), key, role.timeout_s)


@dataclass
class BatchState:
    """A batch as last retrieved: ``status``, ``total`` / ``completed`` / ``failed`` request
    counts, and its output and error file ids (None until it ends)."""

    status: str
    total: int = 0
    completed: int = 0
    failed: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None

    @property
    def ended(self) -> bool:
        """True once the batch will change no more."""
        return self.status in ENDED


class OpenAIBatches:
    """One endpoint's files and batches, through LiteLLM's batch and file functions."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def _options(self) -> dict[str, Any]:
        e = self.endpoint
        return {"custom_llm_provider": "openai", "api_base": e.api_base, "api_key": e.api_key, "timeout": e.timeout_s}

    def submit(self, lines: list[dict[str, Any]], metadata: dict[str, str]) -> str:
        """Upload ``lines`` (``{"custom_id", "body"}``) as a batch input file and create a batch of
        them; returns the batch id. Raises LiteLLM's errors (auth, network, 4xx)."""
        import litellm

        data = "".join(json.dumps({"custom_id": line["custom_id"], "method": "POST", "url": CHAT_URL,
                                   "body": line["body"]}) + "\n" for line in lines).encode()
        uploaded = litellm.create_file(file=("synthdspy-batch.jsonl", data), purpose="batch", **self._options())
        batch = litellm.create_batch(completion_window="24h", endpoint=CHAT_URL, input_file_id=uploaded.id,
                                     metadata=metadata, **self._options())
        return str(batch.id)

    def retrieve(self, batch_id: str) -> BatchState:
        """The batch's state now. Raises LiteLLM's errors."""
        import litellm

        batch = litellm.retrieve_batch(batch_id=batch_id, **self._options())
        counts = batch.request_counts
        return BatchState(str(batch.status), int(getattr(counts, "total", 0) or 0),
                          int(getattr(counts, "completed", 0) or 0), int(getattr(counts, "failed", 0) or 0),
                          batch.output_file_id, batch.error_file_id)

    def results(self, state: BatchState) -> list[dict[str, Any]]:
        """The output and error lines of an ended batch (``{"custom_id", "response", "error"}``)."""
        import litellm

        lines: list[dict[str, Any]] = []
        for file_id in (state.output_file_id, state.error_file_id):
            if file_id:
                text = litellm.file_content(file_id=file_id, **self._options()).content.decode("utf-8", "replace")
                lines += [json.loads(row) for row in text.splitlines() if row.strip()]
        return lines


def batch_cost(model: str, usage: dict[str, Any], price: PriceConfig | None) -> float | None:
    """USD cost of one batch answer with ``usage`` (OpenAI token counts): half the role's ``price``
    when set, 0 for the simulator, else LiteLLM's batch price of ``model``; None when unpriced."""
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    online = token_cost(model, prompt, completion, price)
    if online is None or price is not None or model.startswith("sim/"):
        return None if online is None else online / 2
    import litellm
    from litellm.cost_calculator import batch_cost_calculator

    try:
        p, c = batch_cost_calculator(litellm.Usage(prompt_tokens=prompt, completion_tokens=completion,
                                                   total_tokens=prompt + completion), model=model)
    except Exception:  # LiteLLM raises several types for models it cannot price
        return online / 2
    return float(p + c)
