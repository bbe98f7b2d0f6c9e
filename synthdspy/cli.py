"""The ``synthdspy`` command line: thin wrappers that parse, load config and call library functions.

User errors (:class:`synthdspy.configio.ConfigError` and friends) are printed as one red message
with exit code 2, never as a stack trace.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from synthdspy.configio import ConfigError

app = typer.Typer(help="Synthetic training data as optimizable DSPy programs.", no_args_is_help=True)
console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

SET_HELP = "Override a config key, e.g. --set compile.optimizer=bootstrap_rs (repeatable)."


def user_errors(fn: F) -> F:
    """Turn user errors raised by ``fn`` into a one-line message and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ConfigError, FileNotFoundError) as exc:
            console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]



DIVERSITY_METRICS = (
    "context_length,self_repetition,ngram_diversity,compression_ratio,"
    "homogenization_rougel,homogenization_bleu,kmeans_score,vendi_score"
)


@app.command()
@user_errors
def diversity(
    data: list[str] = typer.Argument(..., help="JSONL/Parquet files or datasets directories."),
    text_field: str = typer.Option("text", "--text-field", "-f", help="Field holding the text."),
    metrics: str = typer.Option(DIVERSITY_METRICS, "--metrics", help="Comma-separated metric names."),
    output: str = typer.Option("diversity_report", "--output", "-o", help="Output directory."),
    ppl_model: list[str] = typer.Option(None, "--ppl-model", help="Causal-LM dir (small, then large)."),
    lm: str = typer.Option(None, "--lm", help="Cluster-agent judge LM (LiteLLM string or sim/...)."),
    cluster_rounds: int = typer.Option(5000, "--cluster-rounds", "-N", help="N (paper 5000)."),
    k_samples: int = typer.Option(10, "--k-samples", "-K", help="K (paper 10)."),
    criteria_rounds: int = typer.Option(100, "--criteria-rounds", "-M", help="M (paper 100)."),
    adaptive_tol: float = typer.Option(None, "--adaptive-tol", help="Stop at this CI half-width."),
    criteria: str = typer.Option(None, "--criteria", help="Frozen criteria JSON to reuse."),
    max_pairwise_texts: int = typer.Option(300, "--max-pairwise-texts", help="Homogenization cap."),
    seed: int = typer.Option(0, "--seed"),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow URI (default: SQLite in output)."),
) -> None:
    """Measure the diversity of text sets: lexical, embedding, perplexity and LLM cluster-agent metrics."""
    from synthdspy.metrics.diversity.report import markdown_table, run_diversity

    judge = cluster_config = None
    if lm is not None:
        from synthdspy.lm import lm_from_model_string
        from synthdspy.metrics.diversity.cluster_agent import ClusterAgentConfig

        judge = lm_from_model_string(lm, role="judge")
        cluster_config = ClusterAgentConfig(
            cluster_rounds=cluster_rounds, k_samples=k_samples, criteria_rounds=criteria_rounds,
            adaptive_tol=adaptive_tol, seed=seed,
        )
    report = run_diversity(
        data, text_field=text_field, metrics=[m.strip() for m in metrics.split(",") if m.strip()],
        output_dir=output, ppl_models=ppl_model or [], lm=judge, cluster_config=cluster_config,
        criteria_path=criteria, max_pairwise_texts=max_pairwise_texts, seed=seed, tracking_uri=tracking_uri,
    )
    typer.echo(markdown_table(report))
    console.print(f"wrote {report.output_dir}/diversity.json and {len(report.figures)} charts; "
                  f"MLflow: {report.tracking_uri}")
