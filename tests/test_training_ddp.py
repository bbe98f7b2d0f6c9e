"""Data-parallel proxy training: two CPU processes under torchrun (gloo) against one process.

This file is also the worker script that ``torchrun`` starts (see :func:`_worker`): each rank trains,
counts the training rows it forwarded and the files it wrote under the output directory (through an
audit hook, which sees every ``open`` for writing, ``mkdir`` and rename), and reports them as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from synthdspy.configio import ConfigError
from synthdspy.training import StopTraining, TrainConfig, train

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
STEPS, STOP_AT = 24, 16
# Float reduction order: DDP averages two half-batch gradients where one process averages one
# batch, and the evaluation sums are added per rank, so the updates agree up to rounding. Observed
# relative gaps: at most 4e-8 over this run; a rank that skips the gradient all-reduce is off by 5e-3
# at step 8. Rounding gaps can grow in an unstable stretch of training (a 1- vs 2-thread single
# process drifts by 1e-3 after 40 steps at batch 8 x 3), so the run stays short and smooth.
REL = 1e-4


def tiny(out: Path) -> TrainConfig:
    """Two sources, a strict three-stage curriculum (transitions are evaluated) and a global batch of
    16 rows as 4 micro-batches of 4 (two per rank under DDP, so ``no_sync`` is exercised)."""
    return TrainConfig.model_validate({
        "name": "tiny-ddp",
        "output": {"dir": str(out)},
        "tokenizer": {"kind": "byte"},
        "model": {"n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 64},
        "optim": {"learning_rate": 3e-3, "min_lr": 3e-4, "warmup_steps": 5},
        "trainer": {"max_steps": STEPS, "batch_size": 4, "grad_accum_steps": 4, "eval_interval": 8,
                    "eval_windows": 32, "eval_batch_size": 8, "log_interval": 8, "threads": 1},
        "sources": [
            {"name": "shakespeare", "path": str(DATA / "tinyshakespeare/input.txt"), "split": "blank_lines",
             "limit": 1500},
            {"name": "gsm8k", "path": str(DATA / "gsm8k/train.jsonl"), "format": "jsonl",
             "template": "{question}\n{answer}", "limit": 1500},
        ],
        "curriculum": {"schedule": {"kind": "strict", "fractions": [0.4, 0.3, 0.3]}},
        "validation": {"fraction": 0.05},
        "tracking": {"enabled": False},
    })


def _count_training_rows(patch=setattr) -> list[int]:
    """Patch ``GPT.forward`` (with ``patch(obj, name, value)``) to add the rows of every training-mode
    forward to the returned counter."""
    from synthdspy.training.model import GPT

    rows, forward = [0], GPT.forward

    def counting(self, idx, targets=None):
        if self.training:
            rows[0] += idx.shape[0]
        return forward(self, idx, targets)

    patch(GPT, "forward", counting)
    return rows


def _worker(out: str, report: str, stop_at: int, resume: bool) -> None:
    """One torchrun rank: train ``tiny(out)`` (stopping at ``stop_at`` when > 0) and report as JSON."""
    rank, root = os.environ["RANK"], os.path.realpath(out)
    writes: list[str] = []

    def audit(event: str, args: tuple) -> None:
        write_open = event == "open" and isinstance(args[0], str) and args[2] & (os.O_WRONLY | os.O_RDWR)
        if write_open or event in ("os.mkdir", "os.rename", "os.remove"):
            for arg in args[:2] if event == "os.rename" else args[:1]:
                path = os.path.realpath(os.fsdecode(arg))
                if path == root or path.startswith(root + os.sep):
                    writes.append(os.path.relpath(path, root))

    sys.addaudithook(audit)
    rows, seen = _count_training_rows(), []

    def on_eval(event) -> None:
        seen.append(event.step)
        if event.step == stop_at:
            raise StopTraining

    result = train(tiny(Path(out)), on_eval=on_eval, resume=resume)
    Path(report, f"rank{rank}.json").write_text(json.dumps(
        {"writes": writes, "rows": rows[0], "seen": seen, "result": asdict(result)}))


def _torchrun(tmp_path: Path, name: str, stop_at: int, resume: bool) -> list[dict]:
    """Both ranks' reports of one ``torchrun --standalone --nproc_per_node=2`` run of :func:`_worker`."""
    report = tmp_path / name
    report.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__,
           str(tmp_path / "ddp"), str(report), str(stop_at), str(int(resume))]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [json.loads((report / f"rank{r}.json").read_text()) for r in (0, 1)]


def _curve(result: dict) -> list[tuple[int, str, dict[str, float]]]:
    return [(e["step"], e["reason"], {k: v["nats_per_token"] for k, v in e["losses"].items()})
            for e in result["curves"]]


@pytest.mark.usefixtures("needs_shared_data")
def test_two_gloo_processes_train_as_one_process_at_the_same_global_batch(tmp_path, monkeypatch):
    """One process runs 24 steps; two torchrun ranks run the same config, stopped by rank 0's
    callback at step 16 and resumed to the end. Both ranks stop together, each forwards half of
    every global batch, only rank 0 calls back and writes, and the validation losses at every
    evaluation (intervals, curriculum transitions, final) match the single process's."""
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    rows = _count_training_rows(monkeypatch.setattr)
    single = asdict(train(tiny(tmp_path / "single")))
    assert rows[0] == STEPS * 16

    first = _torchrun(tmp_path, "first", STOP_AT, resume=False)
    for rank in first:
        assert rank["result"]["stopped"] and rank["result"]["steps"] == STOP_AT
        assert rank["rows"] == STOP_AT * 16 // 2  # half of each step's 16 rows
    assert first[0]["seen"] == [0, 8, 10, 16] and first[1]["seen"] == []
    assert sorted(set(first[0]["writes"])) == [".", "checkpoint.pt", "checkpoint.tmp", "result.json", "tokenizer.json"]
    assert first[1]["writes"] == []

    second = _torchrun(tmp_path, "second", 0, resume=True)
    assert [r["rows"] for r in second] == [(STEPS - STOP_AT) * 16 // 2] * 2
    assert second[0]["result"]["device"].endswith("x 2 processes") and second[1]["writes"] == []
    want = _curve(single)
    assert [(s, why) for s, why, _ in want] == [(0, "interval"), (8, "interval"), (10, "transition"),
                                               (16, "interval"), (17, "transition"), (24, "final")]
    for got in (_curve(second[0]["result"]), _curve(second[1]["result"])):
        assert [(s, why) for s, why, _ in got] == [(s, why) for s, why, _ in want]
        for (step, _, losses), (_, _, ref) in zip(got, want, strict=True):
            for split, value in ref.items():
                assert losses[split] == pytest.approx(value, rel=REL), (step, split)
    assert second[0]["result"]["group_rows"] == single["group_rows"]
    saved = json.loads((tmp_path / "ddp" / "result.json").read_text())
    assert saved["steps"] == STEPS and _curve(saved) == _curve(second[0]["result"])


def test_a_global_batch_that_does_not_divide_across_processes_is_refused(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from synthdspy.cli import app

    env = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "3", "LOCAL_WORLD_SIZE": "3"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    cfg = tiny(tmp_path / "out")
    msg = (r"trainer: the global batch of 16 rows \(batch_size 4 x grad_accum_steps 4\) does not divide "
           r"across WORLD_SIZE=3 processes; make it a multiple of 3$")
    with pytest.raises(ConfigError, match=msg) as refused:
        train(cfg)
    assert "\n" not in str(refused.value)
    assert not cfg.out_dir.exists()  # refused before any data, output or process group
    toml = tmp_path / "train.toml"
    toml.write_text('[[sources]]\nname = "a"\npath = "x"\n[trainer]\nbatch_size = 5\nmax_steps = 2\n')
    res = CliRunner().invoke(app, ["train", str(toml)], env=env)
    shown = " ".join(res.output.split())  # rich wraps the one-line message at the terminal width
    assert res.exit_code == 2 and "error: trainer: the global batch of 5 rows" in shown, res.output
    monkeypatch.setenv("RANK", "3")
    with pytest.raises(ConfigError, match="RANK=3, LOCAL_RANK=0, LOCAL_WORLD_SIZE=3 do not fit WORLD_SIZE=3"):
        train(cfg)


if __name__ == "__main__":  # a torchrun rank: OUT REPORT STOP_AT RESUME
    _worker(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1")
