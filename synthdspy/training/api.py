"""``train(config) -> TrainResult``: one proxy training, the entry point of the CLI and of tuning.

Example::

    from synthdspy.training import load_train_config, train

    cfg = load_train_config("experiments/train_mixture.toml", ["trainer.token_budget=200000"])
    result = train(cfg, on_eval=lambda ev: print(ev.step, ev.losses["val/gsm8k"].nats_per_token))
    result.losses["val/gsm8k"].bits_per_byte

``on_eval`` sees every intermediate evaluation; raising :class:`StopTraining` stops cleanly (a
checkpoint is written; ``train(cfg, resume=True)`` continues), any other exception (for example
``optuna.TrialPruned``) aborts the run and propagates.

The output directory keeps ``checkpoint.pt`` and ``tokenizer.json``; :func:`load_model` reads the
trained proxy model back from them (the diversity perplexity metrics use it).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from synthdspy import tracking
from synthdspy.training.config import TrainConfig
from synthdspy.training.data import prepare
from synthdspy.training.device import Runtime, mfu, resolve_runtime
from synthdspy.training.distributed import Dist, from_env
from synthdspy.training.model import GPT, GPTConfig
from synthdspy.training.tokenizer import Tokenizer, load_tokenizer, save_tokenizer
from synthdspy.training.trainer import EvalEvent, SplitLoss, Trainer


@dataclass
class TrainResult:
    """What one proxy training reports.

    ``losses``: final loss per split. ``curves``: every evaluation. ``train_losses``: (step, loss)
    every ``log_interval`` steps. ``tokens_per_s`` excludes evaluation and the first warm-up steps;
    ``mfu`` is None on CPU. ``group_rows``: training rows drawn per (group, stage) cell, the observed
    mixture. ``stopped``: a callback stopped it; ``exhausted``: every source ran out of repeats.
    """

    name: str
    steps: int
    tokens: int
    losses: dict[str, SplitLoss]
    curves: list[EvalEvent]
    train_losses: list[tuple[int, float]]
    tokens_per_s: float
    mfu: float | None
    elapsed_s: float
    n_params: int
    device: str
    output_dir: str
    tracking_uri: str | None = None
    run_id: str | None = None
    group_rows: dict[str, int] = field(default_factory=dict)
    stopped: bool = False
    exhausted: bool = False

    def mean_loss(self, prefix: str = "val/", metric: str = "bits_per_byte") -> float:
        """Unweighted mean of ``metric`` over the final losses of splits whose name starts with ``prefix``.

        Raises:
            KeyError: when no split matches.
        """
        values = [getattr(v, metric) for k, v in self.losses.items() if k.startswith(prefix)]
        if not values:
            raise KeyError(f"no split starts with {prefix!r}; have {sorted(self.losses)}")
        return sum(values) / len(values)


def train(
    config: TrainConfig,
    on_eval: Callable[[EvalEvent], None] | None = None,
    resume: bool = False,
) -> TrainResult:
    """Train one proxy model as ``config`` says and return its per-split losses and curves.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) the processes train one model together in
    DistributedDataParallel over the same global batch (see :mod:`synthdspy.training.distributed`);
    every rank returns the result, rank 0 alone calls ``on_eval`` and writes the output directory
    and the MLflow run.

    Args:
        config: a validated :class:`TrainConfig`.
        on_eval: called after every evaluation (see the module docstring).
        resume: continue from ``OUTPUT/checkpoint.pt`` when it exists.

    Returns:
        :class:`TrainResult`; ``OUTPUT/result.json`` holds the same figures.

    Raises:
        synthdspy.configio.ConfigError: unreadable sources, labels or an incompatible checkpoint, or a
            global batch that does not divide across the ``torchrun`` processes.
    """
    start = time.perf_counter()
    t = config.trainer
    dist = from_env()
    dist.share(t.batch_size, t.grad_accum_steps)  # refuse before any process waits for another
    runtime = resolve_runtime(t.device, t.dtype, t.compile, t.threads, dist)
    with dist.group(runtime.device):
        return _train(config, on_eval if dist.is_main else None, resume, runtime, dist, start)


def _train(
    config: TrainConfig,
    on_eval: Callable[[EvalEvent], None] | None,
    resume: bool,
    runtime: Runtime,
    dist: Dist,
    start: float,
) -> TrainResult:
    """:func:`train` once the runtime and the process group are set up."""
    t = config.trainer
    torch.manual_seed(config.seed)
    data = prepare(config)
    vocab = data.tokenizer.vocab_size
    pad = config.model.pad_vocab_to
    model_cfg = config.model.model_copy(update={"vocab_size": -(-vocab // pad) * pad})
    config = config.model_copy(update={"model": model_cfg})
    model = GPT(model_cfg)
    out = config.out_dir
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_tokenizer(data.tokenizer, out / "tokenizer.json")  # with checkpoint.pt: a model others can load
    uri = None
    ctx: contextlib.AbstractContextManager = contextlib.nullcontext()
    log = _no_log
    if config.tracking.enabled and dist.is_main:
        uri = tracking.configure(config.tracking.uri, config.tracking.experiment, out)
        ctx = tracking.run(config.name, params=config.model_dump(), tags={"kind": "train"})
        log = tracking.log_metrics
    with ctx as active:
        trainer = Trainer(
            config,
            model,
            data.stream(config),
            data.eval_sets,
            runtime,
            data.schedule.transitions() if data.stage_names else [],
            log,
            on_eval,
            out / "checkpoint.pt",
            dist,
        )
        if resume and trainer.checkpoint.is_file():
            trainer.load()
        if dist.active:  # identical weights on every rank (above), different dropout masks from here
            torch.manual_seed(config.seed + dist.rank)
        state = trainer.run()
        last = state.history[-1]
        tps = state.timed_tokens / state.timed_s if state.timed_s else 0.0
        peak = t.peak_flops * dist.world
        result = TrainResult(
            name=config.name,
            steps=state.step,
            tokens=state.tokens,
            losses=last.losses,
            curves=state.history,
            train_losses=state.train_losses,
            tokens_per_s=tps,
            mfu=None if runtime.device.type == "cpu" else mfu(model.flops_per_token(), tps, peak),
            elapsed_s=time.perf_counter() - start,
            n_params=model.num_params(),
            device=runtime.describe(),
            output_dir=str(out),
            tracking_uri=uri,
            run_id=active.info.run_id if active is not None else None,
            group_rows={
                f"{c.group}@{c.stage}": int(n)
                for c, n in zip(trainer.stream.cells, trainer.stream.rows, strict=True)
            },
            stopped=state.stopped,
            exhausted=state.exhausted,
        )
        if active is not None:
            tracking.log_metrics({"tokens_per_s": tps, "elapsed_s": result.elapsed_s}, step=state.step)
    if dist.is_main:
        (out / "result.json").write_text(json.dumps(asdict(result), indent=2), encoding="utf-8")
    return result


def load_model(output_dir: str | Path, device: str = "cpu") -> tuple[GPT, Tokenizer]:
    """The proxy model a training run left in ``output_dir`` (in eval mode) and its tokenizer.

    Raises:
        FileNotFoundError: ``output_dir`` lacks ``checkpoint.pt`` or ``tokenizer.json`` (runs
            before tokenizers were saved need a re-run).
    """
    out = Path(output_dir)
    for name in ("checkpoint.pt", "tokenizer.json"):
        if not (out / name).is_file():
            raise FileNotFoundError(f"{out}: no {name} (not the output directory of `synthdspy train`?)")
    state = torch.load(out / "checkpoint.pt", map_location=device, weights_only=False)
    model = GPT(GPTConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    return model.to(device).eval(), load_tokenizer(out / "tokenizer.json")


def _no_log(metrics, step=None) -> None:
    """Metrics sink when tracking is off."""
