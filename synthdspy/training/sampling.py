"""Sampling text from a trained proxy model: temperature, top-k, top-p, seeded and batched.

:func:`generate` is nanoGPT's ``generate`` (Karpathy, ``model.py``: crop the context to
``block_size``, scale the last logits by ``1 / temperature``, keep the ``top_k`` largest, sample)
with nucleus filtering (Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration",
section 3.1: keep the smallest set of tokens whose probability reaches ``top_p``) and a key/value
cache while the context fits in ``block_size`` (past it, every step re-reads the cropped context,
as nanoGPT does). Temperature 0 is greedy decoding.

:func:`iter_samples` draws documents: each row starts from the end-of-document id (plus an
optional prompt) and stops at the next end-of-document id or after ``max_tokens``;
:func:`write_jsonl` writes ``{"text": ...}`` lines, which ``synthdspy train`` reads as a
``format = "jsonl"`` source (template ``"{text}"``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from synthdspy.configio import ConfigError
from synthdspy.training.model import GPT
from synthdspy.training.tokenizer import CharTokenizer, Tokenizer


@dataclass
class Sample:
    """One sampled document: its text (prompt included) and the number of tokens generated."""

    text: str
    n_tokens: int


def filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """``logits`` ``[B, V]`` with tokens outside the top ``k`` and outside the nucleus ``p`` set to -inf.

    At least the most likely token always survives; ``top_k`` None/0 and ``top_p`` None/1 keep all.
    """
    if top_k:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = F.softmax(sorted_logits, dim=-1)
        drop = probs.cumsum(dim=-1) - probs >= top_p  # mass before this token already reaches p
        drop[:, 0] = False
        logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return logits


def _cached_logits(model: GPT, idx: torch.Tensor, cache: list, start: int) -> torch.Tensor:
    """Last-position logits ``[B, V]`` for tokens ``idx`` ``[B, t]`` at positions ``start..start+t-1``.

    ``cache`` holds one ``(keys, values)`` pair per layer, each ``[B, heads, block_size, head_dim]``
    (allocated on the first call, when ``start`` is 0); this call writes its positions into them
    and attends over positions ``0..start+t-1``.
    """
    B, t = idx.shape
    C, end = model.cfg.n_embd, start + t
    x = model.wte(idx) + model.wpe(torch.arange(start, end, device=idx.device))
    for i, block in enumerate(model.blocks):
        attn = block.attn
        q, k, v = attn.c_attn(block.ln_1(x)).split(C, dim=2)
        q, k, v = (z.view(B, t, attn.n_head, C // attn.n_head).transpose(1, 2) for z in (q, k, v))
        if cache[i] is None:
            shape = (B, attn.n_head, model.cfg.block_size, C // attn.n_head)
            cache[i] = (k.new_empty(shape), v.new_empty(shape))
        keys, values = cache[i]
        keys[:, :, start:end], values[:, :, start:end] = k, v
        y = F.scaled_dot_product_attention(q, keys[:, :, :end], values[:, :, :end], is_causal=start == 0 and t > 1)
        x = x + attn.c_proj(y.transpose(1, 2).contiguous().view(B, t, C))
        x = x + block.mlp(block.ln_2(x))
    return model.lm_head(model.ln_f(x[:, -1]))


@torch.no_grad()
def generate(
    model: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    vocab_size: int | None = None,
    stop_id: int | None = None,
    banned: Sequence[int] = (),
) -> torch.Tensor:
    """Extend ``idx`` ``[B, T]`` (int64) by up to ``max_new_tokens`` sampled ids: ``[B, T + n]``.

    Args:
        model: the GPT, in eval mode.
        idx: the contexts, one row per sample.
        temperature: logits are divided by it; 0 takes the argmax (greedy).
        top_k, top_p: filters of :func:`filter_logits`.
        generator: the random generator (on the model's device) that makes sampling reproducible.
        vocab_size: ids at or above it (the padding of a padded vocabulary) are never produced.
        stop_id: stop early once every row has produced this id (rows are not cut here).
        banned: ids never produced (a character tokenizer's unknown-character id).

    Raises:
        ValueError: a negative temperature.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    block = model.cfg.block_size
    cache: list = [None] * len(model.blocks)
    done = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
    for _ in range(max_new_tokens):
        if idx.size(1) <= block:  # key/value cache: only the newest token is computed
            new = idx if cache[0] is None else idx[:, -1:]
            logits = _cached_logits(model, new, cache, idx.size(1) - new.size(1))
        else:
            logits = model(idx[:, -block:])[0][:, -1]
        logits = logits.float()
        if vocab_size is not None:
            logits[:, vocab_size:] = float("-inf")
        logits[:, list(banned)] = float("-inf")
        if temperature == 0:
            nxt = logits.argmax(dim=-1, keepdim=True)
        else:
            probs = F.softmax(filter_logits(logits / temperature, top_k, top_p), dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator)
        idx = torch.cat([idx, nxt], dim=1)
        if stop_id is not None:
            done |= nxt[:, 0] == stop_id
            if bool(done.all()):
                break
    return idx


def prompt_ids(tokenizer: Tokenizer, prompt: str) -> list[int]:
    """The context every sample starts from: the end-of-document id, then ``prompt``'s ids.

    Raises:
        ConfigError: ``prompt`` has characters the tokenizer cannot represent.
    """
    ids = [int(i) for i in tokenizer.encode(prompt)]
    if tokenizer.decode(ids) != prompt:
        raise ConfigError(f"--prompt {prompt!r}: holds characters outside the model's vocabulary")
    return [tokenizer.eot_id, *ids]


def iter_samples(
    model: GPT,
    tokenizer: Tokenizer,
    max_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    batch_size: int = 64,
    prompt: str = "",
) -> Iterator[Sample]:
    """Endless sampled documents, ``batch_size`` at a time, reproducible from ``seed``.

    Each row starts from :func:`prompt_ids` and ends before the first end-of-document id or after
    ``max_tokens`` generated tokens; a character tokenizer's unknown-character id is never drawn.
    The same seed, batch size and settings give the same samples.

    Raises:
        ConfigError: ``max_tokens`` or ``batch_size`` below 1, a negative temperature, or a bad prompt.
    """
    if max_tokens < 1 or batch_size < 1 or temperature < 0:
        raise ConfigError(
            f"sampling needs max_tokens >= 1, batch_size >= 1 and temperature >= 0 "
            f"(got {max_tokens}, {batch_size}, {temperature})"
        )
    device = next(model.parameters()).device
    context = prompt_ids(tokenizer, prompt)
    gen = torch.Generator(device=device).manual_seed(seed)
    banned = [tokenizer.unk_id] if isinstance(tokenizer, CharTokenizer) else []
    start = torch.tensor([context] * batch_size, dtype=torch.long, device=device)
    while True:
        out = generate(model, start, max_tokens, temperature, top_k, top_p, gen, tokenizer.vocab_size,
                       tokenizer.eot_id, banned)
        for row in out[:, len(context):].tolist():
            ids = row[: row.index(tokenizer.eot_id)] if tokenizer.eot_id in row else row
            yield Sample(prompt + tokenizer.decode(ids), len(ids))


def write_jsonl(samples: list[Sample], path: str | Path) -> Path:
    """Write one ``{"text": ...}`` line per sample to ``path`` (parents created). Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for s in samples:
            fh.write(json.dumps({"text": s.text}, ensure_ascii=False) + "\n")
    return path


def load_for_sampling(model_dir: str | Path, device: str = "cpu") -> tuple[GPT, Tokenizer]:
    """:func:`synthdspy.training.api.load_model`, with unreadable files reported in one line.

    Raises:
        ConfigError: ``model_dir`` is not the output directory of ``synthdspy train``, or its
            checkpoint or tokenizer cannot be read.
    """
    from synthdspy.training.api import load_model

    try:
        return load_model(model_dir, device)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None
    except Exception as exc:  # a truncated or foreign checkpoint: torch and pickle raise many types
        raise ConfigError(f"{model_dir}: cannot load the model ({type(exc).__name__}: {exc})".split("\n")[0]) from None
