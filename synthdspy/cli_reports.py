"""Report commands: ``diversity``, ``compare`` and ``gate-report``."""

from __future__ import annotations

import typer
from rich.console import Console

from synthdspy.cli_common import app, console, user_errors
from synthdspy.configio import ConfigError
from synthdspy.metrics.diversity.agent_config import ClusterAgentConfig

AGENT = ClusterAgentConfig()
"""The cluster-agent defaults, shared with ``compile``'s ``[objective.cluster_agent]``."""

DIVERSITY_METRICS = (
    "context_length,self_repetition,ngram_diversity,compression_ratio,"
    "homogenization_rougel,homogenization_bleu,kmeans_score,vendi_score"
)


@app.command()
@user_errors
def diversity(
    data: list[str] = typer.Argument(..., help="What seeds read: JSONL/JSON/CSV/Parquet files, hf:// ids, "
                                     "datasets directories (generate's export), documents (PDF, Markdown, HTML, "
                                     "text), folders or globs of them."),
    text_field: str = typer.Option("text", "--text-field", "-f", help="Field holding the text (dotted path for "
                                   "nested values; documents: their text)."),
    metrics: str = typer.Option(DIVERSITY_METRICS, "--metrics", help="Comma-separated metric names; also "
                                "perplexity,perplexity_gap (need --ppl-model). llm_cluster is added by --lm."),
    output: str = typer.Option(None, "--output", "-o", help="Output directory [default: runs/diversity/<name of "
                               "the inputs>]."),
    ppl_model: list[str] = typer.Option(None, "--ppl-model", help="A transformers causal-LM dir or a "
                                        "`synthdspy train` output dir (small model first, then large)."),
    lm: str = typer.Option(None, "--lm", help="Cluster-agent judge LM (LiteLLM string or sim/...)."),
    api_base: str = typer.Option(None, "--api-base", help="Server of --lm (vLLM, Ollama, a proxy)."),
    api_key_env: str = typer.Option(None, "--api-key-env", help="Environment variable holding --lm's API key."),
    cluster_rounds: int = typer.Option(AGENT.cluster_rounds, "--cluster-rounds", "-N", help="N (paper 5000)."),
    k_samples: int = typer.Option(AGENT.k_samples, "--k-samples", "-K", help="K (paper 10)."),
    criteria_rounds: int = typer.Option(AGENT.criteria_rounds, "--criteria-rounds", "-M", help="M (paper 100)."),
    criteria_samples: int = typer.Option(AGENT.criteria_samples, "--criteria-samples", "-J",
                                         help="J, samples per criteria round (paper 5)."),
    n_criteria: int = typer.Option(AGENT.n_criteria, "--n-criteria", help="k, metadata and metrics kept each."),
    threads: int = typer.Option(AGENT.num_threads, "--threads", help="Concurrent cluster-agent LM calls."),
    adaptive_tol: float = typer.Option(None, "--adaptive-tol", help="Stop at this CI half-width."),
    criteria: str = typer.Option(None, "--criteria", help="Frozen criteria JSON file to reuse (a run's "
                                 "criteria.json)."),
    max_pairwise_texts: int = typer.Option(300, "--max-pairwise-texts", help="Homogenization cap."),
    seed: int = typer.Option(0, "--seed"),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow URI (default: SQLite in output)."),
) -> None:
    """Measure the diversity of text sets: lexical, embedding, perplexity and LLM cluster-agent metrics."""
    from synthdspy.metrics.diversity.report import markdown_table, run_diversity

    judge = cluster_config = None
    if lm is not None:
        from synthdspy.lm import lm_from_model_string

        judge = lm_from_model_string(lm, role="judge", api_base=api_base, api_key_env=api_key_env)
        cluster_config = ClusterAgentConfig(
            cluster_rounds=cluster_rounds, k_samples=k_samples, criteria_rounds=criteria_rounds,
            criteria_samples=criteria_samples, n_criteria=n_criteria, num_threads=threads,
            adaptive_tol=adaptive_tol, seed=seed,
        )
    report = run_diversity(
        data, text_field=text_field, metrics=[m.strip() for m in metrics.split(",") if m.strip()],
        output_dir=output, ppl_models=ppl_model or [], lm=judge, cluster_config=cluster_config,
        criteria_path=criteria, max_pairwise_texts=max_pairwise_texts, seed=seed, tracking_uri=tracking_uri,
    )
    if report.simulated:
        console.print("[bold yellow]llm_cluster: SIMULATED LM, not a real model's judgement[/]")
    typer.echo(markdown_table(report))
    if report.criteria_usage is not None:
        console.print(f"cluster-agent LM usage (billed, cache hits free): {report.llm_usage()}")
    console.print(f"wrote {report.output_dir}/diversity.json and {len(report.figures)} charts; "
                  f"MLflow: {report.tracking_uri}")


@app.command("compare")
@user_errors
def compare_cmd(
    output_dir: str = typer.Argument("runs/quickstart", help="An experiment's output directory (its mlflow.db)."),
    experiment: str = typer.Option(None, "--experiment", help="Only this MLflow experiment."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow tracking URI (default: OUTPUT_DIR's)."),
) -> None:
    """Table of compiled variants and baselines, and a quality-vs-diversity Pareto plot (PNG)."""
    from pathlib import Path

    from rich.table import Table

    from synthdspy.compare import load_variants, pareto_front, pareto_plot

    if tracking_uri is None:
        db = Path(output_dir) / "mlflow.db"
        if not db.exists():
            raise ConfigError(f"{db}: no MLflow database (compile an experiment first, or pass --tracking-uri)")
        tracking_uri = f"sqlite:///{db.resolve()}"
    try:
        rows = load_variants(tracking_uri, experiment)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if not rows:
        raise ConfigError(f"no compile runs in {tracking_uri}")
    front = {r.run_id + r.variant for r in pareto_front(rows)}
    sim = " (SIMULATED LM: not real results)" if any(r.simulated for r in rows) else ""
    table = Table(title=f"variants{sim}")
    columns = ("variant", "optimizer", "score", "quality", "diversity", "diversity metric", "pass rate",
               "opt. tokens", "opt. $", "Pareto")
    for col in columns:
        table.add_column(col)
    for r in rows:
        interval = f" [{r.diversity_low:.3f}, {r.diversity_high:.3f}]" if r.diversity_low is not None else ""
        table.add_row(r.variant, r.optimizer, f"{r.score:.3f}", f"{r.quality:.3f}", f"{r.diversity:.3f}{interval}",
                      r.diversity_metric, f"{r.pass_rate:.2f}", f"{r.optimize_tokens:.0f}",
                      f"{r.optimize_cost_usd:.4f}", "*" if r.run_id + r.variant in front else "")
    table.caption = "Pareto: not dominated in (quality, diversity) by a row with the same diversity metric."
    Console(width=160).print(table)
    png = pareto_plot(rows, Path(output_dir) / "pareto.png")
    console.print(f"Pareto plot: {png}")


@app.command("gate-report")
@user_errors
def gate_report_cmd(
    run_dir: str = typer.Argument(..., help="A generate run's output dir, or its store directory."),
    output: str = typer.Option(None, "--output", "-o", help="Directory for gate_report.json and gate_report.md "
                               "[default: the run's generate directory]."),
) -> None:
    """Pass rate and common failure reasons per gate; adversarial_qa confusion matrix. Writes gate_report.*"""
    from synthdspy.gate_report import gate_report, to_markdown, write_gate_report

    report = gate_report(run_dir)
    typer.echo(to_markdown(report))
    json_path, md_path = write_gate_report(report, output)
    console.print(f"wrote {json_path} and {md_path}")
