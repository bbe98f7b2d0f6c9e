"""The cluster-agent's criteria step (Chen et al. 2024, sec. 2.1, appendix B.2): M rounds, each
showing J random samples to the LM, which proposes 3-5 metadata attributes and 3-5 metrics with 1-5
scoring rules; the proposals are gathered by name and merged into k metadata and k metrics; each is
condensed to one sentence. The result, :class:`DiversityCriteria`, is frozen and can be saved and
loaded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dspy
from pydantic import BaseModel, ConfigDict, Field

from synthdspy.configio import ConfigError
from synthdspy.metrics.diversity.agent_config import ClusterAgentConfig
from synthdspy.metrics.diversity.progress import ProgressLines, run_parallel
from synthdspy.metrics.diversity.rounds import (
    CRITERIA_STREAM,
    JUDGE,
    indexed,
    reason,
    rollout_config,
    sample_indices,
)
from synthdspy.signatures.diversity import (
    CondenseCriteria,
    Criterion,
    CriterionDraft,
    MergeMetadata,
    MergeMetrics,
    ProposeCriteria,
)
from synthdspy.usage import UsageMeter


class DiversityCriteria(BaseModel):
    """Frozen clustering criteria: k metadata and k metrics, one sentence each.

    ``provenance`` records how they were made (J, M, k, seed, LM, rounds used and skipped).
    """

    model_config = ConfigDict(frozen=True)

    criteria: tuple[Criterion, ...]
    provenance: dict[str, Any] = Field(default_factory=dict)

    def prompt_text(self) -> str:
        """The criteria as the numbered list given to the clustering step."""
        return "\n".join(f"{i}. {c.name} ({c.kind}): {c.definition}" for i, c in enumerate(self.criteria, 1))

    def save(self, path: str | Path) -> Path:
        """Write the criteria as JSON to ``path`` (parent directories created); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> DiversityCriteria:
        """Read criteria saved by :meth:`save`.

        Raises:
            FileNotFoundError: no such file.
            ConfigError: ``path`` is a directory, or the file is not valid criteria JSON (one line
                naming the path).
        """
        path = Path(path)
        if path.is_dir():
            raise ConfigError(f"{path}: is a directory; expected the criteria JSON file a run saved "
                              f"(criteria.json, e.g. {path / 'criteria.json'})")
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise
        except ValueError as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(f"{path}: not a saved DiversityCriteria file: {first}") from None


def _normalize_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def gather_proposals(drafts: Sequence[CriterionDraft], max_candidates: int) -> dict[str, list[str]]:
    """Group proposals by normalized name (lower-case, non-alphanumerics to ``_``).

    Returns:
        name -> its definitions, the ``max_candidates`` most frequent names first (ties by
        first appearance), the input of the merge step.
    """
    groups: dict[str, list[str]] = {}
    for draft in drafts:
        key = _normalize_name(draft.name)
        if key:
            groups.setdefault(key, []).append(draft.definition)
    ranked = sorted(groups, key=lambda k: -len(groups[k]))[:max_candidates]
    return {k: groups[k] for k in ranked}


def _final_criteria(meta: Sequence[CriterionDraft], metrics: Sequence[CriterionDraft],
                    condensed: Sequence[Criterion]) -> list[Criterion]:
    """One criterion per merged item: its condensed sentence, or its merged definition if the
    condense answer skipped it."""
    sentences = {_normalize_name(c.name): c.definition for c in condensed}
    out = []
    for kind, items in (("metadata", meta), ("metric", metrics)):
        for item in items:
            sentence = sentences.get(_normalize_name(item.name), item.definition)
            out.append(Criterion(name=item.name, kind=kind, definition=sentence))
    return out


class CriteriaGenerator(dspy.Module):
    """Criteria step (Chen et al. 2024, sec. 2.1): propose over M rounds, merge, condense.

    ``forward(texts, config)`` returns a ``dspy.Prediction`` with ``criteria``
    (:class:`DiversityCriteria`), ``skipped`` (list of (round, reason)) and ``usage``
    (:class:`~synthdspy.usage.RoleUsage` of all its billed calls). Off a terminal it prints
    progress lines (:class:`~synthdspy.metrics.diversity.progress.ProgressLines`).

    Raises:
        RuntimeError: every proposal round failed, or a merge or condense call failed (the
            message carries the reasons).
    """

    def __init__(self) -> None:
        super().__init__()
        self.propose = dspy.Predict(ProposeCriteria)
        self.merge_metadata = dspy.Predict(MergeMetadata)
        self.merge_metrics = dspy.Predict(MergeMetrics)
        self.condense = dspy.Predict(CondenseCriteria)

    def _propose_round(self, samples: dict[int, str], rollout_id: int) -> dspy.Prediction:
        config = rollout_config(dspy.settings.lm, rollout_id)
        meter = UsageMeter()
        try:
            with meter.track(JUDGE):
                pred = self.propose(samples=samples, config=config)
            return dspy.Prediction(metadata=pred.metadata, metrics=pred.metrics, usage=meter.total())
        except Exception as exc:  # a bad answer skips the round
            return dspy.Prediction(skipped=reason(exc), usage=meter.total())

    def forward(self, texts: Sequence[str], config: ClusterAgentConfig) -> dspy.Prediction:
        j = min(config.criteria_samples, len(texts))
        jobs = []
        for r in range(config.criteria_rounds):
            ids = sample_indices(len(texts), j, config.seed, CRITERIA_STREAM, r)
            jobs.append((self._propose_round, {"samples": indexed([texts[i] for i in ids]), "rollout_id": r}))
        progress = ProgressLines("criteria", total=config.criteria_rounds, unit="rounds")
        preds = run_parallel(jobs, config.num_threads, progress)
        progress.finish()
        skipped = [(r, p.get("skipped", "no answer") if p else "no answer")
                   for r, p in enumerate(preds) if p is None or p.get("skipped")]
        ok = [p for p in preds if p is not None and not p.get("skipped")]
        if not ok:
            reasons = "; ".join(f"round {r}: {why}" for r, why in skipped[:3])
            raise RuntimeError(f"all {config.criteria_rounds} criteria rounds failed ({reasons})")
        meta = gather_proposals([d for p in ok for d in p.metadata], config.max_candidates)
        metrics = gather_proposals([d for p in ok for d in p.metrics], config.max_candidates)
        meter = UsageMeter()
        try:
            with meter.track(JUDGE):
                merged_meta = self.merge_metadata(proposals=meta, k=config.n_criteria)
                merged_metrics = self.merge_metrics(proposals=metrics, k=config.n_criteria)
                condensed = self.condense(metadata=merged_meta.merged, metrics=merged_metrics.merged)
        except Exception as exc:
            raise RuntimeError(f"merging the criteria failed: {reason(exc)}") from exc
        criteria = _final_criteria(merged_meta.merged, merged_metrics.merged, condensed.criteria)
        lm = dspy.settings.lm
        provenance = {
            "J": j, "M": config.criteria_rounds, "k": config.n_criteria, "seed": config.seed,
            "lm": getattr(lm, "model", str(lm)), "rounds_used": len(ok), "rounds_skipped": len(skipped),
            "proposal_counts": {"metadata": {k: len(v) for k, v in meta.items()},
                                "metrics": {k: len(v) for k, v in metrics.items()}},
        }
        usage = sum((p.usage for p in preds if p is not None), meter.total())
        return dspy.Prediction(criteria=DiversityCriteria(criteria=tuple(criteria), provenance=provenance),
                               skipped=skipped, usage=usage)

