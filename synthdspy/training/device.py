"""Device selection: CUDA with bfloat16 autocast and torch.compile, or CPU in float32 on every core."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch

from synthdspy.configio import ConfigError


@dataclass
class Runtime:
    """Where and how the model runs: ``device``, autocast ``dtype`` (None = float32), ``compile``."""

    device: torch.device
    dtype: torch.dtype | None
    compile: bool

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context for forward passes (a no-op in float32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def describe(self) -> str:
        """For logs: ``cuda bfloat16 compiled`` / ``cpu float32 (2 threads)``."""
        dtype = "float32" if self.dtype is None else str(self.dtype).removeprefix("torch.")
        extra = " compiled" if self.compile else ""
        if self.device.type == "cpu":
            extra += f" ({torch.get_num_threads()} threads)"
        return f"{self.device.type} {dtype}{extra}"


def resolve_runtime(device: str, dtype: str, compile: str, threads: int | None) -> Runtime:
    """Resolve the trainer's ``device``/``dtype``/``compile`` settings (``auto`` as described above).

    On CPU the thread count is set to ``threads`` or ``os.cpu_count()``; on CUDA TF32 matmuls are
    enabled for any float32 work left.

    Raises:
        ConfigError: ``cuda`` requested without a CUDA device, or bfloat16 on a GPU without it.
    """
    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise ConfigError("trainer.device: cuda requested but torch sees no CUDA device")
    dev = torch.device("cuda" if device == "cuda" or (device == "auto" and has_cuda) else "cpu")
    if dev.type == "cpu":
        torch.set_num_threads(threads or os.cpu_count() or 1)
        autocast = None if dtype in ("auto", "float32") else torch.bfloat16
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        if dtype != "float32" and not torch.cuda.is_bf16_supported():
            if dtype == "bfloat16":
                raise ConfigError("trainer.dtype: this GPU does not support bfloat16")
            autocast = None
        else:
            autocast = None if dtype == "float32" else torch.bfloat16
    use_compile = compile == "on" or (compile == "auto" and dev.type == "cuda")
    return Runtime(device=dev, dtype=autocast, compile=use_compile)


def mfu(flops_per_token: float, tokens_per_s: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: achieved training FLOP/s over the accelerator's peak.

    ``flops_per_token`` is ``6N + 12 L H Q T`` (PaLM, Chowdhery et al. 2022, appendix B), as in
    nanoGPT's ``estimate_mfu``.
    """
    return flops_per_token * tokens_per_s / peak_flops
