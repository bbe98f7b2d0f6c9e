"""The simulator itself (`Simulator`, transport independent, with fault injection) and its DSPy
3.4 engine and LM: `SimEngine`, `AsyncSimEngine`, `SimLM`."""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import random
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dspy
from dspy import lm15

from synthdspy.simulator.compose import compose_answer, render
from synthdspy.simulator.features import count_tokens
from synthdspy.simulator.options import SimOptions, SimulatedRateLimitError, SimulatedServerError
from synthdspy.simulator.prompt import _content_text, parse_prompt


@dataclass(frozen=True)
class SimCall:
    """One request to the simulator, whatever the transport.

    messages: OpenAI-style chat messages. rollout_id: DSPy's rollout id (None over HTTP).
    temperature: None means the provider default, 1.0. response_format: the request's, if any.
    candidate: index among the `n` answers of one call. seed: per-request seed (the request's
    `seed`, e.g. `SimLM(seed=...)`); None falls back to `SimOptions.seed`.
    """

    messages: list[dict]
    rollout_id: Any = None
    temperature: float | None = None
    response_format: Any = None
    candidate: int = 0
    seed: int | None = None


@dataclass(frozen=True)
class SimReply:
    """One simulated completion: the text and its simulated token usage."""

    text: str
    prompt_tokens: int
    completion_tokens: int


def _build_id() -> str:
    """sha256 prefix of this package's source: changes whenever the simulator's code does."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


#: Identifies the simulator's code. `SimLM` sends it as the request's `user` field, which DSPy's
#: cache key includes and the answers ignore: answers cached by another build are never replayed.
SIMULATOR_BUILD = f"synthdspy-simulator/{_build_id()}"


def _seed_int(*parts: Any) -> int:
    blob = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big")


class Simulator:
    """Transport-independent simulated LM shared by `SimEngine` and `synthdspy.sim_server`.

    `complete(call)` answers a `SimCall`, injecting faults per `SimOptions`. Thread-safe: the
    shared state is the per-request attempt counter (bounded LRU) and `faults`, a Counter of
    attempt outcomes ("ok", "rate_limit", "server_error", "malformed").
    """

    _MAX_TRACKED = 65536

    def __init__(self, options: SimOptions | None = None, **kwargs: Any) -> None:
        self.options = options or SimOptions(**kwargs)
        self.faults: Counter[str] = Counter()
        self._attempts: OrderedDict[int, int] = OrderedDict()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        """Picklable (and deep-copyable) state: everything but the lock."""
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def request_key(self, call: SimCall) -> int:
        """Seed of a request: sha256 of (messages, rollout_id, temperature, seed, candidate)."""
        seed = self.options.seed if call.seed is None else call.seed
        return _seed_int(call.messages, call.rollout_id, call.temperature, seed, call.candidate)

    def draw_fault(self, call: SimCall) -> str | None:
        """Fault for this attempt of `call`: "rate_limit", "server_error", "malformed" or None.

        A seeded uniform draw on (request key, attempt number), the attempt number counting
        earlier calls with the same key, so a retry draws afresh.
        """
        key = self.request_key(call)
        with self._lock:
            attempt = self._attempts.pop(key, 0)
            self._attempts[key] = attempt + 1
            if len(self._attempts) > self._MAX_TRACKED:
                self._attempts.popitem(last=False)
        o = self.options
        u = random.Random(_seed_int(key, attempt, "fault")).random()
        fault = None
        if u < o.rate_limit_rate:
            fault = "rate_limit"
        elif u < o.rate_limit_rate + o.error_rate:
            fault = "server_error"
        elif u < o.rate_limit_rate + o.error_rate + o.malformed_rate:
            fault = "malformed"
        with self._lock:
            self.faults[fault or "ok"] += 1
        return fault

    def answer(self, call: SimCall, malformed: bool = False) -> SimReply:
        """The deterministic answer to `call` (no latency, no fault draw)."""
        prompt = parse_prompt(call.messages, call.response_format)
        rng = random.Random(self.request_key(call))
        temperature = 1.0 if call.temperature is None else float(call.temperature)
        text = render(prompt, compose_answer(prompt, rng, temperature), malformed=malformed)
        prompt_tokens = sum(count_tokens(_content_text(m.get("content"))) for m in call.messages)
        return SimReply(text, prompt_tokens, count_tokens(text))

    def attempt(self, call: SimCall) -> SimReply:
        """Draw a fault for `call`; raise `SimulatedRateLimitError` / `SimulatedServerError`
        (carrying `retry_after_s`) or return the (possibly malformed) answer. No latency."""
        fault = self.draw_fault(call)
        hint = self.options.retry_after_s
        if fault == "rate_limit":
            raise SimulatedRateLimitError("simulated rate limit (HTTP 429)", status=429, retry_after=hint)
        if fault == "server_error":
            raise SimulatedServerError("simulated server error (HTTP 500)", status=500, retry_after=hint)
        return self.answer(call, malformed=fault == "malformed")

    def complete(self, call: SimCall) -> SimReply:
        """One attempt after sleeping `latency_s` (see `attempt`)."""
        if self.options.latency_s:
            time.sleep(self.options.latency_s)
        return self.attempt(call)


_CALL: contextvars.ContextVar[dict | None] = contextvars.ContextVar("synthdspy_sim_call", default=None)


def _request_call(request: lm15.Request) -> SimCall:
    """The `SimCall` of an engine request, with rollout id and candidate from `SimLM`'s context."""
    messages = []
    if request.system is not None:
        system = request.system
        if not isinstance(system, str):
            system = "".join(getattr(p, "text", "") for p in system)
        messages.append({"role": "system", "content": system})
    for m in request.messages:
        text = "\n".join(p.text for p in m.parts if isinstance(p, lm15.TextPart))
        messages.append({"role": m.role, "content": text})
    state = _CALL.get() or {"rollout_id": None, "done": 0}
    config = request.config
    return SimCall(
        messages, state["rollout_id"], config.temperature, config.response_format, state["done"], config.seed
    )


def _response(request: lm15.Request, reply: SimReply) -> lm15.Response:
    state = _CALL.get()
    if state is not None:
        state["done"] += 1  # the next successful answer in this call is the next candidate
    usage = lm15.Usage(
        input_tokens=reply.prompt_tokens,
        output_tokens=reply.completion_tokens,
        total_tokens=reply.prompt_tokens + reply.completion_tokens,
    )
    message = lm15.Message.assistant([lm15.TextPart(reply.text)])
    return lm15.Response(id=None, model=request.model, message=message, finish_reason="stop", usage=usage)


class SimEngine:
    """DSPy 3.4 engine (`complete(Request) -> Response`) backed by a `Simulator`.

    Reads rollout_id and the candidate index from `SimLM`'s call context, and the seed from the
    request (`SimLM` puts its seed in the request options, so it is part of DSPy's cache key).
    Declares JSON-schema response-format support so JSONAdapter sends structured-output requests.
    """

    supports_response_schema = True
    supported_params = frozenset({"temperature", "max_tokens", "response_format", "n", "seed", "stop"})

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator

    def complete(self, request: lm15.Request) -> lm15.Response:
        """Answer one request (one attempt); raises `SimulatedTransientError` subclasses on faults."""
        return _response(request, self.simulator.complete(_request_call(request)))

    def stream(self, request: lm15.Request):
        """Stream events of the complete answer (the simulator does not stream incrementally)."""
        return lm15.response_to_events(self.complete(request))

    def close(self) -> None:
        """Nothing to release."""

    def dump_state(self) -> dict:
        """JSON state: the simulator options."""
        return self.simulator.options.model_dump()

    @classmethod
    def load_state(cls, state: dict) -> SimEngine:
        """Rebuild from `dump_state` output."""
        return cls(Simulator(SimOptions(**state)))


class AsyncSimEngine:
    """Async counterpart of `SimEngine` (latency is awaited, not slept)."""

    def __init__(self, sync: SimEngine) -> None:
        self.sync = sync

    async def complete(self, request: lm15.Request) -> lm15.Response:
        """Async `SimEngine.complete`."""
        simulator = self.sync.simulator
        if simulator.options.latency_s:
            await asyncio.sleep(simulator.options.latency_s)
        return _response(request, simulator.attempt(_request_call(request)))

    async def stream(self, request: lm15.Request):
        """Async stream of the complete answer's events."""
        for event in lm15.response_to_events(await self.complete(request)):
            yield event

    async def aclose(self) -> None:
        """Nothing to release."""


class SimLM(dspy.LM):
    """The offline simulator as a `dspy.LM` (so a `dspy.BaseLM`), for models named `sim/...`.

    Build: `SimLM("sim/default", seed=0, latency_s=0.0, error_rate=0.0, rate_limit_rate=0.0,
    malformed_rate=0.0, retry_after_s=0.0, **lm_kwargs)`, where `lm_kwargs` are ordinary
    `dspy.LM` options (temperature, max_tokens, cache, num_retries, callbacks, rollout_id).
    Raises ValueError if `model` does not start with "sim/" and pydantic.ValidationError for bad
    options. See the `synthdspy.simulator` docstring for caching, retries and usage.
    """

    def __init__(
        self,
        model: str = "sim/default",
        *,
        seed: int = 0,
        latency_s: float = 0.0,
        error_rate: float = 0.0,
        rate_limit_rate: float = 0.0,
        malformed_rate: float = 0.0,
        retry_after_s: float = 0.0,
        **lm_kwargs: Any,
    ) -> None:
        if not model.startswith("sim/"):
            raise ValueError(f"simulated model names start with 'sim/', got {model!r}")
        options = SimOptions(
            seed=seed,
            latency_s=latency_s,
            error_rate=error_rate,
            rate_limit_rate=rate_limit_rate,
            malformed_rate=malformed_rate,
            retry_after_s=retry_after_s,
        )
        engine = SimEngine(Simulator(options))
        # The seed travels as the request's `seed` option: DSPy then keys its cache on it too. The
        # malformed rate joins the build in `user`, so injected malformed answers are cached apart
        # and never replayed to a run without injection.
        lm_kwargs.setdefault("seed", seed)
        lm_kwargs["user"] = SIMULATOR_BUILD + (f" malformed_rate={malformed_rate:g}" if malformed_rate else "")
        super().__init__(model, engine=engine, async_engine=AsyncSimEngine(engine), **lm_kwargs)

    @property
    def simulator(self) -> Simulator:
        """The `Simulator` answering this LM's calls."""
        return self.engine.simulator

    def _call_state(self, kwargs: dict) -> dict:
        return {"rollout_id": {**self.kwargs, **kwargs}.get("rollout_id"), "done": 0}

    def __call__(self, prompt=None, *, messages=None, **kwargs):
        """`dspy.LM.__call__` with this call's rollout_id made visible to the engine."""
        token = _CALL.set(self._call_state(kwargs))
        try:
            return super().__call__(prompt, messages=messages, **kwargs)
        finally:
            _CALL.reset(token)

    async def acall(self, prompt=None, *, messages=None, **kwargs):
        """Async `__call__`."""
        token = _CALL.set(self._call_state(kwargs))
        try:
            return await super().acall(prompt, messages=messages, **kwargs)
        finally:
            _CALL.reset(token)

    def update_history(self, entry: dict) -> None:
        """Record history with cost 0.0: simulated calls cost nothing."""
        if entry.get("cost") is None:
            entry["cost"] = 0.0
        super().update_history(entry)

    def dump_state(self) -> dict:
        """State for `load_state`: model, dspy.LM options and simulator options (no secrets)."""
        state = dspy.BaseLM.dump_state(self)
        state.update(self.simulator.options.model_dump())
        state.pop("model_type", None)
        state.pop("user", None)  # the build of whoever loads the state applies
        return state

    @classmethod
    def load_state(cls, state: dict, *, allow_custom_lm_class: bool = False) -> SimLM:
        """Rebuild a `SimLM` from `dump_state` output."""
        state = {k: v for k, v in state.items() if k != "_dspy_lm_class"}
        return cls(**state)
