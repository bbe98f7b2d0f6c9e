"""Simulator settings (`SimOptions`), its injected transient errors, and the banner every command
using the simulator prints."""

from __future__ import annotations

import pydantic
from dspy import lm15

SIMULATOR_BANNER = (
    "*** SIMULATED LM (sim/...): every output below comes from synthdspy's offline simulator, "
    "NOT a language model. It only exercises the pipeline; do not train on or publish its data. ***"
)


def simulator_banner() -> str:
    """Return `SIMULATOR_BANNER`, the line every command using the simulator must print."""
    return SIMULATOR_BANNER


class SimOptions(pydantic.BaseModel):
    """Simulator settings. Rates are probabilities per attempt; their sum must not exceed 1.

    seed: base seed mixed into every draw. latency_s: fixed seconds slept per attempt.
    error_rate: share of attempts failing with a simulated HTTP 500. rate_limit_rate: share
    failing with a simulated HTTP 429. malformed_rate: share answered with a truncated answer
    the adapter cannot parse. retry_after_s: retry hint (seconds) carried by injected errors.
    """

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    latency_s: float = pydantic.Field(0.0, ge=0.0)
    error_rate: float = pydantic.Field(0.0, ge=0.0, le=1.0)
    rate_limit_rate: float = pydantic.Field(0.0, ge=0.0, le=1.0)
    malformed_rate: float = pydantic.Field(0.0, ge=0.0, le=1.0)
    retry_after_s: float = pydantic.Field(0.0, ge=0.0)

    @pydantic.model_validator(mode="after")
    def _rates_sum(self) -> SimOptions:
        total = self.error_rate + self.rate_limit_rate + self.malformed_rate
        if total > 1.0:
            raise ValueError(f"error_rate + rate_limit_rate + malformed_rate = {total:g} exceeds 1")
        return self


class SimulatedTransientError(Exception):
    """Base of the simulator's injected transient failures; safe to retry."""


class SimulatedRateLimitError(SimulatedTransientError, lm15.RateLimitError):
    """Injected rate limit (HTTP 429); DSPy maps it to the retryable `LMRateLimitError`."""


class SimulatedServerError(SimulatedTransientError, lm15.ServerError):
    """Injected server error (HTTP 500); DSPy maps it to the retryable `LMServerError`."""
