"""nanoGPT's training loop, reproduced as a minimal script: the baseline of ``proxy_training.py``.

What Karpathy's nanoGPT (github.com/karpathy/nanoGPT, ``train.py``, ``model.py`` and
``data/shakespeare_char/prepare.py``) does on one device, without DDP, wandb or sampling:

- data: the text's sorted characters are the vocabulary; the first 90% of the text is
  ``train.bin``, the last 10% ``val.bin``, both uint16 and read back through ``np.memmap`` every batch;
- ``get_batch``: ``batch_size`` random windows of ``block_size + 1`` tokens;
- the GPT: pre-norm blocks, ``scaled_dot_product_attention`` (causal), GELU MLP, tied embeddings,
  N(0, 0.02) init with the residual projections at ``0.02 / sqrt(2 n_layer)``;
- AdamW with decay on 2-d tensors only, warmup then cosine decay (``get_lr``), gradient clipping;
- ``estimate_loss`` every ``eval_interval`` iterations: the mean of ``eval_iters`` batches of the
  train and of the val split; a checkpoint (model + optimizer) when the val loss improves;
- ``max_iters + 1`` iterations (0..max_iters, evaluating at max_iters), as nanoGPT runs them.

After the loop it evaluates every non-overlapping window of ``val.bin`` (timed apart: ``post_*``)
and prints one JSON line: tokens/s of the training steps (evaluations and the first
``min(10, max_iters // 10)`` steps left out, as synthdspy's trainer counts), the last
``estimate_loss`` and the full val loss.

Run:  python benchmarks/nanogpt_baseline.py --text ../shared/data/tinyshakespeare/input.txt
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    """nanoGPT's ``Block``: ``x + attn(ln_1(x))``, ``x + mlp(ln_2(x))`` (attention and MLP inlined)."""

    def __init__(self, n_embd: int, n_head: int, bias: bool) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias)
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.attn_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias)
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.mlp_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.n_head = n_head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_proj(y.transpose(1, 2).contiguous().view(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class GPT(nn.Module):
    """nanoGPT's ``GPT`` (dropout 0): token + position embeddings, blocks, final norm, tied head."""

    def __init__(self, vocab: int, block_size: int, n_layer: int, n_head: int, n_embd: int, bias: bool) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList(Block(n_embd, n_head, bias) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, bias=bias)
        self.lm_head = nn.Linear(n_embd, vocab, bias=False)
        self.wte.weight = self.lm_head.weight
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy (nats per token) of ``targets`` given ``idx`` (both ``[B, T]``)."""
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1), device=idx.device))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)


def prepare(text_path: str, out: Path) -> int:
    """nanoGPT's ``prepare.py``: write ``train.bin`` / ``val.bin`` (uint16) to ``out``; returns the vocabulary size."""
    data = Path(text_path).read_text(encoding="utf-8")
    chars = sorted(set(data))
    stoi = {ch: i for i, ch in enumerate(chars)}
    n = len(data)
    out.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", data[: int(n * 0.9)]), ("val", data[int(n * 0.9) :])):
        np.array([stoi[c] for c in part], dtype=np.uint16).tofile(out / f"{name}.bin")
    return len(chars)


def main() -> None:
    """Parse the nanoGPT settings, train, print one JSON line of figures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text", default="../shared/data/tinyshakespeare/input.txt")
    ap.add_argument("--out", default="runs/bench/nanogpt")
    for name, default in (("n_layer", 4), ("n_head", 4), ("n_embd", 128), ("block_size", 64), ("batch_size", 12),
                          ("max_iters", 2000), ("eval_interval", 250), ("eval_iters", 20), ("warmup_iters", 100),
                          ("lr_decay_iters", 0), ("seed", 1337), ("threads", 0)):
        ap.add_argument(f"--{name}", type=int, default=default)
    for name, default in (("learning_rate", 1e-3), ("min_lr", 1e-4), ("weight_decay", 0.1), ("beta2", 0.99),
                          ("grad_clip", 1.0)):
        ap.add_argument(f"--{name}", type=float, default=default)
    ap.add_argument("--bias", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--compile", action="store_true")
    a = ap.parse_args()
    t_start = time.perf_counter()
    if a.threads:
        torch.set_num_threads(a.threads)
    out = Path(a.out)
    vocab = prepare(a.text, out)
    torch.manual_seed(a.seed)
    device = torch.device(a.device)
    ctx = (torch.autocast(device.type, dtype=torch.bfloat16) if a.dtype == "bfloat16"
           else torch.autocast(device.type, enabled=False))
    B, T = a.batch_size, a.block_size

    def get_batch(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        data = np.memmap(out / f"{split}.bin", dtype=np.uint16, mode="r")  # re-opened per batch, as nanoGPT
        ix = torch.randint(len(data) - T, (B,))
        x = torch.stack([torch.from_numpy(data[i : i + T].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(data[i + 1 : i + 1 + T].astype(np.int64)) for i in ix])
        return x.to(device), y.to(device)

    raw = GPT(vocab, T, a.n_layer, a.n_head, a.n_embd, a.bias).to(device)
    params = [p for p in raw.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": a.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=a.learning_rate, betas=(0.9, a.beta2), fused=device.type == "cuda")
    model = torch.compile(raw) if a.compile else raw
    decay = a.lr_decay_iters or a.max_iters

    def get_lr(it: int) -> float:
        if it < a.warmup_iters:
            return a.learning_rate * (it + 1) / (a.warmup_iters + 1)
        if it > decay:
            return a.min_lr
        ratio = (it - a.warmup_iters) / max(decay - a.warmup_iters, 1)  # nanoGPT divides by zero here
        return a.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (a.learning_rate - a.min_lr)

    @torch.no_grad()
    def estimate_loss() -> dict[str, float]:
        model.eval()
        res = {}
        for split in ("train", "val"):
            losses = torch.zeros(a.eval_iters)
            for k in range(a.eval_iters):
                x, y = get_batch(split)
                with ctx:
                    losses[k] = model(x, y).item()
            res[split] = float(losses.mean())
        model.train()
        return res

    best_val, losses = 1e9, {}
    warm_skip = min(10, a.max_iters // 10)  # as synthdspy's trainer: warm-up steps left out of tokens/s
    step_s = 0.0
    x, y = get_batch("train")
    for it in range(a.max_iters + 1):
        for g in opt.param_groups:
            g["lr"] = get_lr(it)
        if it % a.eval_interval == 0:
            losses = estimate_loss()
            if losses["val"] < best_val:
                best_val = losses["val"]
                if it > 0:
                    state = {"model": raw.state_dict(), "optimizer": opt.state_dict(), "iter_num": it}
                    torch.save(state, out / "ckpt.pt")
        t0 = time.perf_counter()
        with ctx:
            loss = model(x, y)
        x, y = get_batch("train")
        loss.backward()
        if a.grad_clip:
            torch.nn.utils.clip_grad_norm_(raw.parameters(), a.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()  # nanoGPT reads the loss every log_interval (1 in its CPU recipe)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if it >= warm_skip:
            step_s += time.perf_counter() - t0
    wall_s = time.perf_counter() - t_start
    post_cpu = time.process_time()
    raw.eval()
    val = torch.from_numpy(np.fromfile(out / "val.bin", dtype=np.uint16).astype(np.int64))
    n = (len(val) - 1) // T
    xs, ys = val[: n * T].view(n, T), val[1 : n * T + 1].view(n, T)
    with torch.no_grad():
        full = sum(raw(xs[i : i + 64].to(device), ys[i : i + 64].to(device)).item() * len(xs[i : i + 64])
                   for i in range(0, n, 64)) / n
    tokens = (a.max_iters + 1) * B * T
    timed = (a.max_iters + 1 - warm_skip) * B * T
    post_wall, post_cpu = time.perf_counter() - t_start - wall_s, time.process_time() - post_cpu
    print(json.dumps({"tokens": tokens, "wall_s": wall_s, "tokens_per_s": timed / step_s,
                      "post_wall_s": post_wall, "post_cpu_s": post_cpu,
                      "val_loss": losses["val"], "train_loss": losses["train"], "full_val_loss": full,
                      "n_params": sum(p.numel() for p in raw.parameters()) - raw.wpe.weight.numel()}))


if __name__ == "__main__":
    main()
