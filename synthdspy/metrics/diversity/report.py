"""``synthdspy diversity``: measure one or more text sets side by side and report.

Loads each input with the seed readers (:mod:`synthdspy.metrics.diversity.inputs`: JSONL, JSON, CSV,
Parquet, ``hf://``, a ``datasets`` directory, documents), computes the requested metrics, and writes
into the output directory (default ``runs/diversity/<name of the inputs>``) ``diversity.json``,
``diversity.md`` (the table), one bar chart PNG per metric comparing the inputs, the cluster-agent's
artifacts when an LM is given, and an MLflow run (SQLite store in the output directory unless a
tracking URI is given). Off a terminal, each stage prints plain progress lines to stderr.

When several inputs are compared with the cluster-agent, the criteria are generated once from
a pool drawing equally from every input (or loaded with ``criteria_path``) and frozen, so every
input is clustered under the same criteria.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from synthdspy.configio import ConfigError
from synthdspy.metrics.diversity import lexical
from synthdspy.metrics.diversity.charts import plot_metrics
from synthdspy.metrics.diversity.inputs import input_names, load_texts, run_name
from synthdspy.metrics.diversity.names import ALL_METRICS, LLM_METRIC, OFFLINE_METRICS, PPL_METRICS, arrow
from synthdspy.metrics.diversity.progress import note

RUNS_DIR = Path("runs") / "diversity"
"""Parent of the default output directory, ``runs/diversity/<name>`` (:func:`inputs.run_name`)."""


def offline_metrics(
    texts: Sequence[str],
    metrics: Sequence[str],
    ppl_models: Sequence[str] = (),
    max_pairwise_texts: int | None = lexical.DEFAULT_MAX_PAIRWISE_TEXTS,
    seed: int = 0,
) -> dict[str, float]:
    """Compute the requested non-LLM metrics of one text set.

    Args:
        texts: the documents.
        metrics: names from :data:`OFFLINE_METRICS` and :data:`PPL_METRICS`.
        ppl_models: local causal-LM directories: the first for ``perplexity``, the first two
            (small, large) for ``perplexity_gap``.
        max_pairwise_texts: cap of the quadratic homogenization metrics (seeded sample).
        seed: seed of that sample and of k-means.

    Returns:
        metric name -> value.

    Raises:
        ConfigError: a perplexity metric without enough models, or an unknown metric name.
    """
    from synthdspy.metrics.diversity import embedding

    out: dict[str, float] = {}
    simple = {
        "context_length": lambda: lexical.context_length(texts),
        "self_repetition": lambda: lexical.self_repetition_score(texts),
        "ngram_diversity": lambda: lexical.ngram_diversity_score(texts),
        "compression_ratio": lambda: lexical.compression_ratio(texts),
        "homogenization_rougel": lambda: lexical.homogenization_rougel(texts, max_pairwise_texts, seed),
        "homogenization_bleu": lambda: lexical.homogenization_bleu(texts, max_pairwise_texts, seed),
    }
    vectors = None
    for name in metrics:
        if name in simple:
            out[name] = simple[name]()
        elif name in ("kmeans_score", "vendi_score"):
            vectors = embedding.embed_texts(texts) if vectors is None else vectors
            out[name] = (embedding.kmeans_cluster_score(vectors, seed=seed) if name == "kmeans_score"
                         else embedding.vendi_score(vectors))
        elif name in PPL_METRICS:
            out[name] = _perplexity_metric(name, texts, ppl_models)
        elif name != LLM_METRIC:
            raise ConfigError(f"unknown diversity metric '{name}'; choose from {', '.join(ALL_METRICS)}")
    return out


def _perplexity_metric(name: str, texts: Sequence[str], ppl_models: Sequence[str]) -> float:
    from synthdspy.metrics.diversity import perplexity

    needed = 1 if name == "perplexity" else 2
    if len(ppl_models) < needed:
        raise ConfigError(f"metric '{name}' needs {needed} --ppl-model path(s), got {len(ppl_models)}")
    if name == "perplexity":
        return perplexity.perplexity(texts, ppl_models[0])
    return perplexity.perplexity_gap(texts, ppl_models[0], ppl_models[1])


class InputReport(BaseModel):
    """One measured input."""

    name: str
    path: str
    n_texts: int
    metrics: dict[str, float]
    cluster_agent: dict[str, Any] | None = None


class DiversityReport(BaseModel):
    """Everything ``synthdspy diversity`` measured; saved as ``diversity.json``.

    ``simulated``: the cluster-agent's LM was the offline simulator (its scores exercise the
    pipeline, they are not a real model's judgement). ``criteria_usage``: billed tokens and cost of
    generating the shared cluster-agent criteria (zero when loaded or replayed from the cache);
    each input's clustering usage is in its ``cluster_agent["usage"]``.
    """

    inputs: list[InputReport]
    metrics: list[str]
    text_field: str
    output_dir: str
    simulated: bool = False
    criteria_usage: dict[str, Any] | None = None
    tracking_uri: str | None = None
    figures: list[str] = []

    def llm_usage(self) -> str:
        """Total billed cluster-agent usage, criteria plus every input's rounds, as one sentence:
        ``C calls, N prompt + M completion tokens, $X`` (see :meth:`synthdspy.usage.RoleUsage.cost_text`
        for calls LiteLLM has no price for)."""
        from synthdspy.usage import RoleUsage

        total = RoleUsage(**(self.criteria_usage or {}))
        for item in self.inputs:
            if item.cluster_agent and item.cluster_agent.get("usage"):
                total = total + RoleUsage(**item.cluster_agent["usage"])
        return (f"{total.calls} calls, {total.prompt_tokens} prompt + {total.completion_tokens} completion tokens, "
                f"{total.cost_text()}")


def markdown_table(report: DiversityReport) -> str:
    """The report as a Markdown table: one row per input, one column per metric (up/down arrow:
    the direction that means more diverse; none for a descriptive metric such as context length)."""
    columns = [m for m in report.metrics if any(m in i.metrics for i in report.inputs)]
    head = ["input", "n"] + [f"{m} {arrow(m)}".rstrip() for m in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for item in report.inputs:
        cells = [item.name, str(item.n_texts)]
        for m in columns:
            value = item.metrics.get(m)
            cells.append("" if value is None else _format(m, value, item))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(report: DiversityReport) -> str:
    """``diversity.md``: a simulator warning when the cluster-agent was simulated, the table, and
    the cluster-agent's billed usage."""
    lines = []
    if report.simulated:
        lines += ["> **Simulated LM.** The llm_cluster scores come from the offline simulator: they exercise",
                  "> the pipeline and are not a real model's judgement.", ""]
    lines.append(markdown_table(report))
    if report.criteria_usage is not None:
        lines += ["", f"Cluster-agent LM usage (billed, cache hits free): {report.llm_usage()}."]
    return "\n".join(lines) + "\n"


def _format(metric: str, value: float, item: InputReport) -> str:
    if metric == LLM_METRIC and item.cluster_agent and item.cluster_agent.get("interval"):
        half = item.cluster_agent["interval"]["half_width"]
        return f"{value:.3f} ± {half:.3f}"
    return f"{value:.4g}"


def pooled_sample(texts_by_input: Sequence[Sequence[str]], size: int, seed: int) -> list[str]:
    """Up to ``size`` texts drawn equally from every input (seeded): the corpus criteria come from."""
    rng = random.Random(seed)
    share = max(1, size // max(1, len(texts_by_input)))
    pool: list[str] = []
    for texts in texts_by_input:
        pool.extend(rng.sample(list(texts), min(share, len(texts))))
    return pool


def run_diversity(
    paths: Sequence[str | Path],
    text_field: str = "text",
    metrics: Sequence[str] = OFFLINE_METRICS,
    output_dir: str | Path | None = None,
    ppl_models: Sequence[str] = (),
    lm: Any | None = None,
    cluster_config: Any | None = None,
    criteria_path: str | Path | None = None,
    max_pairwise_texts: int | None = lexical.DEFAULT_MAX_PAIRWISE_TEXTS,
    seed: int = 0,
    tracking_uri: str | None = None,
    experiment: str = "diversity",
) -> DiversityReport:
    """Measure every input, write the JSON, Markdown table, PNGs and MLflow run.

    Args:
        paths: inputs (any seed source, see :func:`~synthdspy.metrics.diversity.inputs.load_texts`),
            compared side by side.
        text_field: the field holding the text (a dotted path reaches nested values).
        metrics: metric names (:data:`ALL_METRICS`); ``llm_cluster`` runs only when ``lm`` is
            given and is added automatically then.
        output_dir: where everything is written (created); None: ``runs/diversity/<name>`` in the
            working directory, the name from the inputs (:func:`~synthdspy.metrics.diversity.inputs.run_name`).
        ppl_models: local causal-LM directories for the perplexity metrics.
        lm: a DSPy LM for the cluster-agent (None: skipped).
        cluster_config: :class:`~synthdspy.metrics.diversity.cluster_agent.ClusterAgentConfig`.
        criteria_path: frozen criteria JSON to reuse (else generated from a pooled sample and
            saved to ``output_dir/criteria.json``).
        max_pairwise_texts: cap of the quadratic homogenization metrics.
        seed: seed of every sampled quantity.
        tracking_uri: MLflow URI (default: SQLite in ``output_dir``).
        experiment: MLflow experiment name.

    Raises:
        SeedLoadError: an input that cannot be read (see :func:`load_texts`).
        ConfigError: unknown metric names, a ``criteria_path`` that is a directory or not criteria.
        FileNotFoundError: no file at ``criteria_path``.
    """
    from synthdspy import tracking
    from synthdspy.metrics.diversity.criteria import DiversityCriteria

    unknown = [m for m in metrics if m not in ALL_METRICS]
    if unknown:
        raise ConfigError(f"unknown diversity metric(s) {unknown}; choose from {', '.join(ALL_METRICS)}")
    metrics = [m for m in metrics if m != LLM_METRIC] + ([LLM_METRIC] if lm is not None else [])
    criteria = DiversityCriteria.load(criteria_path) if lm is not None and criteria_path is not None else None
    names = input_names(paths)
    texts_by_input = [load_texts(p, text_field) for p in paths]
    out = Path(output_dir) if output_dir is not None else RUNS_DIR / run_name(paths)
    out.mkdir(parents=True, exist_ok=True)
    items = []
    for number, (name, p, texts) in enumerate(zip(names, paths, texts_by_input, strict=True), 1):
        note(f"offline metrics: {name} ({number}/{len(names)})")
        items.append(InputReport(name=name, path=str(p), n_texts=len(texts),
                                 metrics=offline_metrics(texts, metrics, ppl_models, max_pairwise_texts, seed)))
    report = DiversityReport(inputs=items, metrics=list(metrics), text_field=text_field, output_dir=str(out),
                             simulated=lm is not None and str(getattr(lm, "model", "")).startswith("sim/"))
    if lm is not None:
        report.criteria_usage = _run_cluster_agent(items, texts_by_input, lm, cluster_config, criteria, out, seed)
    report.figures = [str(p) for p in plot_metrics(report, out)]
    (out / "diversity.md").write_text(markdown(report), encoding="utf-8")
    report.tracking_uri = tracking.configure(tracking_uri, experiment, out)
    (out / "diversity.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
    _log_mlflow(report, out, seed, max_pairwise_texts, cluster_config)
    return report


def _run_cluster_agent(items: list[InputReport], texts_by_input: list[list[str]], lm: Any,
                       cluster_config: Any | None, criteria: Any | None, out: Path, seed: int) -> dict[str, Any]:
    """Cluster every input under one set of criteria (``criteria``, or generated from a pooled sample);
    returns what generating the criteria cost, as a :class:`~synthdspy.usage.RoleUsage` dict."""
    from dataclasses import asdict

    from synthdspy.metrics.diversity.cluster_agent import ClusterAgentConfig, CriteriaGenerator, run_cluster_agent
    from synthdspy.usage import RoleUsage

    config = cluster_config or ClusterAgentConfig(seed=seed)
    usage = RoleUsage()
    if criteria is None:
        import dspy

        pool = pooled_sample(texts_by_input, size=max(200, 20 * config.criteria_samples), seed=seed)
        with dspy.context(lm=lm):
            made = CriteriaGenerator()(texts=pool, config=config)
        criteria, usage = made.criteria, made.usage
    criteria.save(out / "criteria.json")
    for item, texts in zip(items, texts_by_input, strict=True):
        label = f"cluster-agent on {item.name}"
        result = run_cluster_agent(texts, lm=lm, config=config, criteria=criteria, label=label)
        result.save(out / "cluster_agent" / item.name)
        if result.score is not None:
            item.metrics[LLM_METRIC] = result.score
        item.cluster_agent = result.summary()
    return asdict(usage)


def _log_mlflow(report: DiversityReport, out: Path, seed: int, max_pairwise_texts: int | None,
                cluster_config: Any | None) -> None:
    import mlflow

    from synthdspy import tracking

    params = {"inputs": [i.path for i in report.inputs], "text_field": report.text_field,
              "metrics": report.metrics, "seed": seed, "max_pairwise_texts": max_pairwise_texts}
    if cluster_config is not None:
        params["cluster_agent"] = cluster_config.model_dump()
    tags = {"synthdspy.command": "diversity", "simulated": str(report.simulated)}
    with tracking.run("diversity", params=params, tags=tags):
        if report.criteria_usage:
            tracking.log_metrics({f"criteria.{k}": v for k, v in report.criteria_usage.items()})
        for item in report.inputs:
            tracking.log_metrics({f"{item.name}.{k}": v for k, v in item.metrics.items()})
            if item.cluster_agent and item.cluster_agent.get("usage"):
                usage = item.cluster_agent["usage"]
                tracking.log_metrics({f"{item.name}.llm_prompt_tokens": usage["prompt_tokens"],
                                      f"{item.name}.llm_completion_tokens": usage["completion_tokens"]})
        for path in [out / "diversity.json", out / "diversity.md", *map(Path, report.figures)]:
            mlflow.log_artifact(str(path))
        if (out / "cluster_agent").is_dir():
            mlflow.log_artifact(str(out / "criteria.json"))
            mlflow.log_artifacts(str(out / "cluster_agent"), artifact_path="cluster_agent")
