"""Model collapse: models trained on their predecessors' samples, replacing or accumulating data.

The experiment of Shumailov et al. 2023 ("The Curse of Recursion: Training on Generated Data Makes
Models Forget", section 4) and Gerstgrasser et al. 2024 ("Is Model Collapse Inevitable? Breaking
the Curse of Recursion by Accumulating Real and Synthetic Data", section 3, Figure 2), with this
project's proxy GPT:

- generation 0 trains on real text (the first ``real.train_chars`` characters of a corpus, cut into
  ``real.chunk_chars`` documents) and samples a data set of as many tokens;
- **replace**: generation g trains only on generation g-1's samples;
- **accumulate**: generation g trains on the real data plus the samples of generations 0..g-1
  (sources weighted by their characters, so every token of the union is equally likely).

Every model trains for the same number of steps with the same settings, on a byte-level tokenizer
(one vocabulary for every generation), and is scored on held-out real text (the last
``real.heldout_fraction`` of the corpus, never trained on) as the ``ood/real`` split. Each seed runs
its own chain (generation 0 is shared by both regimes of a seed). Outputs in ``[output] dir``:
``collapse.json`` (every model and the summary), ``collapse.md`` and ``collapse.png``.
"""

from __future__ import annotations

import itertools
import json
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from synthdspy.config_tables import OutputConfig
from synthdspy.configio import ConfigError, load_model
from synthdspy.training.config import OptimSpec, TrainConfig, TrainerSpec
from synthdspy.training.model import GPTConfig
from synthdspy.training.workers import run_all, threads_per_worker

REGIMES = ("replace", "accumulate")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RealSpec(_Strict):
    """``[real]``: the real corpus, how much of it trains, how it is cut into documents."""

    path: str = "../shared/data/tinyshakespeare/input.txt"
    train_chars: int = Field(250_000, gt=0)
    chunk_chars: int = Field(127, gt=0)
    heldout_fraction: float = Field(0.1, gt=0, lt=1)


class SampleSpec(_Strict):
    """``[sampling]``: how each generation samples its successor's data (``max_tokens`` defaults to
    ``real.chunk_chars``: samples as long as the real documents)."""

    temperature: float = Field(1.0, ge=0)
    top_k: int = Field(0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int | None = Field(None, gt=0)
    batch_size: int = Field(256, ge=1)


class TrainTemplate(_Strict):
    """``[train]``: the model, optimizer and trainer settings every generation shares."""

    model: GPTConfig = Field(default_factory=GPTConfig)
    optim: OptimSpec = Field(default_factory=OptimSpec)
    trainer: TrainerSpec = Field(default_factory=lambda: TrainerSpec(max_steps=700))


class CollapseConfig(_Strict):
    """A collapse experiment (see ``experiments/model_collapse.toml``).

    ``generations`` counts models per regime, generation 0 included. ``seeds``: one chain each.
    ``workers``: chains trained in parallel processes.
    """

    name: str = Field("model_collapse", min_length=1)
    output: OutputConfig = Field(default_factory=OutputConfig)
    generations: int = Field(6, ge=2)
    seeds: list[int] = Field(default_factory=lambda: [0, 1], min_length=1)
    workers: int = Field(1, ge=1)
    real: RealSpec = Field(default_factory=RealSpec)
    sampling: SampleSpec = Field(default_factory=SampleSpec)
    train: TrainTemplate = Field(default_factory=TrainTemplate)

    @property
    def out_dir(self) -> Path:
        """The output directory: ``[output] dir``, default ``runs/<name>`` (as every command's)."""
        return Path(self.output.dir or Path("runs") / self.name)


def load_collapse_config(path: str | Path, overrides: list[str] | None = None) -> CollapseConfig:
    """Read a collapse experiment (TOML) with ``--set`` overrides.

    Raises:
        ConfigError: missing file, bad TOML or invalid keys (file and key named).
    """
    return load_model(CollapseConfig, path, overrides)


@dataclass
class GenerationResult:
    """One trained model: its chain, held-out real loss, training data and the samples it wrote."""

    seed: int
    regime: str  # "real" for generation 0, shared by both regimes
    generation: int
    heldout_nats: float
    heldout_bpb: float
    data_tokens: int
    steps: int
    tokens: int
    sample_tokens: int | None
    elapsed_s: float


def write_docs(texts: list[str], path: Path) -> tuple[Path, int]:
    """Write ``{"text": ...}`` lines; returns the path and the UTF-8 bytes (tokens) of the texts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path, sum(len(t.encode("utf-8")) for t in texts)


def prepare_real(cfg: CollapseConfig) -> dict[str, tuple[str, int]]:
    """Cut the corpus into ``train`` (first ``train_chars`` of the part before the held-out tail) and
    ``heldout`` documents; returns ``{"train": (path, tokens), "heldout": (path, tokens)}``.

    Raises:
        ConfigError: the corpus cannot be read or is too short for one document.
    """
    spec = cfg.real
    try:
        text = Path(spec.path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"real.path: cannot read {spec.path!r} ({exc})") from None
    cut = int(len(text) * (1 - spec.heldout_fraction))

    def chunks(part: str) -> list[str]:
        docs = [part[i : i + spec.chunk_chars] for i in range(0, len(part), spec.chunk_chars)]
        return [d for d in docs if d.strip()]

    train, heldout = chunks(text[: min(cut, spec.train_chars)]), chunks(text[cut:])
    if len(train) < 2 or len(heldout) < 2:
        raise ConfigError(f"real.path: {spec.path!r} is too short for real.chunk_chars = {spec.chunk_chars}")
    data = cfg.out_dir / "data"
    return {"train": _str(write_docs(train, data / "real_train.jsonl")),
            "heldout": _str(write_docs(heldout, data / "heldout.jsonl"))}


def _str(pair: tuple[Path, int]) -> tuple[str, int]:
    return str(pair[0]), pair[1]


def generation_config(cfg: CollapseConfig, sources: list[tuple[str, int]], heldout: str, out: Path,
                      seed: int) -> TrainConfig:
    """The training config of one generation: ``sources`` (JSONL path, tokens) weighted by size, a
    byte-level tokenizer, ``ood/real`` = the held-out real text, MLflow off."""
    threads = threads_per_worker(cfg.workers) or cfg.train.trainer.threads
    jsonl = {"format": "jsonl", "template": "{text}"}
    return TrainConfig.model_validate({
        "name": f"{cfg.name}-{out.parent.name}-{out.name}",
        "seed": seed,
        "output": {"dir": str(out)},
        "tokenizer": {"kind": "byte"},
        "model": cfg.train.model.model_dump(),
        "optim": cfg.train.optim.model_dump(),
        "trainer": {**cfg.train.trainer.model_dump(), "threads": threads},
        "sources": [{"name": f"data{i}", "path": p, "weight": n, **jsonl} for i, (p, n) in enumerate(sources)],
        "validation": {"mode": "tail", "fraction": 0.01, "per_stage": False,
                       "ood": [{"name": "real", "path": heldout, **jsonl}]},
        "tracking": {"enabled": False},
    })


def sample_data(cfg: CollapseConfig, model_dir: Path, tokens: int, seed: int) -> tuple[str, int]:
    """Sample documents from the model in ``model_dir`` until they hold ``tokens`` tokens; write them to
    ``model_dir/samples.jsonl``. Returns (path, tokens)."""
    from synthdspy.training.sampling import iter_samples, load_for_sampling

    s = cfg.sampling
    model, tok = load_for_sampling(model_dir)
    rows = iter_samples(model, tok, s.max_tokens or cfg.real.chunk_chars, s.temperature, s.top_k or None,
                        s.top_p, seed, s.batch_size)
    texts, total = [], 0
    for sample in rows:
        if sample.text.strip():
            texts.append(sample.text)
            total += len(sample.text.encode("utf-8"))
        if total >= tokens:
            break
    return _str(write_docs(texts, model_dir / "samples.jsonl"))


def train_generation(cfg: CollapseConfig, sources: list[tuple[str, int]], heldout: str, out: Path,
                     label: tuple[int, str, int], train_seed: int) -> GenerationResult:
    """Train one generation (``label`` = seed, regime, generation) and score it on held-out real text."""
    from synthdspy.training.api import train

    result = train(generation_config(cfg, sources, heldout, out, train_seed))
    loss = result.losses["ood/real"]
    return GenerationResult(*label, loss.nats_per_token, loss.bits_per_byte, sum(n for _, n in sources),
                            result.steps, result.tokens, None, result.elapsed_s)


def run_chain(job: tuple[CollapseConfig, dict[str, tuple[str, int]], int]) -> list[GenerationResult]:
    """Every generation of one seed: generation 0, then both regimes (module level: runs in workers)."""
    cfg, real, seed = job
    root, heldout = cfg.out_dir / f"seed{seed}", real["heldout"][0]
    target = real["train"][1]
    first = train_generation(cfg, [real["train"]], heldout, root / "real" / "gen0", (seed, "real", 0), 1000 * seed)
    samples = sample_data(cfg, root / "real" / "gen0", target, 1000 * seed + 500)
    first.sample_tokens = samples[1]
    out = [first]
    for r, regime in enumerate(REGIMES):
        pool = [real["train"], samples]
        for g in range(1, cfg.generations):
            data = [pool[-1]] if regime == "replace" else list(pool)
            seed_g = 1000 * seed + 2 * g + r
            res = train_generation(cfg, data, heldout, root / regime / f"gen{g}", (seed, regime, g), seed_g)
            if g < cfg.generations - 1:
                pool.append(sample_data(cfg, root / regime / f"gen{g}", target, seed_g + 500))
                res.sample_tokens = pool[-1][1]
            out.append(res)
    return out


def summarise(results: list[GenerationResult]) -> dict[str, list[dict[str, Any]]]:
    """Per regime and generation: mean, std (over seeds) and values of the held-out real loss
    (nats per character); generation 0 belongs to both regimes."""
    out: dict[str, list[dict[str, Any]]] = {}
    for regime in REGIMES:
        rows = []
        gens = sorted({r.generation for r in results})
        for g in gens:
            values = [r.heldout_nats for r in results if r.generation == g and r.regime in (regime, "real")]
            if values:
                std = statistics.stdev(values) if len(values) > 1 else 0.0
                rows.append({"generation": g, "mean": statistics.fmean(values), "std": std, "values": values})
        out[regime] = rows
    return out


def markdown_table(summary: dict[str, list[dict[str, Any]]]) -> str:
    """Mean ± std of the held-out real loss per generation, one column per regime."""
    lines = ["| generation | replace (nats/char) | accumulate (nats/char) |", "| --- | --- | --- |"]
    by = {reg: {row["generation"]: row for row in rows} for reg, rows in summary.items()}
    for g in sorted(set(itertools.chain.from_iterable(by[r] for r in REGIMES))):
        cells = [f"{by[r][g]['mean']:.4f} ± {by[r][g]['std']:.4f}" if g in by[r] else "-" for r in REGIMES]
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(summary: dict[str, list[dict[str, Any]]], path: Path, title: str) -> Path:
    """Held-out real loss against generation, both regimes, mean ± std band and each seed's points
    (the layout of Gerstgrasser et al. 2024, Figure 2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for regime, color in zip(REGIMES, ("tab:red", "tab:blue"), strict=True):
        rows = summary[regime]
        g = [r["generation"] for r in rows]
        mean = [r["mean"] for r in rows]
        ax.plot(g, mean, marker="o", color=color, label=regime)
        ax.fill_between(g, [m - r["std"] for m, r in zip(mean, rows, strict=True)],
                        [m + r["std"] for m, r in zip(mean, rows, strict=True)], color=color, alpha=0.2)
        for r in rows:
            ax.scatter([r["generation"]] * len(r["values"]), r["values"], color=color, s=8, alpha=0.5)
    ax.set_xticks(sorted({r["generation"] for rows in summary.values() for r in rows}))
    ax.set(xlabel="model-fitting generation", ylabel="loss on held-out real text (nats/char)", title=title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run_collapse(cfg: CollapseConfig, on_chain: Callable[[list[GenerationResult]], None] | None = None
                 ) -> dict[str, Any]:
    """Run every seed's chain and write ``collapse.json``, ``collapse.md`` and ``collapse.png``.

    Args:
        cfg: the experiment.
        on_chain: called in this process with each finished seed's results.

    Returns:
        ``{"summary": ..., "results": [...], "paths": {...}, "config": ...}`` as in ``collapse.json``.

    Raises:
        ConfigError: an unreadable corpus or invalid training settings.
    """
    out = cfg.out_dir
    out.mkdir(parents=True, exist_ok=True)
    generation_config(cfg, [("x", 1)], "x", out, 0)  # invalid training settings fail before any work
    real = prepare_real(cfg)
    results: list[GenerationResult] = []
    for _, chain in run_all(run_chain, [(cfg, real, s) for s in cfg.seeds], cfg.workers):
        results.extend(chain)
        if on_chain is not None:
            on_chain(chain)
    results.sort(key=lambda r: (r.seed, REGIMES.index(r.regime) if r.regime in REGIMES else -1, r.generation))
    summary = summarise(results)
    paths = {"json": out / "collapse.json", "table": out / "collapse.md", "plot": out / "collapse.png"}
    paths["table"].write_text(markdown_table(summary), encoding="utf-8")
    steps = results[0].steps
    plot(summary, paths["plot"], f"{cfg.name}: {len(cfg.seeds)} seeds, {steps} steps per model")
    report = {"summary": summary, "results": [asdict(r) for r in results], "real_tokens": real["train"][1],
              "paths": {k: str(v) for k, v in paths.items()}, "config": cfg.model_dump(mode="json")}
    paths["json"].write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report
