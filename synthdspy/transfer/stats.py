"""Rank agreement between proxy and target-scale losses: Spearman's rho, a bootstrap interval,
and the regret of choosing by the proxy.

- Spearman's rank correlation (Spearman 1904): Pearson's correlation of the ranks (ties get their
  average rank), computed by :func:`scipy.stats.spearmanr`.
- Its interval: the paired nonparametric bootstrap with percentile limits (Efron & Tibshirani
  1993, *An Introduction to the Bootstrap*, chapters 6 and 13): resample the (proxy, target) pairs
  with replacement, recompute rho, take the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``
  quantiles. With ten-odd points a resample can repeat one pair so often that one side is
  constant; rho is undefined there and the resample is dropped (``n_valid`` counts the rest).
- Regret at the target scale (RegMix, Liu et al. 2024, section 4; Olmix): the target loss of the
  mixture the proxy ranks first minus the lowest target loss among the retrained mixtures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho of paired samples ``x``, ``y`` (same length n >= 2; nan when one is constant).

    Raises:
        ValueError: lengths differ or fewer than 2 pairs.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError(f"spearman needs two 1-d samples of the same length >= 2, got {x.shape} and {y.shape}")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


@dataclass
class Interval:
    """A bootstrap interval: ``low``, ``high`` at ``confidence``, from ``n_valid`` of ``n_resamples``."""

    low: float
    high: float
    confidence: float
    n_resamples: int
    n_valid: int


def _row_ranks_corr(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair of ``xs``, ``ys`` (shape ``[B, n]``); nan where a row is constant."""
    rx = stats.rankdata(xs, axis=1)
    ry = stats.rankdata(ys, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    den = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rx * ry).sum(axis=1) / np.where(den > 0, den, 1.0), np.nan)


def bootstrap_spearman(
    x: Sequence[float], y: Sequence[float], n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """Percentile bootstrap interval of Spearman's rho over resampled (x, y) pairs (see the module).

    Returns:
        :class:`Interval`; ``low`` and ``high`` are nan when no resample has a defined rho.

    Raises:
        ValueError: lengths differ, fewer than 3 pairs, or ``confidence`` outside (0, 1).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 3:
        raise ValueError(f"bootstrap needs two 1-d samples of the same length >= 3, got {x.shape} and {y.shape}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_resamples, len(x)))
    rho = _row_ranks_corr(x[idx], y[idx])
    rho = rho[np.isfinite(rho)]
    if len(rho) == 0:
        return Interval(float("nan"), float("nan"), confidence, n_resamples, 0)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(rho, [alpha, 1 - alpha])
    return Interval(float(low), float(high), confidence, n_resamples, len(rho))


@dataclass
class Regret:
    """Choosing by the proxy: ``pick`` (lowest proxy loss), ``best`` (lowest target loss), the
    target-scale ``regret`` (pick's target loss minus best's, >= 0; same units as the losses),
    ``relative`` (regret over best's target loss) and the pick's ``target_rank`` (1 = best)."""

    pick: int
    best: int
    regret: float
    relative: float
    target_rank: int


def regret(proxy: Sequence[float], target: Sequence[float]) -> Regret:
    """Target-scale regret of the proxy's choice over paired losses (lower is better; ties: first).

    Raises:
        ValueError: lengths differ or no pair.
    """
    p, t = np.asarray(proxy, dtype=float), np.asarray(target, dtype=float)
    if p.shape != t.shape or p.ndim != 1 or len(p) == 0:
        raise ValueError(f"regret needs two 1-d samples of the same non-zero length, got {p.shape} and {t.shape}")
    pick, best = int(np.argmin(p)), int(np.argmin(t))
    gap = float(t[pick] - t[best])
    return Regret(pick, best, gap, gap / float(t[best]), int((t < t[pick]).sum()) + 1)
