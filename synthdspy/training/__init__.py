"""Proxy-model training: tokenizers, a small GPT, mixture/curriculum streams and the trainer.

Public API (imported lazily, so ``import synthdspy.training.config`` does not load torch):
:func:`train` -> :class:`TrainResult`, :func:`load_model`, :func:`load_train_config`, :class:`TrainConfig`,
:class:`EvalEvent`, :class:`SplitLoss`, :class:`StopTraining`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "train": "synthdspy.training.api",
    "TrainResult": "synthdspy.training.api",
    "load_model": "synthdspy.training.api",
    "load_train_config": "synthdspy.training.config",
    "TrainConfig": "synthdspy.training.config",
    "EvalEvent": "synthdspy.training.trainer",
    "SplitLoss": "synthdspy.training.trainer",
    "StopTraining": "synthdspy.training.trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'synthdspy.training' has no attribute {name!r}")
