"""The metrics ``synthdspy diversity`` measures, and which direction of each means "more diverse"."""

from __future__ import annotations

OFFLINE_METRICS = (
    "context_length",
    "self_repetition",
    "ngram_diversity",
    "compression_ratio",
    "homogenization_rougel",
    "homogenization_bleu",
    "kmeans_score",
    "vendi_score",
)
PPL_METRICS = ("perplexity", "perplexity_gap")
LLM_METRIC = "llm_cluster"
ALL_METRICS = (*OFFLINE_METRICS, *PPL_METRICS, LLM_METRIC)

#: Which direction means "more diverse" for each metric (shown in the table header and chart titles);
#: None for a descriptive metric with no diversity direction (longer texts are not more diverse ones).
HIGHER_IS_DIVERSE: dict[str, bool | None] = {
    "context_length": None,
    "self_repetition": False,
    "ngram_diversity": True,
    "compression_ratio": False,
    "homogenization_rougel": False,
    "homogenization_bleu": False,
    "kmeans_score": True,
    "vendi_score": True,
    "perplexity": True,
    "perplexity_gap": True,
    LLM_METRIC: True,
}


def arrow(metric: str) -> str:
    """``↑`` (higher is more diverse), ``↓`` (lower is) or ``""`` (no direction) for table headers."""
    direction = HIGHER_IS_DIVERSE[metric]
    return "" if direction is None else "↑" if direction else "↓"


def direction_text(metric: str) -> str:
    """What a chart of ``metric`` should say about its direction, e.g. ``higher = more diverse``."""
    direction = HIGHER_IS_DIVERSE[metric]
    if direction is None:
        return "descriptive, not a diversity score"
    return "higher = more diverse" if direction else "lower = more diverse"
