"""Parameters of the LLM cluster-agent (Chen et al. 2024, sec. 2.1 and appendix D), with one set of
defaults for every command that runs it: ``synthdspy diversity`` takes its option defaults from
:class:`ClusterAgentConfig`, and the compile objective's ``[objective.cluster_agent]`` table
(:class:`synthdspy.config.ClusterAgentObjective`) takes J, M, k and verification from it too.

This module imports nothing but pydantic, so the configuration schema can use it without loading DSPy.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ClusterAgentConfig(BaseModel):
    """Parameters of the cluster-agent; the paper's values (Chen et al. 2024) are the defaults.

    Attributes:
        criteria_samples: J, samples shown per criteria round (paper 5).
        criteria_rounds: M, criteria rounds (paper 100).
        n_criteria: k, metadata and metrics kept each (paper: the top few; 5 here).
        max_candidates: proposals passed to each merge call, most frequent first.
        k_samples: K, samples per clustering round (paper 10).
        cluster_rounds: N, clustering rounds, the maximum in adaptive mode (paper 5000).
        verify: run self-verification (paper yes).
        adaptive_tol: stop once the bootstrap interval's half-width is at most this; None runs
            all N rounds.
        min_rounds: scored rounds needed before the adaptive stop may trigger.
        chunk_rounds: rounds launched between two adaptive checks.
        confidence: level of the bootstrap interval.
        n_resamples: bootstrap resamples.
        seed: seeds every round's sample draw and the bootstrap.
        num_threads: concurrent LM calls.
    """

    criteria_samples: int = Field(5, ge=1)
    criteria_rounds: int = Field(100, ge=1)
    n_criteria: int = Field(5, ge=1)
    max_candidates: int = Field(30, ge=1)
    k_samples: int = Field(10, ge=2)
    cluster_rounds: int = Field(5000, ge=1)
    verify: bool = True
    adaptive_tol: float | None = Field(None, gt=0)
    min_rounds: int = Field(30, ge=2)
    chunk_rounds: int = Field(50, ge=1)
    confidence: float = Field(0.95, gt=0, lt=1)
    n_resamples: int = Field(2000, ge=100)
    seed: int = 0
    num_threads: int = Field(8, ge=1)

