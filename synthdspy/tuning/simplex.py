"""Simplex parameterisation of mixture weights: stick-breaking with Beta(1, K-i) inverse-CDF sticks.

A K-group mixture has K-1 degrees of freedom. Searching K independent weights and renormalising
after the fact gives the sampler a redundant scale direction (``w`` and ``2w`` are the same
mixture, so the surrogate sees noise along it), and under random sampling its induced prior piles
up near the centre of the simplex; corners are only reached when all other weights are exactly 0.

Instead each trial suggests K-1 numbers ``u_1..u_{K-1}`` in [0, 1] and breaks a unit stick:

    v_i = 1 - (1 - u_i)^(1 / (K - i))          (inverse CDF of Beta(1, K - i))
    w_i = v_i * prod_{j<i} (1 - v_j),   w_K = prod_{j<K} (1 - v_j)

This is the stick-breaking construction of the Dirichlet distribution (Sethuraman 1994, "A
constructive definition of Dirichlet priors"; used for the simplex by Betancourt 2012, "Cruising
the simplex", and Stan's unit-simplex transform). Properties that matter for the search:

- a bijection between the open cube (0, 1)^(K-1) and the open simplex: no redundant direction;
- u uniform on the cube gives w uniform on the simplex (Dirichlet(1, ..., 1)), so random search
  and TPE's startup trials cover every region evenly;
- the cube's faces map onto the simplex's faces, so every corner is reached exactly with finite
  suggestions: ``e_i`` is ``u_j = 0`` for j < i and ``u_i = 1``; ``e_K`` is all zeros;
- weights are non-negative and sum to 1 by construction (up to float rounding).

:func:`from_simplex` inverts it (used to place the fixed baselines in the same coordinates).
"""

from __future__ import annotations

from collections.abc import Sequence


def to_simplex(u: Sequence[float]) -> list[float]:
    """Map ``K-1`` sticks in [0, 1] to ``K`` non-negative weights that sum to 1.

    Raises:
        ValueError: when a stick lies outside [0, 1].
    """
    k = len(u) + 1
    weights, rest = [], 1.0
    for i, ui in enumerate(u):
        if not 0.0 <= ui <= 1.0:
            raise ValueError(f"stick {i} = {ui} is outside [0, 1]")
        v = 1.0 - (1.0 - ui) ** (1.0 / (k - 1 - i))
        weights.append(rest * v)
        rest *= 1.0 - v
    weights.append(rest)
    total = sum(weights)
    return [w / total for w in weights]


def from_simplex(w: Sequence[float]) -> list[float]:
    """The sticks ``u`` (``K-1`` numbers in [0, 1]) with ``to_simplex(u) == w``.

    Where the remaining stick is empty (a corner already reached) the later sticks are 0.

    Raises:
        ValueError: when ``w`` has a negative entry or does not sum to 1 (tolerance 1e-6).
    """
    if any(x < 0 for x in w) or abs(sum(w) - 1.0) > 1e-6:
        raise ValueError(f"not a point of the simplex: {list(w)}")
    k = len(w)
    u, rest = [], 1.0
    for i in range(k - 1):
        v = min(max(w[i] / rest, 0.0), 1.0) if rest > 1e-12 else 0.0
        u.append(1.0 - (1.0 - v) ** (k - 1 - i))
        rest -= w[i]
    return u
