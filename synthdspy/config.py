"""The experiment schema: one TOML file describes LMs, seeds, task, gates, objective, compile, tracking.

Example (see ``experiments/*.toml`` for complete files)::

    [lm.generator]
    model = "openai/gpt-4o-mini"      # any LiteLLM model string; "sim/..." = offline simulator
    api_key_env = "OPENAI_API_KEY"    # the key is read from this variable, never from the file

    [seeds]
    source = "builtin:topics"         # or a JSONL/CSV/Parquet path, or hf://owner/name:config
    train_size = 8
    dev_size = 4

    [task]
    name = "textbook"                 # every other key is a task parameter

    [[gates]]
    name = "reward"
    threshold = 6

Task and gate parameters are validated against the parameter model each one registers, so an
unknown or mistyped parameter fails with the file and key named.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from synthdspy.config_tables import OutputConfig, TrackingConfig, default_output
from synthdspy.configio import ConfigError, load_model
from synthdspy.metrics.diversity.agent_config import ClusterAgentConfig


class Strict(BaseModel):
    """Base for config tables: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class SimulatorOptions(Strict):
    """Fault injection for the offline simulator (ignored for real models)."""

    seed: int = 0
    latency_s: float = Field(0.0, ge=0)
    error_rate: float = Field(0.0, ge=0, le=1)
    rate_limit_rate: float = Field(0.0, ge=0, le=1)
    malformed_rate: float = Field(0.0, ge=0, le=1)


class PriceConfig(Strict):
    """A model's price in USD per million tokens, overriding LiteLLM's cost map."""

    input_per_mtok: float = Field(..., ge=0)
    output_per_mtok: float = Field(..., ge=0)


# Parameters that must not go through ``extra``: they have their own keys (or are the key).
RESERVED_EXTRA = {"model", "messages", "api_key", "api_base", "base_url", "timeout", "temperature", "max_tokens",
                  "num_retries", "cache", "n", "stream"}
# Providers whose documented temperature range is [0, 1] (Anthropic's Messages API).
TEMPERATURE_MAX_1 = ("anthropic/", "claude")


class LMRole(Strict):
    """One LM role. ``model`` is a LiteLLM string (``openai/...``, ``anthropic/...``,
    ``hosted_vllm/...``, ``ollama_chat/...``) or ``sim/<name>`` for the offline simulator.

    ``timeout_s``: seconds one HTTP request may take before it is abandoned and retried.
    ``rpm`` / ``tpm``: your account's requests / tokens per minute, if you know them (learned from
    the provider's rate-limit headers otherwise). ``price``: USD per million input/output tokens
    (for models LiteLLM cannot price: local servers, new models). ``extra``: provider parameters
    passed through (``top_p``, ``stop``, ``seed``, ``reasoning_effort``, ``extra_body``,
    ``extra_headers`` ...). ``adapter``: ``chat`` (DSPy's ChatAdapter) or ``json`` (JSONAdapter,
    native JSON-schema structured outputs where the provider supports them). ``model_type``:
    ``chat`` (chat completions) or ``text`` (a base model on a text-completion endpoint, prompted
    behind an in-context alignment prefix: ``prefix = "urial"`` (the default) or ``"none"``, or
    your own ``prefix_file``; see :mod:`synthdspy.base_prefix`).
    """

    model: str = "sim/default"
    api_base: str | None = None
    api_key_env: str | None = None
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(2048, gt=0)
    concurrency: int = Field(8, ge=1, le=4096)
    num_retries: int = Field(3, ge=0, le=20)
    timeout_s: float = Field(120.0, gt=0, le=3600)
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)
    price: PriceConfig | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    adapter: Literal["chat", "json"] = "chat"
    cache: bool = True
    simulator: SimulatorOptions = Field(default_factory=SimulatorOptions)
    model_type: Literal["chat", "text"] = "chat"
    prefix: Literal["urial", "none"] | None = None
    prefix_file: Path | None = None

    @field_validator("prefix_file")
    @classmethod
    def _readable_prefix(cls, path: Path | None) -> Path | None:
        from synthdspy.base_prefix import read_prefix_file

        if path is not None:
            read_prefix_file(path)
        return path

    @model_validator(mode="after")
    def _provider_rules(self) -> LMRole:
        reserved = sorted(RESERVED_EXTRA & set(self.extra))
        if reserved:
            raise ValueError(f"extra: {reserved} have their own keys (or cannot be set); remove them from extra")
        if self.model_type == "chat" and (self.prefix or self.prefix_file):
            raise ValueError('prefix / prefix_file: only for a text model; set model_type = "text" or remove them')
        if self.prefix and self.prefix_file:
            raise ValueError("prefix / prefix_file: set one of them, not both")
        if self.model.lower().startswith(TEMPERATURE_MAX_1) and self.temperature > 1.0:
            raise ValueError(f"temperature {self.temperature:g} is outside {self.model}'s range [0, 1]")
        return self

    @property
    def is_simulated(self) -> bool:
        """True when this role is answered by the offline simulator."""
        return self.model.startswith("sim/")

    @property
    def max_temperature(self) -> float:
        """The highest temperature the provider accepts (1.0 for Anthropic, else 2.0)."""
        return 1.0 if self.model.lower().startswith(TEMPERATURE_MAX_1) else 2.0


class LMConfig(Strict):
    """The three LM roles; the judge defaults to a low temperature, reflection is used by GEPA."""

    generator: LMRole = Field(default_factory=LMRole)
    judge: LMRole = Field(default_factory=lambda: LMRole(temperature=0.0))
    reflection: LMRole = Field(default_factory=lambda: LMRole(temperature=1.0))


class SeedsConfig(Strict):
    """Where seeds come from and how they are split.

    ``source``: ``builtin:topics`` (topic/persona/style draws), ``builtin:dimensions``,
    ``builtin:words``, a local ``.jsonl``/``.json``/``.csv``/``.parquet`` path, ``hf://owner/name:config``,
    or documents: a ``.pdf``/``.md``/``.html``/``.txt`` file, a directory of them or a glob, chunked
    (300 words unless ``chunk_words`` or ``chunk_tokens`` says) with each chunk's file, pages,
    heading and offsets in its records' ``metadata.document``.
    ``fields`` maps canonical input names to the file's columns (``{source = "text"}``; a document
    chunk has the one column ``text``, mapped to ``source`` by default).
    ``chunk_words``/``chunk_tokens``: chunk size in words or in ``cl100k_base`` tokens (at most one;
    0: documents get 300 words, other files are not chunked); ``chunk_overlap`` is in the same unit.
    ``pdf_password_env``: the environment variable holding encrypted PDFs' password.
    """

    source: str = "builtin:topics"
    fields: dict[str, str] = Field(default_factory=dict)
    train_size: int = Field(8, ge=1)
    dev_size: int = Field(4, ge=1)
    sampling_seed: int = 0
    chunk_words: int = Field(0, ge=0, description="split source documents into chunks of N words (0: no)")
    chunk_tokens: int = Field(0, ge=0, description="split source documents into chunks of N cl100k tokens (0: no)")
    chunk_overlap: int = Field(0, ge=0)
    pdf_password_env: str = Field("", description="environment variable holding the password of encrypted PDFs")
    num_personas: int = Field(3, ge=1)
    num_topics: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _overlap_below_chunk(self) -> SeedsConfig:
        if self.chunk_words and self.chunk_tokens:
            raise ValueError("set chunk_words or chunk_tokens, not both")
        size, key = (self.chunk_tokens, "chunk_tokens") if self.chunk_tokens else (self.chunk_words, "chunk_words")
        if size and self.chunk_overlap >= size:
            raise ValueError(f"chunk_overlap ({self.chunk_overlap}) must be smaller than {key} ({size})")
        return self


class TaskConfig(BaseModel):
    """``name`` selects a registered task; every other key is one of its parameters."""

    model_config = ConfigDict(extra="allow")
    name: str

    @property
    def params(self) -> dict[str, Any]:
        """The task parameters (every key but ``name``)."""
        return dict(self.model_extra or {})


class GateConfig(BaseModel):
    """``name`` selects a registered gate; every other key is one of its parameters."""

    model_config = ConfigDict(extra="allow")
    name: str

    @property
    def params(self) -> dict[str, Any]:
        """The gate parameters (every key but ``name``)."""
        return dict(self.model_extra or {})


class ClusterAgentObjective(Strict):
    """The cluster-agent as a compile objective (Chen et al. 2024, sec. 2.1).

    Criteria are generated once per compile from baseline records of the train seeds, with J
    samples per round over M rounds, keeping k metadata and k metrics (paper: J=5, M=100), and are
    then frozen; ``criteria`` reuses a saved criteria file instead. Each compile batch is one
    clustering round of K = all records of the batch (paper: K=10). The defaults of J, M, k and
    ``verify`` are :class:`ClusterAgentConfig`'s, the same as ``synthdspy diversity``'s.
    """

    criteria_samples: int = Field(ClusterAgentConfig().criteria_samples, ge=2, description="J")
    criteria_rounds: int = Field(ClusterAgentConfig().criteria_rounds, ge=1, description="M")
    n_criteria: int = Field(ClusterAgentConfig().n_criteria, ge=1, description="k")
    verify: bool = ClusterAgentConfig().verify
    criteria: Path | None = None


class ObjectiveConfig(Strict):
    """Weights of the compile objective (normalised by their sum).

    ``diversity_metrics`` mixes set-level diversity scorers by weight: ``lexical``, ``embedding``,
    ``cluster_agent`` (see :mod:`synthdspy.metrics.diversity.scorers`). ``diversity_field``:
    ``text`` (instruction and response, for tasks that generate both, like QA) or ``response``
    (for tasks whose instruction is a fixed template, like textbook lessons).
    """

    quality: float = Field(1.0, ge=0)
    pass_rate: float = Field(1.0, ge=0)
    diversity: float = Field(0.5, ge=0)
    diversity_metrics: dict[Literal["lexical", "embedding", "cluster_agent"], float] = Field(
        default_factory=lambda: {"lexical": 1.0}
    )
    cluster_agent: ClusterAgentObjective = Field(default_factory=ClusterAgentObjective)
    diversity_field: Literal["text", "response"] = Field(
        "text", description="what diversity reads: instruction + response, or the response alone"
    )

    @model_validator(mode="after")
    def _some_weight(self) -> ObjectiveConfig:
        if self.quality + self.pass_rate + self.diversity <= 0:
            raise ValueError("at least one objective weight must be positive")
        if self.diversity > 0 and sum(self.diversity_metrics.values()) <= 0:
            raise ValueError("diversity_metrics needs a positive weight when diversity > 0")
        return self


class BudgetConfig(Strict):
    """The optimization budget: any of metric calls, LM calls (all roles) or dollars; unset = unlimited.

    Each optimizer's own knobs are derived from ``metric_calls`` (GEPA's ``max_metric_calls``
    natively); every limit is also enforced as a hard stop during optimization (see
    :mod:`synthdspy.optimizers.budget`). Held-out evaluation is outside the budget.
    """

    metric_calls: int | None = Field(None, ge=1)
    lm_calls: int | None = Field(None, ge=1)
    usd: float | None = Field(None, gt=0)


class CompileConfig(Strict):
    """Optimizer choice and budget.

    ``optimizer``: ``mipro`` (MIPROv2), ``gepa`` (GEPA, reflection LM role), ``bootstrap_rs``
    (BootstrapFewShotWithRandomSearch) or ``simba`` (SIMBA).
    ``batch_size``: seeds per compile example (a set-level objective needs a set).
    ``variant``: the name of the compiled variant (default: ``<experiment>-<optimizer>-<config hash>``).
    """

    optimizer: Literal["mipro", "gepa", "bootstrap_rs", "simba"] = "bootstrap_rs"
    auto: Literal["light", "medium", "heavy"] | None = "light"
    batch_size: int = Field(4, ge=1)
    max_bootstrapped_demos: int = Field(2, ge=0)
    max_labeled_demos: int = Field(0, ge=0)
    num_candidates: int = Field(4, ge=1)
    num_trials: int | None = Field(None, ge=1)
    seed: int = 0
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    variant: str | None = None


class GenerateConfig(Strict):
    """``[generate]``: ``batch`` sends the LM requests of ``generate`` through the provider's batch
    API (:mod:`synthdspy.batch`); ``batch_wait`` false submits or polls once, then exits (re-run
    to go on); ``batch_poll_s``: seconds between polls of a running batch. ``engine = "ray"`` runs
    the units on a Ray cluster (:mod:`synthdspy.ray_engine`): ``ray_address`` (empty: a local Ray
    on this machine's cores; ``auto``; ``ray://host:10001``) and ``ray_actors``, the actor pool's
    size; ``[lm.generator] concurrency`` is then the cluster's total. A generation mode, so
    excluded from the experiment's dump (config hashes and variant names do not change)."""

    batch: bool = False
    batch_wait: bool = True
    batch_poll_s: float = Field(30.0, gt=0)
    engine: Literal["local", "ray"] = "local"
    ray_address: str = ""
    ray_actors: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _one_mode(self) -> GenerateConfig:
        if self.batch and self.engine == "ray":
            raise ValueError("batch = true and engine = 'ray' cannot be combined: a provider batch runs on the "
                             "provider's side, not on a Ray cluster")
        return self


class Experiment(Strict):
    """A whole experiment file. ``source_path`` is set by :func:`load_experiment`.

    ``[output] dir`` defaults to ``runs/<name>``; ``[output]`` and ``[tracking]`` read as in train
    and tune files (:mod:`synthdspy.config_tables`).
    """

    name: str = "experiment"
    lm: LMConfig = Field(default_factory=LMConfig)
    seeds: SeedsConfig = Field(default_factory=SeedsConfig)
    task: TaskConfig
    gates: list[GateConfig] = Field(default_factory=list)
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    compile: CompileConfig = Field(default_factory=CompileConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    generate: GenerateConfig = Field(default_factory=GenerateConfig, exclude=True)
    source_path: str = Field("", exclude=True)

    @model_validator(mode="after")
    def _output_dir(self) -> Experiment:
        self.output = default_output(self.output, self.name)
        return self


def check_components(task: TaskConfig, gates: list[GateConfig], source: str) -> None:
    """Validate task and gate names and parameters against the registries.

    Raises:
        ConfigError: naming ``source``, the key (``task.name``, ``gates[1].threshold`` ...) and
            what was expected.
    """
    from pydantic import ValidationError

    from synthdspy.catalog import GATES, TASKS
    from synthdspy.configio import format_validation_error

    def check(table: dict, kind: str, key: str, name: str, params: dict[str, Any]) -> None:
        if name not in table:
            raise ConfigError(f"{source}: {key}.name: unknown {kind} {name!r}; known: {', '.join(sorted(table))}")
        try:
            table[name].params.model_validate(params)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(source, exc, prefix=key)) from None

    check(TASKS, "task", "task", task.name, task.params)
    for i, gate in enumerate(gates):
        check(GATES, "gate", f"gates[{i}]", gate.name, gate.params)


def load_experiment(path: str | Path, overrides: list[str] | None = None, seeds: str | None = None) -> Experiment:
    """Load and validate an experiment TOML file.

    Args:
        path: the TOML file.
        overrides: ``key.path=value`` strings applied before validation (``--set``).
        seeds: replaces ``seeds.source`` (``--seeds PATH``).

    Raises:
        ConfigError: missing file, invalid TOML, unknown key, wrong type, unknown task or gate,
            invalid task or gate parameter, or a seed file that does not exist; the message names
            the file, the key and what was expected.
    """
    extra = list(overrides or [])
    if seeds:
        extra.append(f"seeds.source={seeds!r}" if "'" not in seeds else f'seeds.source="{seeds}"')
    exp = load_model(Experiment, path, extra)
    exp.source_path = str(path)
    check_components(exp.task, exp.gates, str(path))
    src = exp.seeds.source
    if not (src.startswith(("builtin:", "hf://"))) and not Path(src).exists() and not glob.has_magic(src):
        raise ConfigError(f"{path}: seeds.source: no such file {src!r} (expected a local path, builtin:..., or hf://...)")
    return exp
