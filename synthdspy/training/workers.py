"""Independent proxy trainings spread over worker processes (the experiments of ``collapse`` and
``curriculum_compare``).

The small matrices of a proxy model parallelise poorly over threads, so N processes of one thread
each usually finish N independent trainings sooner than one process using N threads. A training
config run in a worker should set ``trainer.threads`` to :func:`threads_per_worker` (the trainer
sets torch's thread count from it).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def threads_per_worker(workers: int) -> int | None:
    """CPU threads for each of ``workers`` processes (``None``: one process uses every core)."""
    return None if workers <= 1 else max(1, (os.cpu_count() or 1) // workers)


def run_all(fn: Callable[[T], R], items: Sequence[T], workers: int = 1) -> Iterator[tuple[int, R]]:
    """``(index, fn(item))`` for every item, in completion order.

    With ``workers > 1``, ``fn`` (a module-level function) runs in that many spawned processes,
    each limited to :func:`threads_per_worker` torch threads; otherwise in this process, in order.
    An exception raised by ``fn`` propagates (remaining items are cancelled).
    """
    if workers <= 1 or len(items) <= 1:
        for i, item in enumerate(items):
            yield i, fn(item)
        return
    ctx = multiprocessing.get_context("spawn")
    threads = threads_per_worker(workers)
    with ProcessPoolExecutor(min(workers, len(items)), mp_context=ctx, initializer=_limit_threads,
                             initargs=(threads,)) as pool:
        futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
        try:
            for fut in as_completed(futures):
                yield futures[fut], fut.result()
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise


def _limit_threads(threads: int | None) -> None:
    """Worker initializer: torch uses ``threads`` CPU threads."""
    import torch

    if threads:
        torch.set_num_threads(threads)
