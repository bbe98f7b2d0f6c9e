"""LM roles (generator, judge, reflection) built as ``dspy.LM`` objects, with usage and cost per role.

Every real model goes through ``dspy.LM`` on LiteLLM (``engine="litellm"``), so any LiteLLM model
string works: ``openai/gpt-4o-mini``, ``anthropic/claude-3-5-haiku-latest``,
``hosted_vllm/Qwen/Qwen2.5-7B-Instruct`` with ``api_base``, ``ollama_chat/llama3.1`` ... API keys
are read from the environment variable the config names and are never stored in the config,
logged, or saved with a program. A model ``sim/...`` is the offline simulator
(:mod:`synthdspy.simulator`), announced with a banner.

Usage is metered per role: prompt and completion tokens and dollars (LiteLLM's cost map), counted
only for calls that were not served from DSPy's cache, so a replayed re-run costs nothing.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Any

import dspy

from synthdspy import greenlet_bridge, tracking, unit_calls
from synthdspy.adapters import ParseStats, counting_adapter
from synthdspy.base_prefix import BasePrompt, load_prefix
from synthdspy.config import LMConfig, LMRole
from synthdspy.configio import ConfigError
from synthdspy.pricing import response_cost
from synthdspy.roles import current_roles, judge_context, roles_context  # noqa: F401 (synthdspy.lm's API)
from synthdspy.text_lm import TextPromptMixin, stop_sequences
from synthdspy.usage import UsageMeter

ROLES = ("generator", "judge", "reflection")
_banner_shown = False


class MeteredMixin:
    """Mixin for a DSPy LM class that adds each billed call's usage to a :class:`UsageMeter`.

    Inside a generation unit (:mod:`synthdspy.greenlet_bridge`), a call is awaited on DSPy's async
    path (``acall`` and the LM's async engine), so the event loop serves other units meanwhile.

    Hooks ``BaseLM.update_history``, where DSPy records every call with its usage and cost. Cache
    hits carry empty usage and are not counted. With ``dspy.settings.disable_history`` set, DSPy
    records nothing and the meter stays at zero.
    """

    meter: UsageMeter
    role: str
    meter_history: bool = True  # False when the engine meters (real endpoints)

    def __call__(self, prompt: Any = None, *, messages: Any = None, **kwargs: Any) -> Any:
        if self.meter.gate is not None:
            self.meter.gate()
        fp = unit_calls.before_call(self.model, prompt, messages, kwargs)  # type: ignore[attr-defined]
        if greenlet_bridge.active() and getattr(self, "_async_engine_spec", None) is not None:
            outputs = greenlet_bridge.await_only(super().acall(prompt, messages=messages, **kwargs))  # type: ignore[misc]
        else:
            outputs = super().__call__(prompt, messages=messages, **kwargs)  # type: ignore[misc]
        unit_calls.after_call(fp, outputs)
        return outputs

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        if self.meter.gate is not None:
            self.meter.gate()
        return await super().acall(*args, **kwargs)  # type: ignore[misc]

    def update_history(self, entry: dict) -> None:
        super().update_history(entry)  # type: ignore[misc]
        usage = dict(entry.get("usage") or {})
        if usage and self.meter_history:
            cost = entry.get("cost")
            if cost is None:
                cost = response_cost(self.model, entry.get("response"), usage)  # type: ignore[attr-defined]
            self.meter.add(self.role, usage, cost)


class MeteredLM(MeteredMixin, dspy.LM):
    """``dspy.LM`` on a :class:`~synthdspy.provider_engine.ProviderEngine`, which meters every billed
    answer (truncated ones included) itself."""

    meter_history = False

    def _check_truncation(self, results: Any) -> None:
        """No warning per truncated answer: the engine raises ``TruncatedAnswerError`` for it, which
        fails the unit as ``record:truncated`` (``failures.jsonl``, the progress line)."""


class MeteredTextLM(TextPromptMixin, MeteredLM):
    """:class:`MeteredLM` of a base model on a text-completion endpoint (:mod:`synthdspy.text_lm`)."""


def _metered_simulator(text: bool = False) -> type:
    from synthdspy.simulator import SimLM

    class MeteredSimLM(MeteredMixin, SimLM):
        """The offline simulator, metered per role."""

    class MeteredTextSimLM(TextPromptMixin, MeteredSimLM):
        """The offline simulator playing a base model (:class:`~synthdspy.base_sim.TextSimulator`)."""

    return MeteredTextSimLM if text else MeteredSimLM


def _base_prompt(role_name: str, role: LMRole) -> BasePrompt:
    """The prefix of a text role, as a :class:`BasePrompt`.

    Raises:
        ConfigError: the prefix file is gone or unreadable (naming ``lm.<role>.prefix_file``).
    """
    try:
        return BasePrompt(load_prefix(role.prefix, role.prefix_file))
    except ValueError as exc:
        raise ConfigError(f"lm.{role_name}.prefix_file: {exc}") from None


def _api_key(role_name: str, role: LMRole) -> str | None:
    if not role.api_key_env:
        return None
    key = os.environ.get(role.api_key_env)
    tracking.register_secret_env(role.api_key_env)
    if not key:
        raise ConfigError(
            f"lm.{role_name}.api_key_env: environment variable {role.api_key_env} is not set "
            f"(it must hold the API key for {role.model})"
        )
    return key


def show_banner_once() -> None:
    """Print the simulator banner to stderr (once per process)."""
    global _banner_shown
    if _banner_shown:
        return
    from rich.console import Console

    from synthdspy.simulator import SIMULATOR_BANNER

    Console(stderr=True).print(f"[bold yellow]{SIMULATOR_BANNER}[/]", highlight=False)
    _banner_shown = True


def _reasoning_settings(role_name: str, role: LMRole) -> tuple[float | None, int]:
    """Temperature and max_tokens for OpenAI reasoning models (gpt-5*, o1/o3/o4), which take no
    temperature but 1.0 and need room for reasoning tokens (DSPy requires >= 16000)."""
    from dspy.clients.lm import _is_openai_reasoning_model

    if not _is_openai_reasoning_model(role.model):
        return role.temperature, role.max_tokens
    notes = []
    if role.temperature != 1.0:
        notes.append(f"temperature {role.temperature:g} -> provider default")
    if role.max_tokens < 16000:
        notes.append(f"max_tokens {role.max_tokens} -> 16000 (reasoning tokens count against it)")
    if notes:
        from rich.console import Console

        Console(stderr=True).print(f"[yellow]note:[/] lm.{role_name} {role.model} is a reasoning model: "
                                   + "; ".join(notes), highlight=False)
    return None, max(role.max_tokens, 16000)


def _provider_lm(role_name: str, role: LMRole, meter: UsageMeter) -> dspy.BaseLM:
    from synthdspy.pricing import response_cost as cost_of
    from synthdspy.provider_engine import ENDPOINT_KEY, AsyncProviderEngine, ProviderEngine
    from synthdspy.ratelimit import limiter_for
    from synthdspy.text_lm import AsyncTextProviderEngine, TextProviderEngine

    extra = dict(role.extra)
    client: dict[str, Any] = {"timeout": role.timeout_s}
    for name in ("extra_headers", "headers"):
        if name in extra:
            client[name] = extra.pop(name)
    if role.api_base or role.model_type == "text":  # text: LiteLLM reads no <PROVIDER>_API_BASE for it
        client["api_base"] = effective_api_base(role)
    key = _api_key(role_name, role)
    if key:
        client["api_key"] = key

    def on_usage(name: str, usage: dict, raw: Any) -> None:
        meter.add(name, usage, cost_of(role.model, raw, usage, role.price))

    base = effective_api_base(role)
    limiter = limiter_for(role.model, base, role.concurrency, role.rpm, role.tpm)
    text = role.model_type == "text"
    engine_class, async_class, lm_class = ((TextProviderEngine, AsyncTextProviderEngine, MeteredTextLM) if text
                                           else (ProviderEngine, AsyncProviderEngine, MeteredLM))
    engine, async_engine = (cls(role.model, role_name, limiter, role.concurrency, role.num_retries, on_usage, **client)
                            for cls in (engine_class, async_class))
    temperature, max_tokens = _reasoning_settings(role_name, role)
    if text:
        extra["stop"] = stop_sequences(extra.get("stop"))
    lm = lm_class(role.model, model_type=role.model_type, engine=engine, async_engine=async_engine, num_retries=0,
                  temperature=temperature, max_tokens=max_tokens, cache=role.cache,
                  **{ENDPOINT_KEY: f"{role.model} @ {base or 'default'}"}, **extra)
    if text:
        lm.base_prompt = _base_prompt(role_name, role)
    return lm


def effective_api_base(role: LMRole) -> str | None:
    """The server a role's requests go to: ``api_base``, else the ``<PROVIDER>_API_BASE`` /
    ``<PROVIDER>_BASE_URL`` environment variable LiteLLM reads (e.g. ``OPENAI_BASE_URL``), else
    None (the provider's default endpoint). Part of the cache key, the limiter's and the store's
    identity, so a run moved to another server by the environment does not replay the first's."""
    if role.api_base:
        return role.api_base
    provider = role.model.partition("/")[0].upper() if "/" in role.model else "OPENAI"
    return os.environ.get(f"{provider}_API_BASE") or os.environ.get(f"{provider}_BASE_URL") or None


def build_role(role_name: str, role: LMRole, meter: UsageMeter) -> dspy.BaseLM:
    """Build the DSPy LM for one role.

    Real models run on a :class:`~synthdspy.provider_engine.ProviderEngine` (rate limiter shared
    per endpoint, retries, failure classes, metering); ``sim/...`` on the in-process simulator.
    A ``model_type = "text"`` role prompts a base model behind its prefix (:mod:`synthdspy.text_lm`).

    Raises:
        ConfigError: when the role names an API-key variable that is not set, or a prefix file
            that cannot be read.
    """
    if role.is_simulated:
        show_banner_once()
        common = dict(temperature=role.temperature, max_tokens=role.max_tokens, cache=role.cache)
        lm = _metered_simulator(role.model_type == "text")(role.model, num_retries=role.num_retries,
                                                           **role.simulator.model_dump(), **common)
        if role.model_type == "text":
            _as_text_simulator(lm, _base_prompt(role_name, role), stop_sequences(role.extra.get("stop")))
    else:
        lm = _provider_lm(role_name, role, meter)
    lm.meter = meter  # type: ignore[attr-defined]
    lm.role = role_name  # type: ignore[attr-defined]
    lm.max_temperature = role.max_temperature  # type: ignore[attr-defined]
    lm.adapter_name = role.adapter  # type: ignore[attr-defined]
    lm.supports_n = role.is_simulated or _supports_n(role.model)  # type: ignore[attr-defined]
    lm.fixed_temperature = lm.kwargs.get("temperature") is None and not role.is_simulated  # type: ignore[attr-defined]
    return lm


def _as_text_simulator(lm: Any, base_prompt: BasePrompt, stop: list[str]) -> None:
    """Turn a metered simulator LM into a base model: its simulator answers as
    :class:`~synthdspy.base_sim.TextSimulator`, its cache key names that toy's build."""
    from synthdspy.base_sim import TEXT_SIM_BUILD, TextSimulator

    lm.engine.simulator = TextSimulator(lm.simulator.options)
    lm.kwargs["user"] = f"{lm.kwargs['user']} {TEXT_SIM_BUILD}"
    lm.kwargs["stop"] = stop
    lm.base_prompt = base_prompt


@dataclass
class LMs:
    """The LM of each role, their concurrency, and the shared usage meter."""

    generator: dspy.BaseLM
    judge: dspy.BaseLM
    reflection: dspy.BaseLM
    concurrency: int
    meter: UsageMeter
    simulated: bool
    endpoints: dict[str, str] = field(default_factory=dict)
    parse_stats: ParseStats = field(default_factory=ParseStats)

    def describe(self) -> dict[str, str]:
        """``{role: model}`` for summaries and MLflow params (``sim/...`` for the simulator)."""
        return {r: getattr(getattr(self, r), "model", "?") for r in ROLES}

    def adapter_for(self, role: str) -> dspy.Adapter:
        """The adapter of ``role``'s LM, counting parse failures into :attr:`parse_stats` (used by
        :mod:`synthdspy.roles`)."""
        return _adapter(getattr(self, role), self.parse_stats)

    def requests_finished(self) -> int:
        """Requests answered or failed so far at the roles' endpoints, as their rate limiters count
        them (a limiter shared by several roles counted once; 0 for roles on the in-process
        simulator, which has none)."""
        limiters = {id(x): x for x in (getattr(getattr(getattr(self, r), "engine", None), "limiter", None)
                                       for r in ROLES) if x is not None}
        return sum(x.stats.finished for x in limiters.values())


def build_lms(config: LMConfig) -> LMs:
    """Build all roles from the ``[lm]`` config.

    Raises:
        ConfigError: a role names an API-key variable that is not set.
    """
    meter = UsageMeter()
    roles = {name: build_role(name, getattr(config, name), meter) for name in ROLES}
    simulated = any(_simulated(getattr(config, n)) for n in ROLES)
    return LMs(**roles, concurrency=config.generator.concurrency, meter=meter, simulated=simulated,
               endpoints={n: describe_endpoint(n, getattr(config, n)) for n in ROLES})


def _simulated(role: LMRole) -> bool:
    """True for ``sim/...`` and for an HTTP endpoint whose ``/models`` says it is synthdspy's
    simulator server (so runs over HTTP are labelled simulated too); prints the banner."""
    if role.is_simulated:
        return True
    key = os.environ.get(role.api_key_env) if role.api_key_env else None
    if role.api_base and _is_simulator_endpoint(role.api_base, key):
        show_banner_once()
        return True
    return False


@functools.lru_cache(maxsize=64)
def _is_simulator_endpoint(api_base: str, key: str | None) -> bool:
    """:func:`synthdspy.provider_server.is_simulator_endpoint`, asked once per endpoint and key."""
    from synthdspy.provider_server import is_simulator_endpoint

    return is_simulator_endpoint(api_base, key, timeout_s=2.0)


def _supports_n(model: str) -> bool:
    """True when LiteLLM's parameter table says ``model``'s provider takes ``n`` (several choices)."""
    import litellm

    provider, _, name = model.partition("/")
    try:
        return "n" in (litellm.get_supported_openai_params(model=name or provider, custom_llm_provider=provider) or [])
    except Exception:  # an unknown provider: ask for one choice per call
        return False


def describe_endpoint(role_name: str, role: LMRole) -> str:
    """``lm.judge anthropic/claude-... at https://... (key from $ANTHROPIC_API_KEY)`` for messages."""
    where = effective_api_base(role) or "the provider's default endpoint"
    key = f"key from ${role.api_key_env}" if role.api_key_env else "no api_key_env set"
    prefix = role.prefix_file or role.prefix or "urial"
    kind = f", text completions behind prefix {prefix}" if role.model_type == "text" else ""
    return f"lm.{role_name} {role.model} at {where} ({key}{kind})"


def lm_from_model_string(model: str, role: str = "judge", api_base: str | None = None,
                         api_key_env: str | None = None, temperature: float | None = None) -> dspy.BaseLM:
    """A metered LM for ``model`` (LiteLLM string or ``sim/...``) in ``role``, with that role's defaults.

    Raises:
        ConfigError: ``api_key_env`` is given but not set.
    """
    defaults = getattr(LMConfig(), role)
    update: dict[str, Any] = {"model": model, "api_base": api_base, "api_key_env": api_key_env}
    if temperature is not None:
        update["temperature"] = temperature
    return build_role(role, defaults.model_copy(update=update), UsageMeter())


def _adapter(lm: dspy.BaseLM, stats: ParseStats) -> dspy.Adapter:
    """The adapter of ``lm``'s role (``[lm.<role>] adapter``): DSPy's JSONAdapter, which asks for
    native JSON-schema structured outputs where the provider supports them, or its ChatAdapter
    (with the JSON fallback), both counting parse failures into ``stats``."""
    return counting_adapter(getattr(lm, "adapter_name", "chat"), stats)
