"""Picking a study's mixtures and retraining them at the target scale (resumable, tracked).

:func:`transfer` reads the study, checks the target scale against the proxy's, opens (or reopens)
the MLflow parent run, retrains every picked mixture that has no finished result yet, and hands
the pairs of losses to :mod:`synthdspy.transfer.report`. Each retraining keeps its directory
``OUTPUT/runs/<label>/``: ``checkpoint.pt`` while it runs (a killed transfer resumes it from the
last evaluation), ``transfer.json`` once it has finished (a re-run skips it) and ``mlflow_run_id``
(its nested run, reopened on resume).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from synthdspy import tracking
from synthdspy.configio import ConfigError
from synthdspy.training.config import TrackingSpec, TrainConfig
from synthdspy.transfer.config import TransferConfig, load_study_config, target_train
from synthdspy.tuning.config import TuneConfig
from synthdspy.tuning.objective import mlflow_params, score
from synthdspy.tuning.space import TrialPlan, apply_plan
from synthdspy.tuning.storage import open_storage, storage_url, study_name


@dataclass
class Mixture:
    """One retrained mixture: where it comes from, its proxy target and its target-scale target.

    ``kind``: ``top`` (the tuner's best trials), ``baseline`` or ``random``. ``proxy`` and
    ``target`` are the study's objective (``objective.metric``, weighted over its target splits)
    at the proxy and at the target scale; ``target`` is None until the retraining has finished.
    """

    label: str
    kind: str
    study: str
    trial: int
    weights: dict[str, float]
    schedule: dict[str, Any]
    proxy: float
    proxy_losses: dict[str, float]
    target: float | None = None
    target_losses: dict[str, float] = field(default_factory=dict)
    elapsed_s: float = 0.0
    run_id: str | None = None


@dataclass
class Scale:
    """Parameters (besides position embeddings, as nanoGPT counts) and training tokens of proxy and target."""

    proxy_params: int
    target_params: int
    proxy_tokens: int
    target_tokens: int

    @property
    def param_ratio(self) -> float:
        """Target parameters over proxy parameters."""
        return self.target_params / self.proxy_params

    @property
    def token_ratio(self) -> float:
        """Target tokens over proxy tokens."""
        return self.target_tokens / self.proxy_tokens


def _complete(storage: Any, tune: TuneConfig, kind: str) -> list[FrozenTrial]:
    try:
        study = optuna.load_study(study_name=study_name(tune, kind), storage=storage)
    except KeyError:
        raise ConfigError(f"{tune.out_dir}: no study {study_name(tune, kind)!r} (run `synthdspy tune` first)") from None
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def _mixture(label: str, kind: str, study: str, t: FrozenTrial) -> Mixture:
    return Mixture(label=label, kind=kind, study=study, trial=t.number, weights=dict(t.user_attrs["weights"]),
                   schedule=dict(t.user_attrs["schedule"]), proxy=float(t.user_attrs["target"]),
                   proxy_losses=dict(t.user_attrs["losses"]))


def pick_mixtures(config: TransferConfig, tune: TuneConfig) -> list[Mixture]:
    """The study's top ``k`` tuned trials (best first), the named baselines and ``random`` trials of
    its random search (drawn with ``config.seed``).

    Raises:
        ConfigError: no study in the storage, or fewer complete trials than ``[pick]`` asks for.
    """
    url = storage_url(tune)
    db = Path(url.removeprefix("sqlite:///"))
    if url.startswith("sqlite:///") and (not db.is_file() or not db.stat().st_size):
        raise ConfigError(f"{tune.out_dir}: no tuning study there (run `synthdspy tune {config.study}` first)")
    storage = open_storage(url)
    pick = config.pick
    tuned = sorted(_complete(storage, tune, "tuned"), key=lambda t: (t.user_attrs["target"], t.number))
    if len(tuned) < pick.top_k:
        raise ConfigError(f"pick.top_k = {pick.top_k}, but the study has {len(tuned)} complete tuned trials")
    out = [_mixture(f"top-{i + 1}", "top", "tuned", t) for i, t in enumerate(tuned[: pick.top_k])]
    base = {t.user_attrs.get("baseline"): t for t in _complete(storage, tune, "baselines")}
    for name in pick.baselines:
        if name not in base:
            raise ConfigError(f"pick.baselines: the study has no complete baseline {name!r} (have {sorted(base)})")
        out.append(_mixture(name, "baseline", "baselines", base[name]))
    pool = sorted(_complete(storage, tune, "random"), key=lambda t: t.number)
    if len(pool) < pick.random:
        raise ConfigError(f"pick.random = {pick.random}, but the study's random search has {len(pool)} complete "
                          "trials (raise baselines.random_trials in the tuning experiment, or lower pick.random)")
    chosen = np.random.default_rng(config.seed).choice(len(pool), size=pick.random, replace=False)
    out += [_mixture(f"random-{pool[i].number}", "random", "random", pool[i]) for i in sorted(chosen)]
    return out


def measure_scale(proxy: TrainConfig, target: TrainConfig) -> Scale:
    """Parameter and token counts of the proxy and the target configs (one data preparation for the
    vocabulary, which also checks that every source is readable)."""
    from synthdspy.training.data import prepare
    from synthdspy.training.model import GPT

    vocab = prepare(proxy).tokenizer.vocab_size

    def params(cfg: TrainConfig) -> int:
        pad = cfg.model.pad_vocab_to
        return GPT(cfg.model.model_copy(update={"vocab_size": -(-vocab // pad) * pad})).num_params()

    return Scale(params(proxy), params(target), proxy.total_steps * proxy.tokens_per_step,
                 target.total_steps * target.tokens_per_step)


def check_scale(config: TransferConfig, scale: Scale) -> None:
    """Raises ConfigError when the target is not at least ``min_param_ratio`` x the proxy's
    parameters and ``min_token_ratio`` x its tokens."""
    if scale.param_ratio < config.min_param_ratio:
        raise ConfigError(f"target: {scale.param_ratio:.1f}x the proxy's parameters ({scale.target_params:,} vs "
                          f"{scale.proxy_params:,}); min_param_ratio asks for {config.min_param_ratio:g}x")
    if scale.token_ratio < config.min_token_ratio:
        raise ConfigError(f"target: {scale.token_ratio:.1f}x the proxy's tokens ({scale.target_tokens:,} vs "
                          f"{scale.proxy_tokens:,}); min_token_ratio asks for {config.min_token_ratio:g}x")


def fingerprint(cfg: TrainConfig) -> str:
    """A hash of a retraining's config (name and output directory aside): a finished result is
    reused only for the same config."""
    data = cfg.model_dump(mode="json", exclude={"name", "output", "tracking"})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@contextlib.contextmanager
def _nested_run(mix: Mixture, folder: Path, parent: str | None) -> Iterator[Any]:
    """The mixture's nested MLflow run under ``parent`` (reopened on resume), or nothing."""
    if parent is None:
        yield None
        return
    import mlflow

    id_file = folder / "mlflow_run_id"
    if id_file.is_file():
        with mlflow.start_run(run_id=id_file.read_text(encoding="utf-8").strip()) as active:
            yield active
        return
    tags = {"kind": "transfer-mixture", "mixture": mix.kind, "study": mix.study, "trial": str(mix.trial)}
    with mlflow.start_run(run_name=mix.label, parent_run_id=parent, tags=tags) as active:
        id_file.write_text(active.info.run_id, encoding="utf-8")
        mlflow.log_params(mlflow_params({"weights": mix.weights, "schedule": mix.schedule}))
        tracking.log_metrics({"proxy/target": mix.proxy})
        yield active


def retrain(mix: Mixture, base: TrainConfig, tune: TuneConfig, out: Path, parent: str | None) -> Mixture:
    """Train ``mix`` at the target scale ``base`` (or reuse its finished result) and fill in ``target``.

    Raises:
        ConfigError: a finished result for another config in the same directory.
    """
    from synthdspy.training.api import train

    folder = out / "runs" / mix.label
    folder.mkdir(parents=True, exist_ok=True)
    cfg = apply_plan(base, TrialPlan(weights=mix.weights, schedule=mix.schedule)).model_copy(
        update={"name": mix.label, "output": base.output.model_copy(update={"dir": folder}),
                "tracking": TrackingSpec(enabled=False)})
    done = folder / "transfer.json"
    if done.is_file():
        saved = json.loads(done.read_text(encoding="utf-8"))
        if saved["fingerprint"] != fingerprint(cfg):
            raise ConfigError(f"{done}: finished for another target config; set another [output] dir or remove it")
        mix.target, mix.target_losses = saved["target"], saved["target_losses"]
        mix.elapsed_s, mix.run_id = saved["elapsed_s"], saved["run_id"]
        return mix
    metric = tune.objective.metric

    def on_eval(event) -> None:
        if parent is not None:
            target, _ = score(event.losses, tune.objective)
            per_split = {f"{k}/{metric}": getattr(v, metric) for k, v in event.losses.items()}
            tracking.log_metrics({**per_split, "target": target}, step=event.step)

    with _nested_run(mix, folder, parent) as active:
        result = train(cfg, on_eval=on_eval, resume=True)
        mix.target, _ = score(result.losses, tune.objective)
        mix.target_losses = {k: getattr(v, metric) for k, v in result.losses.items()}
        mix.elapsed_s, mix.run_id = result.elapsed_s, active.info.run_id if active is not None else None
        if active is not None:
            tracking.log_metrics({"final/target": mix.target, "proxy/target": mix.proxy, "elapsed_s": mix.elapsed_s})
    tmp = done.with_suffix(".tmp")
    tmp.write_text(json.dumps({**asdict(mix), "fingerprint": fingerprint(cfg)}, indent=2), encoding="utf-8")
    tmp.replace(done)
    return mix


def _parent_run(config: TransferConfig, out: Path, params: dict[str, Any]) -> tuple[str | None, str | None]:
    """The MLflow parent run (created once; its id kept in ``OUTPUT/parent_run_id``) and the URI."""
    if not config.tracking.enabled:
        return None, None
    uri = tracking.configure(config.tracking.uri, config.tracking.experiment, out)
    id_file = out / "parent_run_id"
    if id_file.is_file():
        return id_file.read_text(encoding="utf-8").strip(), uri
    with tracking.run(config.name, tags={"kind": "transfer"}) as active:
        import mlflow

        mlflow.log_params(mlflow_params(params))
        id_file.write_text(active.info.run_id, encoding="utf-8")
        return active.info.run_id, uri


def transfer(config: TransferConfig, study_dir: str | Path, on_progress: Callable[[str], None] | None = None):
    """Run (or resume) the transfer experiment on the study in ``study_dir``; returns the
    :class:`synthdspy.transfer.report.TransferSummary` (the report is written to ``OUTPUT/report``).

    Raises:
        ConfigError: a missing study, too few trials to pick, a target below the required scale,
            unreadable sources.
    """
    from synthdspy.transfer.report import summarize, write_report

    say = on_progress or (lambda _msg: None)
    tune = load_study_config(config, study_dir)
    target = target_train(config, tune.train, "target")
    mixtures = pick_mixtures(config, tune)
    scale = measure_scale(tune.train, target)
    check_scale(config, scale)
    out = config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    params = {"study": str(study_dir), "pick": config.pick.model_dump(), "target": config.target,
              "scale": {**asdict(scale), "param_ratio": scale.param_ratio, "token_ratio": scale.token_ratio}}
    parent, uri = _parent_run(config, out, params)
    say(f"{len(mixtures)} mixtures at {scale.target_params:,} parameters ({scale.param_ratio:.1f}x) and "
        f"{scale.target_tokens:,} tokens ({scale.token_ratio:.1f}x)")
    for i, mix in enumerate(mixtures):
        finished = (out / "runs" / mix.label / "transfer.json").is_file()
        retrain(mix, target, tune, out, parent)
        say(f"[{i + 1}/{len(mixtures)}] {mix.label}: proxy {mix.proxy:.4f}, target {mix.target:.4f}"
            + (" (finished before)" if finished else f" ({mix.elapsed_s:.0f} s)"))
    summary = summarize(config, tune, mixtures, scale)
    return write_report(config, summary, parent, uri)
