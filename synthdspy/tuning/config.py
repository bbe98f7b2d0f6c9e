"""The tuning experiment schema: one TOML file with the study, the search space, the objective,
the baselines and the proxy training (``[train]``, a whole :class:`TrainConfig`).

See ``experiments/mixture_tuning.toml``. Load with :func:`load_tune_config` (``--set`` overrides,
errors naming file and key). Relative paths are resolved against the current working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from synthdspy.config_tables import OutputConfig, TrackingConfig, default_output, migrate_output_dir
from synthdspy.configio import load_model
from synthdspy.training.config import TrainConfig

SCHEDULE_FAMILIES = ("base", "none", "strict", "gradual", "linear", "root", "fixed_exponential")
"""``base``: the ``[train.curriculum.schedule]`` as written; ``none``: no pacing (every stage in its
natural proportion); the others: the curriculum schedule kinds of :mod:`synthdspy.training.curriculum`."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Range(_Strict):
    """A closed interval ``[low, high]`` searched uniformly (``log = true``: log-uniformly)."""

    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _order(self) -> Range:
        if self.high < self.low:
            raise ValueError(f"range high {self.high} is below low {self.low}")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


class StudySpec(_Strict):
    """``[study]``: sampler, pruner, trial budget and storage.

    ``sampler``: ``tpe`` (default; multivariate, grouped for the conditional schedule space),
    ``random``, ``cmaes`` (needs the ``cmaes`` package; CMA-ES samples a fixed continuous space, so
    it tunes the mixture weights and Optuna samples the conditional schedule parameters at random)
    or ``gp`` (Optuna's Gaussian-process Bayesian optimisation). ``pruner``: ``median``,
    ``hyperband`` or ``none``; by default median for one objective and none for two (Optuna
    cannot prune multi-objective trials).
    ``prune_warmup``: fraction of the steps before the median pruner may stop a trial.
    ``storage``: empty for ``sqlite:///OUTPUT/optuna.db``; any Optuna RDB URL
    (``postgresql://...``, ``mysql://...``, ``sqlite:///...``); or ``journal:PATH`` for an Optuna
    journal file.
    ``heartbeat_s`` / ``grace_s``: on an RDB storage, a running trial records a heartbeat every
    ``heartbeat_s`` seconds; one silent for ``grace_s`` (default twice the interval) belongs to a
    dead worker, and a live worker fails it and runs it again (Optuna's heartbeat and
    ``RetryHeartbeatStaleTrialCallback``, at most ``max_retries`` times per trial).
    """

    sampler: Literal["tpe", "random", "cmaes", "gp"] = "tpe"
    pruner: Literal["median", "hyperband", "none"] | None = None
    n_trials: int = Field(20, ge=1)
    n_startup_trials: int = Field(8, ge=0)
    prune_warmup: float = Field(0.25, ge=0, lt=1)
    storage: str = ""
    heartbeat_s: int = Field(30, ge=1)
    grace_s: int | None = Field(None, ge=1)
    max_retries: int = Field(3, ge=0)

    @model_validator(mode="after")
    def _grace_after_heartbeat(self) -> StudySpec:
        if self.grace_s is not None and self.grace_s <= self.heartbeat_s:
            raise ValueError(f"grace_s ({self.grace_s}) must be longer than heartbeat_s ({self.heartbeat_s})")
        return self


class SearchSpec(_Strict):
    """``[search]``: what a trial chooses.

    ``groups``: mixture group -> ``"real"`` or ``"synthetic"``. A group is a ``[[train.sources]]``
    name, or ``source/value`` for one ``group_by`` value of a source; every source must be covered
    (wholly or by its groups); groups of a split source that are not listed get weight 0.
    ``synthetic_share``: when set, the synthetic groups' total weight is searched over this range
    and the real and the synthetic groups get separate simplices (needs both kinds); when unset, one
    simplex spans every group. ``schedules``: the curriculum families searched (see
    :data:`SCHEDULE_FAMILIES`); empty keeps the training config's curriculum. The ranges bound each
    family's knobs (fractions of training unless stated).
    """

    groups: dict[str, Literal["real", "synthetic"]] = Field(min_length=2)
    synthetic_share: Range | None = None
    schedules: list[Literal[SCHEDULE_FAMILIES]] = Field(default_factory=list)  # type: ignore[valid-type]
    ramp: Range = Field(default_factory=lambda: Range(low=0.05, high=0.5))
    keep: Range = Field(default_factory=lambda: Range(low=0.0, high=0.5))
    c0: Range = Field(default_factory=lambda: Range(low=0.02, high=0.5))
    duration: Range = Field(default_factory=lambda: Range(low=0.1, high=1.0))
    p: Range = Field(default_factory=lambda: Range(low=1.0, high=4.0))
    start: Range = Field(default_factory=lambda: Range(low=0.05, high=0.5))
    inc: Range = Field(default_factory=lambda: Range(low=1.1, high=3.0))
    step_length: Range = Field(default_factory=lambda: Range(low=0.02, high=0.3))

    @model_validator(mode="after")
    def _check(self) -> SearchSpec:
        if len(set(self.schedules)) != len(self.schedules):
            raise ValueError(f"schedules: duplicates in {self.schedules}")
        kinds = set(self.groups.values())
        if self.synthetic_share is not None:
            if kinds != {"real", "synthetic"}:
                raise ValueError("synthetic_share needs at least one real and one synthetic group")
            if not 0 <= self.synthetic_share.low <= self.synthetic_share.high <= 1:
                raise ValueError("synthetic_share must lie within [0, 1]")
        if not 0 <= self.keep.low <= self.keep.high < 1:
            raise ValueError("keep must lie within [0, 1)")
        return self


class ObjectiveSpec(_Strict):
    """``[objective]``: the validation loss a trial is judged by, after the fixed token budget.

    ``target``: split-name pattern (``fnmatch``: ``val/*``, ``heldout/*``, ``ood/*``) -> weight;
    each split takes the weight of the first pattern it matches and the target is the weighted mean
    of their final ``metric``. ``multi = true`` adds a second objective, the worst (largest) loss
    over splits matching ``worst_over``, and the study returns a Pareto front.
    """

    target: dict[str, float] = Field(default_factory=lambda: {"val/*": 1.0}, min_length=1)
    metric: Literal["bits_per_byte", "nats_per_token"] = "bits_per_byte"
    multi: bool = False
    worst_over: list[str] = Field(default_factory=lambda: ["val/*"], min_length=1)

    @model_validator(mode="after")
    def _check(self) -> ObjectiveSpec:
        if any(w < 0 for w in self.target.values()) or sum(self.target.values()) <= 0:
            raise ValueError("target weights must be >= 0 with a positive sum")
        return self


class BaselineSpec(_Strict):
    """``[baselines]``: fixed mixtures and a random search, each trained with the trials' budget.

    ``uniform``: equal weight per group; ``natural``: weights in proportion to each group's training
    tokens. Both keep the training config's curriculum. ``random_trials``: trials of a separate
    random-search study over the same space (default: ``study.n_trials``, the same budget; 0: none).
    """

    uniform: bool = True
    natural: bool = True
    random_trials: int | None = Field(None, ge=0)


class TuneTrackingSpec(TrackingConfig):
    """``[tracking]``: MLflow for the study (default: SQLite in the output directory, experiment
    ``synthdspy-tune``)."""

    experiment: str = "synthdspy-tune"


class TuneConfig(_Strict):
    """A tuning experiment. ``[output] dir`` (default ``runs/<name>``) holds storage, trials,
    MLflow and the report; ``[output]`` and ``[tracking]`` read as in experiment and train files.
    ``seed`` seeds the samplers (worker k adds k). ``[tracking]``: one MLflow
    parent run per study with a nested run per trial (``[train.tracking]`` is not used)."""

    name: str = Field("tune", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = 0
    output: OutputConfig = Field(default_factory=OutputConfig)
    study: StudySpec = Field(default_factory=StudySpec)
    search: SearchSpec
    objective: ObjectiveSpec = Field(default_factory=ObjectiveSpec)
    baselines: BaselineSpec = Field(default_factory=BaselineSpec)
    tracking: TuneTrackingSpec = Field(default_factory=TuneTrackingSpec)
    train: TrainConfig

    @model_validator(mode="before")
    @classmethod
    def _legacy_output_dir(cls, data: Any) -> Any:
        """A dict built in Python with the deprecated ``output_dir`` (files are migrated, with their
        name and line, by the loader before this)."""
        return migrate_output_dir(data, "TuneConfig")

    @model_validator(mode="after")
    def _check(self) -> TuneConfig:
        sources = {s.name: s for s in self.train.sources}
        whole, split = set(), set()
        for group in self.search.groups:
            src, _, value = group.partition("/")
            if src not in sources:
                raise ValueError(f"search.groups.{group}: no [[train.sources]] named {src!r}")
            if value and sources[src].group_by is None:
                raise ValueError(f"search.groups.{group}: source {src!r} has no group_by")
            (split if value else whole).add(src)
        both = sorted(whole & split)
        if both:
            raise ValueError(f"search.groups: {both} listed both whole and by group")
        missing = sorted(set(sources) - whole - split)
        if missing:
            raise ValueError(f"search.groups: sources {missing} are in no group")
        if self.search.schedules and self.train.curriculum is None:
            raise ValueError("search.schedules needs a [train.curriculum] (stages and difficulty)")
        if "base" in self.search.schedules and self.train.curriculum.schedule is None:
            raise ValueError("search.schedules: 'base' needs [train.curriculum.schedule]")
        if self.study.pruner not in (None, "none") and self.objective.multi:
            raise ValueError("study.pruner: Optuna cannot prune multi-objective studies; use 'none'")
        if self.study.sampler == "cmaes" and self.objective.multi:
            raise ValueError("study.sampler: cmaes is single-objective; use tpe, random or gp")
        if self.train.trainer.token_budget is None:
            raise ValueError("train.trainer.token_budget: tuning compares trials at a fixed token budget")
        self.output = default_output(self.output, self.name)
        return self

    @property
    def out_dir(self) -> Path:
        """The output directory (``[output] dir``, default ``runs/<name>``)."""
        return Path(self.output.dir or Path("runs") / self.name)

    @property
    def pruner(self) -> str:
        """The pruner in use (resolves the default)."""
        if self.study.pruner is not None:
            return self.study.pruner
        return "none" if self.objective.multi else "median"

    @property
    def random_trials(self) -> int:
        """Trials of the random-search baseline."""
        r = self.baselines.random_trials
        return self.study.n_trials if r is None else r


def load_tune_config(path: str | Path, overrides: list[str] | None = None) -> TuneConfig:
    """Read a tuning TOML file with ``--set`` overrides (``--set study.n_trials=4``).

    Legacy ``output_dir`` keys (top level or in ``[train]``) are read as ``[output] dir`` with a
    :class:`~synthdspy.config_tables.ConfigDeprecationWarning`.

    Raises:
        synthdspy.configio.ConfigError: missing file, bad TOML, or invalid keys (file and key named).
    """
    return load_model(TuneConfig, path, overrides, migrate=_migrate)


def _migrate(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Legacy ``output_dir`` keys of a tuning file (top level and ``[train]``) moved to ``[output] dir``."""
    migrate_output_dir(data, source)
    if isinstance(data.get("train"), dict):
        migrate_output_dir(data["train"], source, "train")
    return data
