"""Shared pieces of the simulator tests: a source passage, both adapters, a fresh in-memory DSPy cache
per test (import `memory_cache` into a test module to apply it) and a distinct-bigram measure."""

import dspy
import pytest
from dspy.clients.cache import Cache

SOURCE = (
    "Honeybees communicate the location of flowers through a waggle dance. The angle of the dance shows "
    "the direction relative to the sun. The duration of the waggle run encodes the distance to the food. "
    "Foragers that watch the dance fly out and search the indicated area. Colonies with many dancers find "
    "new patches faster. Scientists decoded the dance by moving feeders and filming the hive. Weather "
    "changes how often bees dance. Young workers rarely forage before they are three weeks old."
)
ADAPTERS = [dspy.ChatAdapter(use_json_adapter_fallback=False), dspy.JSONAdapter()]


@pytest.fixture(autouse=True)
def memory_cache(monkeypatch):
    """A fresh in-memory DSPy cache per test: no disk writes, no hits from earlier runs."""
    monkeypatch.setattr(
        dspy, "cache", Cache(enable_disk_cache=False, enable_memory_cache=True, disk_cache_dir=None)
    )


def distinct_bigram_ratio(texts: list[str]) -> float:
    grams = [tuple(w[i : i + 2]) for t in texts for w in [t.lower().split()] for i in range(len(w) - 1)]
    return len(set(grams)) / len(grams)
