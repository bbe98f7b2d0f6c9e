"""synthdspy's trainer against nanoGPT's training loop, whole processes, interleaved in one run.

Each round runs ``synthdspy train CONFIG`` (the command a user runs: MLflow tracking, checkpoints,
evaluation of every validation split) and ``benchmarks/nanogpt_baseline.py`` (nanoGPT's
``train.py`` loop reproduced: memmap ``get_batch``, AdamW, cosine lr, ``estimate_loss`` of train
and val every ``eval_interval``) on the same model configuration and the same text, alternating
A B A B so that other load on the machine hits both alike. Printed per side: medians over the
rounds of the process wall-clock, tokens/s end to end (tokens / wall) and in the loop, CPU time
(user + system), peak RSS; then each side's own final val estimate and both models' loss on every
non-overlapping window of the last 10% of the text (the same text for both, computed afterwards).
The ratios are ours / nanoGPT. On a machine with CUDA it also trains a ~30M-parameter model in
bfloat16 with torch.compile on both sides and prints tokens/s and MFU.

Run from the repository root:
    python benchmarks/proxy_training.py                                 # the full config, 2 rounds
    python benchmarks/proxy_training.py --set trainer.max_steps=300 --rounds 2   # a short check
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from synthdspy.training import load_train_config

OUT = Path("runs/bench/proxy_training")
GPU_30M = [  # 10 x 512, 8 heads of 64, block 1024: 31.6M parameters besides position embeddings
    "model.n_layer=10",
    "model.n_head=8",
    "model.n_embd=512",
    "model.block_size=1024",
    "trainer.batch_size=32",
    "optim.warmup_steps=20",
]


def measure(cmd: list[str]) -> tuple[float, float, float, str]:
    """Run ``cmd``; returns (wall s, CPU s of the child, its peak RSS in MiB, its stdout).

    Raises:
        RuntimeError: the command failed (its output is in the message).
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out


def ours(config: str, sets: list[str]) -> dict:
    """One ``synthdspy train`` process; figures from its ``result.json``."""
    exe = Path(sys.executable).parent / "synthdspy"
    out = OUT / "ours"
    cmd = [str(exe), "train", config, "--output", str(out), *(x for s in sets for x in ("--set", s))]
    wall, cpu, rss, _ = measure(cmd)
    res = json.loads((out / "result.json").read_text(encoding="utf-8"))
    val = next(v["nats_per_token"] for k, v in res["losses"].items() if k.startswith("val/"))
    return {"wall_s": wall, "cpu_s": cpu, "rss_mib": rss, "tokens": res["tokens"],
            "loop_tokens_per_s": res["tokens_per_s"], "val_loss": val}


def nanogpt_args(cfg) -> list[str]:
    """``nanogpt_baseline.py`` arguments for the same model, optimizer, schedule and evaluation as ``cfg``."""
    m, o, t = cfg.model, cfg.optim, cfg.trainer
    cuda = torch.cuda.is_available() and t.device != "cpu"
    args = {"n_layer": m.n_layer, "n_head": m.n_head, "n_embd": m.n_embd, "block_size": m.block_size,
            "batch_size": t.batch_size, "max_iters": cfg.total_steps, "eval_interval": t.eval_interval,
            "eval_iters": math.ceil(t.eval_windows / t.batch_size), "warmup_iters": o.warmup_steps,
            "lr_decay_iters": o.lr_decay_steps or cfg.total_steps, "learning_rate": o.learning_rate,
            "min_lr": o.min_lr, "weight_decay": o.weight_decay, "beta2": o.beta2, "grad_clip": o.grad_clip,
            "seed": cfg.seed, "threads": t.threads or 0, "text": cfg.sources[0].path, "out": str(OUT / "nanogpt"),
            "device": "cuda" if cuda else "cpu", "dtype": "bfloat16" if cuda else "float32"}
    flags = [x for k, v in args.items() for x in (f"--{k}", str(v))]
    return flags + (["--bias"] if m.bias else []) + (["--compile"] if cuda else [])


def nanogpt(cfg) -> dict:
    """One ``nanogpt_baseline.py`` process; figures from its JSON line."""
    script = Path(__file__).with_name("nanogpt_baseline.py")
    wall, cpu, rss, out = measure([sys.executable, str(script), *nanogpt_args(cfg)])
    res = json.loads(out.strip().splitlines()[-1])
    wall, cpu = wall - res["post_wall_s"], cpu - res["post_cpu_s"]  # its full-val evaluation is not the run's
    return {"wall_s": wall, "cpu_s": cpu, "rss_mib": rss, "tokens": res["tokens"],
            "loop_tokens_per_s": res["tokens_per_s"], "val_loss": res["val_loss"],
            "full_val_loss": res["full_val_loss"]}


@torch.no_grad()
def full_val_loss(cfg) -> float:
    """Our trained model's mean loss (nats per character) over every non-overlapping window of the
    last 10% of the text, as the baseline computes it for its own model."""
    from synthdspy.training.api import load_model

    model, tok = load_model(OUT / "ours")
    text = Path(cfg.sources[0].path).read_text(encoding="utf-8")
    ids = torch.from_numpy(tok.encode(text[int(len(text) * 0.9) :]).astype("int64"))
    T = cfg.model.block_size
    n = (len(ids) - 1) // T
    xs, ys = ids[: n * T].view(n, T), ids[1 : n * T + 1].view(n, T)
    return sum(model(xs[i : i + 64], ys[i : i + 64])[1].item() * len(xs[i : i + 64]) for i in range(0, n, 64)) / n


def compare(config: str, sets: list[str], rounds: int) -> dict[str, dict]:
    """Alternate ``rounds`` runs of each side; medians of every figure, plus the full val losses."""
    cfg = load_train_config(config, sets)
    runs: dict[str, list[dict]] = {"synthdspy": [], "nanoGPT": []}
    for r in range(rounds):
        for name, fn in (("synthdspy", lambda: ours(config, sets)), ("nanoGPT", lambda: nanogpt(cfg))):
            runs[name].append(fn())
            print(f"round {r + 1} {name}: {runs[name][-1]['wall_s']:.1f} s", file=sys.stderr, flush=True)
    out = {}
    for name, rs in runs.items():
        med = {k: statistics.median(x[k] for x in rs) for k in rs[0]}
        med["tokens_per_s"] = statistics.median(x["tokens"] / x["wall_s"] for x in rs)
        out[name] = med
    out["synthdspy"]["full_val_loss"] = full_val_loss(cfg)
    out["nanoGPT"]["full_val_loss"] = runs["nanoGPT"][-1]["full_val_loss"]
    return out


def show(res: dict[str, dict], title: str) -> None:
    """Print the table of medians and the ratios ours / nanoGPT."""
    a, b = res["synthdspy"], res["nanoGPT"]
    print(title)
    rows = [("wall-clock s", "wall_s", ".1f"), ("tokens/s (tokens / wall)", "tokens_per_s", ",.0f"),
            ("tokens/s (training steps)", "loop_tokens_per_s", ",.0f"), ("CPU time s", "cpu_s", ".1f"),
            ("peak RSS MiB", "rss_mib", ".0f"), ("final val loss (own estimate)", "val_loss", ".4f"),
            ("val loss, every window of the last 10%", "full_val_loss", ".4f")]
    print(f"{'':42s}{'synthdspy':>12s}{'nanoGPT':>12s}{'ratio':>8s}")
    for label, key, fmt in rows:
        print(f"{label:42s}{a[key]:>12{fmt}}{b[key]:>12{fmt}}{a[key] / b[key]:>8.3f}")


def main() -> None:
    """Parse arguments, run the comparison (and the GPU one when CUDA is present), print."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="experiments/train_shakespeare_char.toml")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="override for both sides")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--gpu-steps", type=int, default=200)
    args = ap.parse_args()
    res = compare(args.config, ["trainer.device=cpu", *args.sets], args.rounds)
    show(res, f"{args.config} {' '.join(args.sets)}: medians of {args.rounds} interleaved rounds (A B A B)")
    if torch.cuda.is_available():
        sets = [*GPU_30M, f"trainer.max_steps={args.gpu_steps}", f"trainer.eval_interval={args.gpu_steps}",
                "trainer.eval_windows=64", *args.sets]
        gpu = compare(args.config, sets, args.rounds)
        show(gpu, "GPU ~30M model, bfloat16, torch.compile")
        cfg = load_train_config(args.config, sets)
        from synthdspy.training.device import mfu
        from synthdspy.training.model import GPT

        flops = GPT(cfg.model.model_copy(update={"vocab_size": 65})).flops_per_token()
        for name in ("synthdspy", "nanoGPT"):
            print(f"MFU {name}: {mfu(flops, gpu[name]['loop_tokens_per_s'], cfg.trainer.peak_flops):.1%}")
    else:
        print("no CUDA device: the ~30M-parameter bf16 figure (tokens/s, MFU) needs a GPU")


if __name__ == "__main__":
    main()
