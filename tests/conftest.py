"""Test session setup: a fresh DSPy cache per session, so cached answers from earlier runs never
mask work a test expects to happen (subprocesses inherit the variable); under CI, a bubblewrap
that does not work fails the session instead of skipping every sandbox test."""

import os
import tempfile

import pytest

os.environ["DSPY_CACHEDIR"] = tempfile.mkdtemp(prefix="synthdspy-dspy-cache-")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under CI (``CI`` set, as ``.ci/run``'s runner does), refuse to run when bubblewrap does not
    work: the code_tests sandbox tests would all be skipped and the run would look green."""
    from synthdspy.gates.sandbox_bwrap import bubblewrap_problem

    problem = bubblewrap_problem() if os.environ.get("CI") else None
    if problem:
        raise pytest.UsageError(f"CI must run the code_tests sandbox tests, but bubblewrap does not work: {problem}")
