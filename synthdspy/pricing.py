"""USD prices of LM calls: the role's ``price`` override, else LiteLLM's bundled cost map.

LiteLLM's local cost map is selected when synthdspy is imported (``LITELLM_LOCAL_MODEL_COST_MAP`` in
``synthdspy/__init__.py``), so pricing never fetches the live map over the network. A model neither
the config nor the map can price is *unpriced*: its cost is None, reported as "unpriced" (never as
$0), and a USD budget on it is refused (:func:`check_budget_priced`).
"""

from __future__ import annotations

from typing import Any

from synthdspy.config import PriceConfig
from synthdspy.configio import ConfigError


def token_cost(model: str, prompt_tokens: int, completion_tokens: int,
               price: PriceConfig | None = None) -> float | None:
    """USD price of ``prompt_tokens`` + ``completion_tokens`` on ``model``: ``price`` (USD per
    million tokens) when given, 0.0 for the simulator (``sim/...``), else LiteLLM's cost map;
    None when the model has no price (local servers, unknown names)."""
    if price is not None:
        return (prompt_tokens * price.input_per_mtok + completion_tokens * price.output_per_mtok) / 1e6
    if model.startswith("sim/"):
        return 0.0
    try:
        import litellm

        litellm.suppress_debug_info = True
        p, c = litellm.cost_per_token(model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
        return float(p + c)
    except Exception:  # LiteLLM raises several types for models it cannot price
        return None


def is_priced(model: str, price: PriceConfig | None = None) -> bool:
    """True when :func:`token_cost` can price ``model``."""
    return token_cost(model, 1000, 1000, price) is not None


def response_cost(model: str, response: Any, usage: dict[str, Any], price: PriceConfig | None = None) -> float | None:
    """USD cost of one response: the ``price`` override, else LiteLLM's own figure on the
    response, else its cost map; None when unpriced."""
    if price is None:
        hidden = getattr(response, "_hidden_params", None) or {}
        if hidden.get("response_cost") is not None:
            return float(hidden["response_cost"])
    return token_cost(model, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0), price)


def check_budget_priced(models: dict[str, tuple[str, PriceConfig | None]], what: str) -> None:
    """Refuse a USD budget (``what``, e.g. ``--max-usd``) when a role's model is unpriced.

    Args:
        models: ``{role: (model, price override)}``.

    Raises:
        ConfigError: naming the role and model and the ``price`` key that fixes it.
    """
    for role, (model, price) in models.items():
        if not is_priced(model, price):
            raise ConfigError(
                f"{what}: lm.{role} model {model} has no known price, so a USD budget cannot be enforced; "
                f"set lm.{role}.price = {{ input_per_mtok = ..., output_per_mtok = ... }}"
            )
