"""The training configuration schema (one TOML file per proxy training; see ``experiments/train_*.toml``).

Load with :func:`load_train_config` (``--set key.path=value`` overrides, errors naming file and
key). Sections: ``[tokenizer]``, ``[model]``, ``[optim]``, ``[trainer]``, ``[[sources]]``,
``[curriculum]`` (optional), ``[validation]``, ``[output]``, ``[tracking]`` (the last two as in
experiment and tune files, see :mod:`synthdspy.config_tables`). Relative paths are resolved against
the current working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from synthdspy.config_tables import OutputConfig, TrackingConfig, default_output, migrate_output_dir
from synthdspy.configio import load_model
from synthdspy.training.curriculum import CurriculumSpec
from synthdspy.training.documents import SourceSpec
from synthdspy.training.model import GPTConfig
from synthdspy.training.splits import ValidationSpec
from synthdspy.training.tokenizer import TokenizerSpec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OptimSpec(_Strict):
    """``[optim]``: AdamW with linear warmup and cosine decay to ``min_lr`` over ``lr_decay_steps``.

    ``lr_decay_steps`` defaults to the run's total steps (nanoGPT's ``lr_decay_iters = max_iters``).
    """

    learning_rate: float = Field(1e-3, gt=0)
    min_lr: float = Field(1e-4, ge=0)
    warmup_steps: int = Field(100, ge=0)
    lr_decay_steps: int | None = Field(None, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    beta1: float = Field(0.9, gt=0, lt=1)
    beta2: float = Field(0.99, gt=0, lt=1)
    grad_clip: float = Field(1.0, ge=0)


class TrainerSpec(_Strict):
    """``[trainer]``: batch, budget, evaluation, checkpoints, device.

    Exactly one of ``token_budget`` (stop after B tokens; steps = ceil(B / tokens per step)) and
    ``max_steps``. Tokens per step = ``batch_size * grad_accum_steps * block_size``.
    ``eval_windows`` windows of ``block_size`` tokens per validation split (nanoGPT: eval_iters x
    batch_size). ``checkpoint_interval`` N checkpoints every N steps; 0 (default) at every evaluation. A
    checkpoint is also written at the end and when a callback stops training.
    ``device``: ``auto`` (CUDA when present), ``cpu`` or ``cuda``; ``compile`` and ``dtype``
    ``auto`` mean torch.compile + bfloat16 autocast on CUDA, eager float32 on CPU. ``threads``
    sets CPU threads (default: all cores). ``peak_flops`` is the accelerator's dense bf16 peak
    for MFU (989e12: H100/H200 SXM).
    """

    batch_size: int = Field(12, ge=1)
    grad_accum_steps: int = Field(1, ge=1)
    token_budget: int | None = Field(None, gt=0)
    max_steps: int | None = Field(None, gt=0)
    eval_interval: int = Field(250, ge=1)
    eval_windows: int = Field(240, ge=1)
    eval_batch_size: int = Field(64, ge=1)
    log_interval: int = Field(50, ge=1)
    checkpoint_interval: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compile: Literal["auto", "on", "off"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    threads: int | None = Field(None, ge=1)
    peak_flops: float = Field(989e12, gt=0)

    @model_validator(mode="after")
    def _one_budget(self) -> TrainerSpec:
        if (self.token_budget is None) == (self.max_steps is None):
            raise ValueError("set exactly one of trainer.token_budget and trainer.max_steps")
        return self


class TrackingSpec(TrackingConfig):
    """``[tracking]`` of a training (default MLflow experiment ``synthdspy-train``)."""

    experiment: str = "synthdspy-train"


class TrainConfig(_Strict):
    """A whole proxy training: data, tokenizer, model, optimizer, schedule, validation, tracking.

    ``[output] dir`` (default ``runs/<name>``) holds the checkpoint, the curves and MLflow.
    ``mixture`` maps source names to mixture weights and overrides their ``weight`` (so that
    ``--set mixture.gsm8k=3`` and tuning can change them); weights are normalised over sources.
    """

    name: str = Field("train", min_length=1)
    seed: int = 1337
    output: OutputConfig = Field(default_factory=OutputConfig)
    tokenizer: TokenizerSpec = Field(default_factory=TokenizerSpec)
    model: GPTConfig = Field(default_factory=GPTConfig)
    optim: OptimSpec = Field(default_factory=OptimSpec)
    trainer: TrainerSpec = Field(default_factory=lambda: TrainerSpec(max_steps=1000))
    sources: list[SourceSpec] = Field(min_length=1)
    mixture: dict[str, float] = Field(default_factory=dict)
    curriculum: CurriculumSpec | None = None
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)

    @model_validator(mode="before")
    @classmethod
    def _legacy_output_dir(cls, data: Any) -> Any:
        """A dict built in Python with the deprecated ``output_dir`` (files are migrated, with their
        name and line, by the loader before this)."""
        return migrate_output_dir(data, "TrainConfig")

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"sources: duplicate names {dupes}")
        unknown = sorted(set(self.mixture) - set(names))
        if unknown:
            raise ValueError(f"mixture: {unknown} name no source (have {names})")
        if any(w < 0 for w in self.mixture.values()):
            raise ValueError("mixture: weights must be >= 0")
        if not any(w > 0 for w in self.source_weights.values()):
            raise ValueError("mixture: every source weight is zero; give at least one source a positive weight")
        if self.optim.min_lr > self.optim.learning_rate:
            raise ValueError("optim.min_lr must not exceed optim.learning_rate")
        self.output = default_output(self.output, self.name)
        return self

    @property
    def out_dir(self) -> Path:
        """The output directory (``[output] dir``, default ``runs/<name>``)."""
        return Path(self.output.dir or Path("runs") / self.name)

    @property
    def source_weights(self) -> dict[str, float]:
        """Mixture weight per source name (``mixture`` over ``sources[].weight``), not normalised."""
        return {s.name: self.mixture.get(s.name, s.weight) for s in self.sources}

    @property
    def tokens_per_step(self) -> int:
        """Tokens in one optimizer step."""
        return self.trainer.batch_size * self.trainer.grad_accum_steps * self.model.block_size

    @property
    def total_steps(self) -> int:
        """Optimizer steps: ``max_steps``, or the token budget divided by tokens per step (rounded up)."""
        if self.trainer.max_steps is not None:
            return self.trainer.max_steps
        return -(-self.trainer.token_budget // self.tokens_per_step)


def load_train_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a training TOML file with ``--set`` overrides.

    A legacy top-level ``output_dir`` is read as ``[output] dir`` with a
    :class:`~synthdspy.config_tables.ConfigDeprecationWarning`.

    Raises:
        synthdspy.configio.ConfigError: missing file, bad TOML, or invalid keys (file and key named).
    """
    return load_model(TrainConfig, path, overrides, migrate=migrate_output_dir)
