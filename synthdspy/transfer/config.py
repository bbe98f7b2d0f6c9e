"""The transfer experiment schema: which study, which of its mixtures, and the target scale.

One TOML file (see ``experiments/mixture_transfer.toml``), loaded with ``--set`` overrides and
errors naming file and key like every other synthdspy configuration::

    name = "mixture_transfer"
    study = "experiments/mixture_transfer_proxy.toml"   # the tuning experiment that made the study

    [pick]
    top_k = 4                       # the tuner's best trials, by proxy target
    baselines = ["uniform", "natural"]
    random = 3                      # drawn from the random-search study's complete trials

    [target]                        # merged into the study's [train]: the target scale
    model = { n_layer = 5, n_head = 4, n_embd = 128 }
    trainer = { token_budget = 1_638_400 }

    [stats]
    bootstrap = 2000
    confidence = 0.95

Relative paths are resolved against the current working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from synthdspy.config_tables import OutputConfig, TrackingConfig, default_output, migrate_output_dir
from synthdspy.configio import ConfigError, format_validation_error, load_model
from synthdspy.training.config import TrainConfig
from synthdspy.tuning.config import TuneConfig, load_tune_config


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PickSpec(_Strict):
    """``[pick]``: the study's mixtures that are retrained.

    ``top_k``: the tuner's ``k`` complete trials with the lowest proxy target (the first is the
    proxy's pick). ``baselines``: fixed baselines of the study by name. ``random``: complete trials
    of the study's random search, drawn with ``seed`` (they spread the ranking beyond the best).
    """

    top_k: int = Field(4, ge=1)
    baselines: list[str] = Field(default_factory=lambda: ["uniform", "natural"])
    random: int = Field(3, ge=0)


class StatsSpec(_Strict):
    """``[stats]``: ``bootstrap`` resamples for the rank correlation's interval at ``confidence``."""

    bootstrap: int = Field(2000, ge=100)
    confidence: float = Field(0.95, gt=0, lt=1)


class TransferTrackingSpec(TrackingConfig):
    """``[tracking]``: MLflow (default: SQLite in the transfer's output directory)."""

    experiment: str = "synthdspy-transfer"


class TransferConfig(_Strict):
    """A transfer experiment.

    ``study``: the tuning experiment file whose study is read (its ``output_dir`` is replaced by
    the command's STUDY_OUTPUT_DIR). ``target``: tables merged key by key into the study's
    ``[train]`` (``model``, ``trainer``, ``optim`` ...) to give the target scale; the target must
    have at least ``min_param_ratio`` times the proxy's parameters and ``min_token_ratio`` times
    its training tokens (RegMix, section 4: proxies of 1M parameters rank mixtures for 1B models).
    ``[output] dir`` (default ``runs/<name>``) holds the retrainings, MLflow and the report.
    """

    name: str = Field("transfer", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    study: str = Field(min_length=1)
    seed: int = 0
    output: OutputConfig = Field(default_factory=OutputConfig)
    pick: PickSpec = Field(default_factory=PickSpec)
    target: dict[str, Any] = Field(default_factory=dict)
    min_param_ratio: float = Field(8.0, ge=1)
    min_token_ratio: float = Field(4.0, ge=1)
    stats: StatsSpec = Field(default_factory=StatsSpec)
    tracking: TransferTrackingSpec = Field(default_factory=TransferTrackingSpec)

    @model_validator(mode="after")
    def _output(self) -> TransferConfig:
        self.output = default_output(self.output, self.name)
        return self

    @property
    def out_dir(self) -> Path:
        """The output directory (``[output] dir``, default ``runs/<name>``)."""
        return Path(self.output.dir or Path("runs") / self.name)


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``update`` merged in: nested tables key by key, anything else replaced."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def target_train(config: TransferConfig, proxy: TrainConfig, source: str) -> TrainConfig:
    """The proxy's training config with ``config.target`` merged in.

    Raises:
        ConfigError: a merged key the training schema rejects (named as ``target.<key>``).
    """
    if "sources" in config.target:
        raise ConfigError(f"{source}: target.sources: the target trains on the study's sources; "
                          "change the scale (model, trainer, optim), not the data")
    data = merge(proxy.model_dump(mode="json"), config.target)
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc, prefix="target")) from None


def load_transfer_config(path: str | Path, overrides: list[str] | None = None) -> TransferConfig:
    """Read a transfer TOML file with ``--set`` overrides.

    Raises:
        ConfigError: missing file, bad TOML, or invalid keys (file and key named).
    """
    return load_model(TransferConfig, path, overrides, migrate=migrate_output_dir)


def load_study_config(config: TransferConfig, study_dir: str | Path) -> TuneConfig:
    """The tuning experiment ``config.study`` with its output directory set to ``study_dir``.

    Raises:
        ConfigError: an unreadable experiment, or ``study_dir`` that is not a directory.
    """
    if not Path(study_dir).is_dir():
        raise ConfigError(f"{study_dir}: no such study output directory (run `synthdspy tune {config.study}` first)")
    tune = load_tune_config(config.study)
    return tune.model_copy(update={"output": tune.output.model_copy(update={"dir": Path(study_dir)})})
