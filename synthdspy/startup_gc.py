"""Start-up with the cyclic garbage collector held back, then its long-lived objects frozen.

Importing DSPy, LiteLLM and MLflow allocates millions of objects, few of them garbage. CPython's
collector (thresholds 700/10/10) runs its full, oldest-generation pass again and again over that
growing heap while they import: 0.6-0.8 s of LiteLLM's 2.7 s import on this project's machines.
:func:`hold` raises the youngest generation's threshold for the start-up; :func:`release`, called
once the long-running phase begins, moves everything alive into the permanent generation
(``gc.freeze``, Python >= 3.7, the technique Instagram described for its forked servers) and
restores the thresholds, so later collections no longer walk the imported modules either.
"""

from __future__ import annotations

import gc

_HOLD_THRESHOLD0 = 1_000_000  # allocations between young collections while held (default 700)
_saved: tuple[int, int, int] | None = None


def hold() -> None:
    """Collect rarely from now on (the collector stays enabled: garbage cycles are still freed)."""
    global _saved
    if _saved is None:
        _saved = gc.get_threshold()
        gc.set_threshold(_HOLD_THRESHOLD0, *_saved[1:])


def release() -> None:
    """End the start-up: freeze the objects alive now and restore the collector's thresholds
    (a no-op unless :func:`hold` was called and not yet released)."""
    global _saved
    if _saved is not None:
        gc.freeze()
        gc.set_threshold(*_saved)
        _saved = None
