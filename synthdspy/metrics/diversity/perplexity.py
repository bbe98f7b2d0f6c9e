"""Perplexity and perplexity gap of a text set under local causal language models.

Chen et al. 2024 (Table 1, appendix C) score perplexity with GPT-2-L and the perplexity gap
between GPT-2-L and GPT-2-XL. A model is a local directory, nothing is downloaded:

- a ``transformers`` causal LM (``config.json``, weights and tokenizer files side by side), read
  with ``local_files_only=True``;
- the output directory of ``synthdspy train`` (``checkpoint.pt`` and ``tokenizer.json``): a proxy
  model, whose texts are cut to its ``block_size`` as well.

Perplexity is per token of the model's own tokenizer, so a perplexity gap means something only
between models that share a tokenizer (GPT-2-L and -XL do; proxy models of one tokenizer kind do).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


@functools.lru_cache(maxsize=4)
def load_causal_lm(path: str, device: str = "cpu") -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` from a local ``transformers`` directory (cached per process).

    Raises:
        FileNotFoundError: ``path`` is not a directory holding a model.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (Path(path) / "config.json").exists():
        raise FileNotFoundError(
            f"no model in {path}: neither a transformers model (config.json) nor a `synthdspy train` "
            "output (checkpoint.pt)"
        )
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True).to(device).eval()
    return model, tokenizer


@functools.lru_cache(maxsize=4)
def _load_scorer(path: str, device: str) -> tuple[Callable[[str, int], Any], Callable[[Any], Any]]:
    """``(encode, logits)`` of the model at ``path``: ``encode(text, max_length)`` gives token ids of
    shape ``[1, n]`` (truncated), ``logits(ids)`` the logits ``[1, n, V]``."""
    if (Path(path) / "checkpoint.pt").is_file():
        import torch

        from synthdspy.training import load_model

        model, tokenizer = load_model(path, device)
        limit = model.cfg.block_size

        def encode(text: str, max_length: int) -> Any:
            ids = tokenizer.encode(text)[: min(max_length, limit)]
            return torch.as_tensor(ids, dtype=torch.long).unsqueeze(0)

        return encode, lambda ids: model(ids)[0]
    model, tokenizer = load_causal_lm(path, device)

    def encode_hf(text: str, max_length: int) -> Any:
        return tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")["input_ids"]

    return encode_hf, lambda ids: model(ids).logits


def perplexity(
    texts: Sequence[str], model_path: str, max_length: int = 512, device: str = "cpu"
) -> float:
    """Corpus perplexity exp(sum of token NLL / number of predicted tokens), tokens pooled over texts.

    Source: Chen et al. 2024, Table 1 (2 ** mean negative log2-likelihood, the same number).
    ``model_path`` is either kind of model of the module docstring. Each text is scored on its own
    (one forward pass per text), truncated to ``max_length`` tokens (and to a proxy model's block
    size); the first token of a text has no context and is not predicted, so texts of one token
    contribute nothing.

    Raises:
        FileNotFoundError: no model at ``model_path``.
        ValueError: no text has two tokens or more.
    """
    import torch

    encode, forward = _load_scorer(model_path, device)
    total_nll = 0.0
    total_tokens = 0
    for text in texts:
        ids = encode(text, max_length)
        if ids.shape[1] < 2:
            continue
        with torch.no_grad():
            logits = forward(ids.to(device))[0, :-1].float()
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
