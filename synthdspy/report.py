"""Compile reports: a Markdown and a JSON file, sample records, and the summary table printed to the user."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from synthdspy.lm import LMs
from synthdspy.optimizers.compile import CompileResult

COMPONENTS = ("score", "quality", "pass_rate", "diversity", "n_records")


def _evaluation(ev) -> dict[str, Any]:
    out = {**ev.mean.as_dict(), **ev.usage, "seconds": ev.seconds, "failed_batches": len(ev.errors)}
    if ev.diversity_interval:
        out["diversity_low"], out["diversity_high"] = ev.diversity_interval
    return out


def compile_summary(exp_name: str, variant: str, config_hash: str, optimizer: str, result: CompileResult,
                    lms: LMs) -> dict[str, Any]:
    """The JSON-ready report of a compile (the variant's record): both held-out evaluations, the
    optimization's and the criteria's usage, the budget, and ``usage``: every role's billed usage
    over the whole compile (``total`` metrics and a one-``line`` summary)."""
    return {
        "experiment": exp_name,
        "variant": variant,
        "config_hash": config_hash,
        "optimizer": optimizer,
        "simulated": lms.simulated,
        "lms": lms.describe(),
        "usage": {"total": lms.meter.metrics(), "line": lms.meter.describe()},
        "program_hash": result.program.program_hash,
        "baseline": _evaluation(result.baseline),
        "compiled": _evaluation(result.compiled),
        "optimization": {**result.optimize_usage, "seconds": result.optimize_seconds},
        "criteria": result.criteria_usage,
        "budget": result.budget,
        "notes": result.notes,
        "predictors": {
            name: {"instructions": p.signature.instructions, "demos": len(p.demos)}
            for name, p in result.program.task.named_predictors()
        },
    }


def summary_table(summary: dict[str, Any]) -> Table:
    """Baseline vs compiled on the dev batches as a rich table."""
    sim = " (SIMULATED LM: not real results)" if summary["simulated"] else ""
    table = Table(title=f"compile: {summary['variant']}{sim}")
    table.add_column("metric")
    table.add_column("baseline", justify="right")
    table.add_column("compiled", justify="right")
    parts = sorted(k for k in summary["compiled"] if k.startswith("diversity."))
    rows = [*COMPONENTS[:4], *parts, COMPONENTS[4], "total.tokens", "total.cost_usd"]
    for key in rows:
        b, c = summary["baseline"].get(key, 0), summary["compiled"].get(key, 0)
        fmt = "{:.0f}" if key in ("n_records", "total.tokens") else "{:.4f}"
        label = {"total.tokens": "billed tokens", "total.cost_usd": "cost (USD)"}.get(key, key)
        table.add_row(label, fmt.format(b), fmt.format(c))
    table.caption = f"{_setup_costs(summary)} (cache hits are free and not counted)"
    return table


def _setup_costs(summary: dict[str, Any]) -> str:
    """``optimization: N billed tokens, $C`` and, when criteria were generated, their cost too."""
    opt, crit = summary["optimization"], summary.get("criteria", {})
    text = f"optimization: {opt.get('total.tokens', 0):.0f} billed tokens, ${opt.get('total.cost_usd', 0):.4f}"
    if crit.get("total.tokens"):
        text += f"; cluster-agent criteria: {crit['total.tokens']:.0f} tokens, ${crit.get('total.cost_usd', 0):.4f}"
    return text


def markdown(summary: dict[str, Any], samples: list[dict[str, Any]]) -> str:
    """The report as Markdown: simulator warning, metrics table, compiled instructions, samples."""
    lines = [f"# Compile report: {summary['variant']}", "",
             f"Experiment `{summary['experiment']}`, optimizer `{summary['optimizer']}`, "
             f"config hash `{summary['config_hash']}`.", ""]
    if summary["simulated"]:
        lines += ["> **Simulated LM.** These figures come from the offline simulator. They exercise the",
                  "> pipeline; they are not results of a real model and the data is not for training.", ""]
    lines += [f"LMs: {', '.join(f'{k}={v}' for k, v in summary['lms'].items())}  ",
              f"Program hash: `{summary['program_hash']}`", "", "| metric | baseline | compiled |", "|---|---|---|"]
    for key in (*COMPONENTS, "total.tokens", "total.cost_usd", "seconds"):
        lines.append(f"| {key} | {summary['baseline'].get(key, 0):.4g} | {summary['compiled'].get(key, 0):.4g} |")
    budget = summary["budget"]
    lines += ["", f"Budget: limits {budget['limits']}, used {budget['used']}"
              + (f", stopped: {budget['stopped_by_budget']}" if budget["stopped_by_budget"] else ""), "",
              f"Cost outside the held-out evaluations: {_setup_costs(summary)}.",
              f"LM usage of the whole compile (billed): {summary['usage']['line']}.",
              "", *(f"**Note:** {n}" for n in summary.get("notes", [])), "", "## Compiled predictors", ""]
    for name, p in summary["predictors"].items():
        lines += [f"### `{name}` ({p['demos']} demos)", "", "```", p["instructions"], "```", ""]
    lines += ["## Sample records (compiled program, dev seeds)", ""]
    for s in samples:
        verdicts = ", ".join(f"{v['gate']}={'pass' if v['passed'] else 'fail'}" for v in s["verdicts"])
        lines += [f"- **{s['instruction'][:120]}**  ({verdicts or 'no gates'})", "", *sample_body(s)]
    return "\n".join(lines)


def _block(title: str, text: str) -> list[str]:
    """``title`` and ``text`` (first 800 characters) as an indented code block of a list item."""
    return [*([f"  {title}", ""] if title else []), "  ```", *("  " + ln for ln in text[:800].splitlines()),
            "  ```", ""]


def sample_body(sample: dict[str, Any]) -> list[str]:
    """Markdown lines showing what a sample record generated, by the fields its task fills: a
    preference pair's ``chosen`` then ``rejected`` (with ``metadata.degradation``), a GRPO group's
    ``responses`` each with its reward score when scored, a conversation's ``turns``, else ``output``."""
    if sample.get("chosen") is not None:
        degradation = sample.get("metadata", {}).get("degradation")
        weaker = f" (degradation: `{degradation}`)" if degradation else ""
        return _block("chosen:", sample["chosen"]) + _block(f"rejected{weaker}:", sample.get("rejected") or "")
    if sample.get("responses"):
        scores = sample.get("reward_scores") or []
        lines: list[str] = []
        for i, response in enumerate(sample["responses"]):
            score = f", score {scores[i]:g}" if i < len(scores) else ""
            lines += _block(f"response {i + 1}{score}:", response)
        return lines
    if sample.get("turns"):
        return _block("", "\n".join(f"{t.get('role', '')}: {t.get('content', '')}" for t in sample["turns"]))
    return _block("", sample.get("output", ""))


def predictors_markdown(program) -> str:
    """Every predictor's instructions and demos as readable Markdown (an MLflow artifact)."""
    lines = ["# Predictors", ""]
    for name, predictor in program.named_predictors():
        lines += [f"## `{name}`", "", "### Instructions", "", predictor.signature.instructions, "",
                  f"### Demos ({len(predictor.demos)})", ""]
        for i, demo in enumerate(predictor.demos, start=1):
            lines.append(f"**Demo {i}**")
            for key, value in dict(demo).items():
                text = str(value)
                lines.append(f"- `{key}`: {text[:600]}{' ...' if len(text) > 600 else ''}")
            lines.append("")
    return "\n".join(lines)


def write_compile_report(directory: Path, summary: dict[str, Any], result: CompileResult, n_samples: int = 8) -> dict:
    """Write ``report.json``, ``report.md``, ``predictors.md`` and ``samples.jsonl`` into ``directory``.

    Returns:
        {name: path} of the files written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    samples = [r.model_dump(mode="json") for r in result.compiled.records[:n_samples]]
    paths = {"report_json": directory / "report.json", "report_md": directory / "report.md",
             "predictors": directory / "predictors.md", "samples": directory / "samples.jsonl"}
    paths["predictors"].write_text(predictors_markdown(result.program), encoding="utf-8")
    paths["report_json"].write_text(json.dumps(summary, indent=2), encoding="utf-8")
    paths["report_md"].write_text(markdown(summary, samples), encoding="utf-8")
    with paths["samples"].open("w", encoding="utf-8") as fh:
        for s in samples:
            fh.write(json.dumps(s, ensure_ascii=False) + "\n")
    return paths
