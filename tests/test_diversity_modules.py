"""The diversity package keeps the project's module rules: at most 400 lines a module, and one usage
meter (:class:`synthdspy.usage.UsageMeter`) for its LM calls."""

from __future__ import annotations

import ast
from pathlib import Path

from test_diversity_cluster_agent import memory_cache  # noqa: F401

import synthdspy.metrics.diversity as package

MODULES = sorted(Path(package.__file__).parent.glob("*.py"))


def test_every_module_has_at_most_400_lines() -> None:
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in MODULES}
    assert {name: n for name, n in sizes.items() if n > 400} == {}


def test_no_module_defines_its_own_usage_meter() -> None:
    defined = {(p.name, node.name) for p in MODULES for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
               if isinstance(node, ast.ClassDef) and "usage" in node.name.lower()}
    assert defined == set()


def test_a_round_reports_its_calls_through_the_project_meter() -> None:
    from test_diversity_cluster_agent import canned_lm, topic_handler

    from synthdspy.metrics.diversity.cluster_agent import ClusterBatchScore, DiversityCriteria
    from synthdspy.signatures.diversity import Criterion
    from synthdspy.usage import RoleUsage

    criteria = DiversityCriteria(criteria=(Criterion(name="topic", kind="metadata", definition="by topic"),))
    lm, _ = canned_lm(topic_handler())
    result = ClusterBatchScore(criteria, lm=lm, k_samples=4)(["a x", "a y", "b z", "c w"])
    assert result.score is not None
    assert isinstance(result.round.usage, RoleUsage)
    assert (result.round.usage.calls, result.round.usage.prompt_tokens) == (2, 200)  # cluster + verify
