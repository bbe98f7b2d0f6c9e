"""The cluster-agent's error bar: a percentile-bootstrap interval of the mean over rounds."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel


class Interval(BaseModel):
    """Mean of per-round ratios with a percentile-bootstrap confidence interval."""

    mean: float
    low: float
    high: float
    half_width: float
    n: int


def bootstrap_interval(values: Sequence[float], confidence: float = 0.95, n_resamples: int = 2000,
                       seed: int = 0) -> Interval:
    """Percentile-bootstrap interval of the mean of ``values`` (resampling rounds with replacement).

    Uses ``scipy.stats.bootstrap``. The paper instead repeats the whole measure on 10 data
    subsamples and reports mean +/- error (Chen et al. 2024, sec. 3.2); resampling rounds gives
    the same kind of error bar without re-running the LM. ``half_width`` is (high - low) / 2.
    With fewer than two values the bounds are NaN and the half-width infinite; with identical
    values the interval is a point.

    Raises:
        ValueError: empty ``values``.
    """
    from scipy.stats import bootstrap

    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("bootstrap_interval needs at least one value")
    mean = float(data.mean())
    if data.size < 2:
        return Interval(mean=mean, low=math.nan, high=math.nan, half_width=math.inf, n=1)
    if np.ptp(data) == 0:
        return Interval(mean=mean, low=mean, high=mean, half_width=0.0, n=int(data.size))
    result = bootstrap((data,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                       method="percentile", random_state=np.random.default_rng(seed))
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return Interval(mean=mean, low=low, high=high, half_width=(high - low) / 2, n=int(data.size))
