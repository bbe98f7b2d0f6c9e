"""Throughput of synthdspy's trainer against a minimal plain PyTorch loop, measured in the same run.

Both train the same GPT on the same tokens (tinyshakespeare, characters, nanoGPT's small CPU
shape unless ``--config`` says otherwise) with the same device settings; the plain loop is
nanoGPT's bare essentials (random windows, AdamW, backward, clip, step) with no schedule, no
sampler bookkeeping and no evaluation. Prints tokens/s of each and the ratio (ours / plain).
On a machine with CUDA it also trains a ~30M-parameter model in bfloat16 (torch.compile) and
prints tokens/s and MFU.

Run from the repository root:  python benchmarks/proxy_training.py [--steps 200]
"""

from __future__ import annotations

import argparse
import time

import torch

from synthdspy.training import load_train_config, train
from synthdspy.training.data import prepare
from synthdspy.training.device import mfu, resolve_runtime
from synthdspy.training.model import GPT

GPU_30M = [  # 10 x 512, 8 heads of 64, block 1024: 31.6M parameters besides position embeddings
    "model.n_layer=10",
    "model.n_head=8",
    "model.n_embd=512",
    "model.block_size=1024",
    "model.pad_vocab_to=64",
    "trainer.batch_size=32",
    "optim.warmup_steps=20",
]


def plain_loop(cfg, tokens: torch.Tensor, steps: int, warmup: int) -> float:
    """Tokens/s of a bare training loop over ``tokens`` (the same GPT, AdamW and clipping)."""
    t = cfg.trainer
    rt = resolve_runtime(t.device, t.dtype, t.compile, t.threads)
    torch.manual_seed(cfg.seed)
    model = GPT(cfg.model).to(rt.device)
    fwd = torch.compile(model) if rt.compile else model
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.optim.learning_rate, betas=(0.9, 0.99), fused=rt.device.type == "cuda"
    )
    B, T = t.batch_size, cfg.model.block_size
    elapsed, counted = 0.0, 0
    for step in range(steps):
        t0 = time.perf_counter()
        ix = torch.randint(len(tokens) - T - 1, (B,))
        data = torch.stack([tokens[i : i + T + 1] for i in ix.tolist()])
        x, y = data[:, :-1].to(rt.device), data[:, 1:].to(rt.device)
        with rt.autocast():
            _, loss = fwd(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if rt.device.type == "cuda":
            torch.cuda.synchronize()
        if step >= warmup:
            elapsed += time.perf_counter() - t0
            counted += B * T
    return counted / elapsed


def compare(config: str, overrides: list[str], steps: int, rounds: int) -> tuple[float, float, object, float]:
    """Best tokens/s (ours, plain) over ``rounds`` alternating runs of ``steps`` steps of ``config`` +
    ``overrides``; our last result; FLOPs per token."""
    sets = [
        *overrides,
        f"trainer.max_steps={steps}",
        f"trainer.eval_interval={steps}",
        "trainer.eval_windows=8",
        "tracking.enabled=false",
        "output_dir=runs/bench/proxy_training",
    ]
    cfg = load_train_config(config, sets)
    data = prepare(cfg)
    vocab = data.tokenizer.vocab_size
    pad = cfg.model.pad_vocab_to
    cfg = cfg.model_copy(
        update={"model": cfg.model.model_copy(update={"vocab_size": -(-vocab // pad) * pad})}
    )
    tokens = torch.from_numpy(data.cells[0].tokens.astype("int64"))
    warmup = min(10, steps // 10)  # the trainer leaves the same warm-up steps out of its figure
    plain, ours, result = 0.0, 0.0, None
    for _ in range(rounds):  # alternate, keep the best of each: less sensitive to other load
        plain = max(plain, plain_loop(cfg, tokens, steps, warmup))
        result = train(cfg)
        ours = max(ours, result.tokens_per_s)
    return ours, plain, result, GPT(cfg.model).flops_per_token()


def main() -> None:
    """Parse arguments, run the comparison (and the GPU figure when CUDA is present), print."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="experiments/train_shakespeare_char.toml")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--gpu-steps", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    ours, plain, result, _ = compare(args.config, [], args.steps, args.rounds)
    print(
        f"model: {result.n_params / 1e6:.2f}M parameters on {result.device}, {args.steps} steps, "
        f"best of {args.rounds} alternating rounds"
    )
    print(f"plain PyTorch loop: {plain:,.0f} tokens/s")
    print(f"synthdspy trainer:  {ours:,.0f} tokens/s")
    print(f"ratio (ours / plain): {ours / plain:.3f}")
    if torch.cuda.is_available():
        ours, plain, result, flops = compare(args.config, GPU_30M, args.gpu_steps, args.rounds)
        peak = load_train_config(args.config).trainer.peak_flops
        print(f"GPU ~30M model: {result.n_params / 1e6:.1f}M parameters, {result.device}")
        print(f"plain loop {plain:,.0f} tokens/s; synthdspy {ours:,.0f} tokens/s (ratio {ours / plain:.3f})")
        print(
            f"MFU at a peak of {peak:.3g} FLOP/s: synthdspy {result.mfu:.1%}, "
            f"plain {mfu(flops, plain, peak):.1%}"
        )
    else:
        print("no CUDA device: the ~30M-parameter bf16 figure (tokens/s, MFU) needs a GPU")


if __name__ == "__main__":
    main()
