"""Mixture and curriculum tuning by proxy-model training (Optuna studies, MLflow tracking).

Public API (imported lazily, so that the CLI starts fast):
:func:`tune` -> :class:`TuneSummary`, :func:`load_tune_config`, :class:`TuneConfig`,
:func:`to_simplex` / :func:`from_simplex` (the mixture parameterisation).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "tune": "synthdspy.tuning.study",
    "TuneSummary": "synthdspy.tuning.report",
    "load_tune_config": "synthdspy.tuning.config",
    "TuneConfig": "synthdspy.tuning.config",
    "to_simplex": "synthdspy.tuning.simplex",
    "from_simplex": "synthdspy.tuning.simplex",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'synthdspy.tuning' has no attribute {name!r}")
