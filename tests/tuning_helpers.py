"""A tiny tuning experiment for tests: three small real sources, a 1-layer GPT, 16 steps per trial."""

from __future__ import annotations

from pathlib import Path

from synthdspy.tuning.config import TuneConfig, load_tune_config

TINY = """
name = "tiny"
seed = 0

[study]
sampler = "tpe"
n_trials = 3
n_startup_trials = 2

[search]
groups = { wikitext = "real", gsm8k = "real", shakespeare = "synthetic" }
schedules = ["base", "strict", "gradual", "linear"]

[objective]
target = { "val/gsm8k" = 1.0, "val/wikitext" = 1.0 }

[baselines]
random_trials = 0
uniform = false
natural = false

[tracking]
enabled = false

[train]
name = "tiny"
seed = 7
[train.tokenizer]
kind = "byte"
[train.model]
n_layer = 1
n_head = 2
n_embd = 32
block_size = 32
[train.optim]
warmup_steps = 2
[train.trainer]
batch_size = 8
token_budget = 4096
eval_interval = 4
eval_windows = 8
eval_batch_size = 8
threads = 1
[[train.sources]]
name = "wikitext"
path = "../shared/data/wikitext2/valid.txt"
min_chars = 40
limit = 150
[[train.sources]]
name = "gsm8k"
path = "../shared/data/gsm8k/train.jsonl"
format = "jsonl"
template = "{question}\\n{answer}"
limit = 150
[[train.sources]]
name = "shakespeare"
path = "../shared/data/tinyshakespeare/input.txt"
limit = 200
[train.curriculum]
stages = ["easy", "hard"]
[train.curriculum.schedule]
kind = "gradual"
starts = [0.0, 0.4]
[train.validation]
fraction = 0.1
"""


def tiny_path(tmp_path: Path) -> Path:
    """Write the tiny experiment to ``tmp_path/tiny.toml`` (output in ``tmp_path/out``)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "tiny.toml"
    path.write_text(f'{TINY}\n[output]\ndir = "{tmp_path / "out"}"\n')
    return path


def tiny(tmp_path: Path, *overrides: str) -> TuneConfig:
    """The tiny experiment with ``--set`` overrides."""
    return load_tune_config(tiny_path(tmp_path), list(overrides))
