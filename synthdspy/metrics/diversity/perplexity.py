"""Perplexity and perplexity gap of a text set under local causal language models.

Chen et al. 2024 (Table 1, appendix C) score perplexity with GPT-2-L and the perplexity gap
between GPT-2-L and GPT-2-XL. Any ``transformers`` causal LM directory works here (model and
tokenizer files side by side), read with ``local_files_only=True``; nothing is downloaded.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any


@functools.lru_cache(maxsize=4)
def load_causal_lm(path: str, device: str = "cpu") -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` from a local ``transformers`` directory (cached per process).

    Raises:
        FileNotFoundError: ``path`` is not a directory holding a model.
    """
    from pathlib import Path

    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (Path(path) / "config.json").exists():
        raise FileNotFoundError(f"no transformers model (config.json) in {path}")
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True).to(device).eval()
    return model, tokenizer


def perplexity(
    texts: Sequence[str], model_path: str, max_length: int = 512, device: str = "cpu"
) -> float:
    """Corpus perplexity exp(sum of token NLL / number of predicted tokens), tokens pooled over texts.

    Source: Chen et al. 2024, Table 1 (2 ** mean negative log2-likelihood, the same number).
    Each text is scored on its own (one forward pass per text), truncated to ``max_length``
    tokens; the first token of a text has no context and is not predicted, so texts of one
    token contribute nothing.

    Raises:
        FileNotFoundError: no model at ``model_path``.
        ValueError: no text has two tokens or more.
    """
    import torch

    model, tokenizer = load_causal_lm(model_path, device)
    total_nll = 0.0
    total_tokens = 0
    for text in texts:
        ids = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")["input_ids"]
        if ids.shape[1] < 2:
            continue
        with torch.no_grad():
            logits = model(ids.to(device)).logits[0, :-1].float()
        nll = torch.nn.functional.cross_entropy(logits, ids[0, 1:].to(device), reduction="sum")
        total_nll += float(nll)
        total_tokens += ids.shape[1] - 1
    if total_tokens == 0:
        raise ValueError("perplexity: no text has at least two tokens")
    return math.exp(total_nll / total_tokens)


def perplexity_gap(
    texts: Sequence[str], small_model_path: str, large_model_path: str, **kwargs: Any
) -> float:
    """|PPL(small) - PPL(large)| on the same texts (Chen et al. 2024, Table 1, "Perplexity Gap").

    ``kwargs`` go to :func:`perplexity`. Raises what it raises.
    """
    return abs(perplexity(texts, small_model_path, **kwargs) - perplexity(texts, large_model_path, **kwargs))
