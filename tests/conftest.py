"""Test session setup: a fresh DSPy cache per session, so cached answers from earlier runs never
mask work a test expects to happen (subprocesses inherit the variable); under CI, a bubblewrap
that does not work fails the session instead of skipping every sandbox test."""

import glob
import os
import tempfile
from pathlib import Path

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


def require_shared_data(path: str | os.PathLike[str]) -> Path:
    """Fail (never skip) when ``path`` under ``../shared/data`` is missing: CI always has the shared data, so
    a missing file means a broken environment, not an optional feature. ``path`` is a file, directory or
    glob, absolute or relative to the working directory (``../shared/data/...``). Returns it as a ``Path``.
    Raises pytest's failure exception with a one-line message naming the missing path."""
    target = Path(path)
    if not (target.exists() or any(glob.glob(str(target)))):
        pytest.fail(f"{target} is missing: this test reads ../shared/data, which CI always has", pytrace=False)
    return target


@pytest.fixture
def shared_data():
    """``require_shared_data`` as a fixture: ``shared_data(path)`` fails the test when ``path`` is missing."""
    return require_shared_data


@pytest.fixture
def needs_shared_data() -> Path:
    """Fail the test when ``../shared/data`` itself is missing; use as ``pytest.mark.usefixtures("needs_shared_data")``
    where a skip on the data directory used to be. Returns the directory."""
    return require_shared_data(Path(__file__).resolve().parents[1].parent / "shared" / "data")
