"""Data-parallel proxy training across processes started by ``torchrun`` (DistributedDataParallel).

``torchrun`` (``torch.distributed.run``) starts one process per rank and sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` in each
one's environment; :func:`from_env` reads them, and ``WORLD_SIZE`` > 1 switches the trainer to
DistributedDataParallel (Li et al. 2020, "PyTorch Distributed", VLDB): gloo on CPU, NCCL on GPU,
one GPU per ``LOCAL_RANK``. Without them (or with ``WORLD_SIZE`` = 1) training is single-process.

The configured batch (``batch_size x grad_accum_steps`` rows) is the *global* batch of one
optimizer step. Every rank draws the whole step from the same seeded stream (so the sampler state
and the stop conditions stay identical on all ranks) and trains on its contiguous ``1 / WORLD_SIZE``
share of the rows; DDP averages the gradients, so a step sees the same examples as one process.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as tdist
from torch.nn.parallel import DistributedDataParallel

from synthdspy.configio import ConfigError


@dataclass
class Dist:
    """This process's place among the training processes (a single process: rank 0 of 1).

    ``device`` is set by :meth:`group` (the tensors of collectives live there: NCCL needs CUDA).
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    device: torch.device | None = None

    @property
    def active(self) -> bool:
        """Whether several processes train together."""
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs, calls back and writes files."""
        return self.rank == 0

    def share(self, batch_size: int, grad_accum_steps: int) -> int:
        """Rows of one optimizer step that this rank trains on: ``batch_size x grad_accum_steps / world``.

        Raises:
            ConfigError: when the global batch does not divide evenly across the processes.
        """
        rows = batch_size * grad_accum_steps
        if rows % self.world:
            raise ConfigError(
                f"trainer: the global batch of {rows} rows (batch_size {batch_size} x grad_accum_steps "
                f"{grad_accum_steps}) does not divide across WORLD_SIZE={self.world} processes; "
                f"make it a multiple of {self.world}"
            )
        return rows // self.world

    @contextlib.contextmanager
    def group(self, device: torch.device) -> Iterator[None]:
        """Join the process group for the duration of the block (NCCL on CUDA, gloo on CPU), then leave it.

        ``init_process_group`` reads ``MASTER_ADDR``/``MASTER_PORT``/``RANK``/``WORLD_SIZE`` (the
        ``env://`` rendezvous). A group that the caller initialised already is used and left alone.
        A no-op for a single process.
        """
        self.device = device
        if not self.active:
            yield
            return
        owned = not tdist.is_initialized()
        if owned:
            if device.type == "cuda":
                torch.cuda.set_device(device)
            tdist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        try:
            yield
        finally:
            if owned:
                tdist.destroy_process_group()

    def wrap(self, module: torch.nn.Module) -> DistributedDataParallel:
        """``module`` in DistributedDataParallel (rank 0's weights broadcast to every rank)."""
        on_gpu = self.device is not None and self.device.type == "cuda"
        return DistributedDataParallel(module, device_ids=[self.device] if on_gpu else None)

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sum of ``values`` over all ranks (float64); ``values`` unchanged for one process."""
        if not self.active:
            return list(values)
        t = torch.tensor(list(values), dtype=torch.float64, device=self.device)
        tdist.all_reduce(t)
        return t.tolist()

    def from_main(self, value: int) -> int:
        """Rank 0's ``value`` on every rank (a broadcast); ``value`` itself for one process."""
        if not self.active:
            return value
        t = torch.tensor([value], dtype=torch.int64, device=self.device)
        tdist.broadcast(t, src=0)
        return int(t.item())


def from_env(env: Mapping[str, str] | None = None) -> Dist:
    """The :class:`Dist` that ``torchrun``'s environment variables describe (``os.environ`` by default).

    Raises:
        ConfigError: a non-integer or inconsistent ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``LOCAL_WORLD_SIZE``.
    """
    env = os.environ if env is None else env
    keys = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        if world <= 1:
            return Dist()
        rank, local_rank = int(env.get("RANK", "0")), int(env.get("LOCAL_RANK", "0"))
        local_world = int(env.get("LOCAL_WORLD_SIZE", str(world)))
    except ValueError:
        raise ConfigError(f"torchrun environment: {', '.join(keys)} must be integers") from None
    if not (0 <= rank < world and 0 <= local_rank < local_world <= world):
        raise ConfigError(
            f"torchrun environment: RANK={rank}, LOCAL_RANK={local_rank}, LOCAL_WORLD_SIZE={local_world} "
            f"do not fit WORLD_SIZE={world}"
        )
    return Dist(rank=rank, world=world, local_rank=local_rank, local_world=local_world)


def is_main_process() -> bool:
    """Whether this process is rank 0 (or not started by ``torchrun`` at all); reads ``RANK`` only."""
    return os.environ.get("RANK", "0") == "0"
