"""Device selection: CUDA with bfloat16 autocast and torch.compile, or CPU in float32 on every core.

Under ``torchrun`` each process takes the GPU of its ``LOCAL_RANK``, or on CPU an equal share of
the cores (see :mod:`synthdspy.training.distributed`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch

from synthdspy.configio import ConfigError
from synthdspy.training.distributed import Dist


@dataclass
class Runtime:
    """Where and how the model runs: ``device``, autocast ``dtype`` (None = float32), ``compile``,
    and ``world``, the number of data-parallel processes."""

    device: torch.device
    dtype: torch.dtype | None
    compile: bool
    world: int = 1

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context for forward passes (a no-op in float32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def describe(self) -> str:
        """For logs: ``cuda bfloat16 compiled`` / ``cpu float32 (2 threads)`` / ``... x 2 processes``."""
        dtype = "float32" if self.dtype is None else str(self.dtype).removeprefix("torch.")
        extra = " compiled" if self.compile else ""
        if self.device.type == "cpu":
            extra += f" ({torch.get_num_threads()} threads)"
        if self.world > 1:
            extra += f" x {self.world} processes"
        return f"{self.device.type} {dtype}{extra}"


def resolve_runtime(
    device: str, dtype: str, compile: str, threads: int | None, dist: Dist | None = None
) -> Runtime:
    """Resolve the trainer's ``device``/``dtype``/``compile`` settings (``auto`` as described above).

    On CPU the thread count is set to ``threads`` or ``os.cpu_count()`` (divided among ``dist``'s
    processes on this machine); on CUDA TF32 matmuls are enabled for any float32 work left, and a
    process of ``dist`` takes ``cuda:LOCAL_RANK``.

    Raises:
        ConfigError: ``cuda`` requested without a CUDA device, bfloat16 on a GPU without it, or a
            ``LOCAL_RANK`` with no GPU of its own.
    """
    dist = dist or Dist()
    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise ConfigError("trainer.device: cuda requested but torch sees no CUDA device")
    dev = torch.device("cuda" if device == "cuda" or (device == "auto" and has_cuda) else "cpu")
    if dist.active and dev.type == "cuda":
        if dist.local_rank >= torch.cuda.device_count():
            raise ConfigError(f"torchrun: LOCAL_RANK {dist.local_rank} but torch sees "
                              f"{torch.cuda.device_count()} CUDA device(s); start at most that many per node")
        dev = torch.device("cuda", dist.local_rank)
    if dev.type == "cpu":
        torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // dist.local_world))
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
    return Runtime(device=dev, dtype=autocast, compile=use_compile, world=dist.world)


def mfu(flops_per_token: float, tokens_per_s: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: achieved training FLOP/s over the accelerator's peak.

    ``flops_per_token`` is ``6N + 12 L H Q T`` (PaLM, Chowdhery et al. 2022, appendix B), as in
    nanoGPT's ``estimate_mfu``.
    """
    return flops_per_token * tokens_per_s / peak_flops
