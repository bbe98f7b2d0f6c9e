"""Run synchronous DSPy module code as event-loop tasks, awaiting LM calls on DSPy's async path.

A generation unit is a program of ordinary synchronous DSPy modules (a task, then gates), whose
``forward`` calls predictors, which call the LM. :func:`spawn` runs such a ``forward`` in a
greenlet (the `greenlet` library, the bridge SQLAlchemy's asyncio extension is built on); when the
LM is called inside it, :func:`await_only` switches back to the event loop, which awaits the
LM's ``acall`` (DSPy's async LM path on the async LiteLLM client) and resumes the greenlet with the
answer. So thousands of units can wait on the network from one thread, while every task and gate
keeps one synchronous ``forward`` instead of a second ``aforward`` copy of its logic.

Context: each unit's greenlet runs in a copy of the spawning context (DSPy settings, the LM roles,
the unit's call log); each awaited coroutine runs in a copy of the greenlet's context at that call.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from greenlet import getcurrent, greenlet

T = TypeVar("T")
BLOCKING_THREADS = 8
_blocking_pool: ThreadPoolExecutor | None = None


class _UnitGreenlet(greenlet):  # type: ignore[misc]
    """A greenlet whose ``parent`` is the event-loop side of :func:`spawn`."""

    bridged = True


def active() -> bool:
    """True inside a unit started by :func:`spawn` (LM calls may be awaited on the loop)."""
    return getattr(getcurrent(), "bridged", False)


def await_only(awaitable: Awaitable[T]) -> T:
    """Inside :func:`spawn`: suspend this greenlet until the event loop has awaited ``awaitable``;
    return its result or raise its exception.

    Raises:
        RuntimeError: called outside :func:`spawn` (the awaitable is closed, not leaked).
    """
    current = getcurrent()
    if not getattr(current, "bridged", False):
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        raise RuntimeError("await_only() called outside a greenlet started by synthdspy.greenlet_bridge.spawn")
    return current.parent.switch((awaitable, contextvars.copy_context()))


def call_blocking(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on a worker thread when inside :func:`spawn` (CPU-heavy or blocking work such
    as embedding dedup or sandboxed code must not stall the event loop), else directly. The
    threads (``BLOCKING_THREADS``) are not the loop's default executor, which DSPy's async LM path
    uses for short steps: a long sandbox run never delays another unit's LM call."""
    global _blocking_pool
    if not active():
        return fn(*args)
    if _blocking_pool is None:
        _blocking_pool = ThreadPoolExecutor(BLOCKING_THREADS, thread_name_prefix="synthdspy-blocking")
    ctx = contextvars.copy_context()
    return await_only(asyncio.get_running_loop().run_in_executor(_blocking_pool, ctx.run, fn, *args))


async def spawn(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` in a new greenlet in a copy of the current context, awaiting on this
    event loop every awaitable it hands to :func:`await_only`; return its result or raise its
    exception. Cancelling this coroutine throws the cancellation into the greenlet's pending
    :func:`await_only`, so ``finally`` blocks in ``fn`` run.
    """
    unit = _UnitGreenlet(fn)
    unit.gr_context = contextvars.copy_context()
    request = unit.switch(*args)
    while not unit.dead:
        awaitable, ctx = request
        try:
            result = await asyncio.get_running_loop().create_task(_awaited(awaitable), context=ctx)
        except BaseException as exc:  # the LM call failed, or this task was cancelled
            request = unit.throw(exc)
        else:
            request = unit.switch(result)
    return request


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable
