"""TPE and random search against a grid over a 3-group mixture, with the same number of proxy trainings.

The space is the simplex over three real corpora (WikiText-2, GSM8K, tinyshakespeare), no
curriculum search; the objective is the shipped experiment's kind of target (a weighted mean of
validation bits per byte). The grid is every mixture with weights in steps of ``1/resolution``
((r+1)(r+2)/2 points, corners included), trained in the same run; TPE and random search get that
many trials each. Prints each method's best target and its regret against the grid's best
(negative: it found a mixture better than every grid point). Pruning is off, so every trial costs
the same.

Run from the repository root:  python benchmarks/mixture_search.py [--resolution 4]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import optuna

from synthdspy.tuning.config import TuneConfig, load_tune_config
from synthdspy.tuning.objective import TrialContext, run_trial
from synthdspy.tuning.simplex import from_simplex
from synthdspy.tuning.storage import make_sampler

GROUPS = ["wikitext", "gsm8k", "shakespeare"]
SMALL = [  # about 3 s per trial on 2 CPU cores
    "train.model.n_layer=1",
    "train.model.n_embd=48",
    "train.trainer.token_budget=40960",
    "train.trainer.eval_interval=10",
    "train.trainer.eval_windows=24",
    "train.optim.warmup_steps=5",
]


def space_config(path: str, out: str, overrides: list[str]) -> TuneConfig:
    """The shipped experiment cut down to three whole sources, mixture only, no pruning, no tracking."""
    data = load_tune_config(path, [*SMALL, *overrides]).model_dump(mode="json")
    data["train"]["sources"] = [s for s in data["train"]["sources"] if s["name"] in GROUPS]
    data["search"].update(groups={g: "real" for g in GROUPS}, schedules=[])
    data["objective"]["target"] = {"val/gsm8k": 2.0, "val/wikitext": 1.0, "val/shakespeare": 0.5}
    data["study"].update(pruner="none", n_startup_trials=5)
    data["tracking"]["enabled"] = False
    data["output_dir"] = out
    return TuneConfig.model_validate(data)


def grid(resolution: int) -> list[list[float]]:
    """Every 3-weight mixture with weights in multiples of ``1 / resolution``."""
    r = resolution
    return [[i / r, j / r, (r - i - j) / r] for i in range(r + 1) for j in range(r + 1 - i)]


def run(config: TuneConfig, sampler: optuna.samplers.BaseSampler, n: int, points=None) -> tuple[float, dict, float]:
    """Best target, its weights and the wall time of ``n`` trials (``points`` enqueued first)."""
    study = optuna.create_study(sampler=sampler)
    for w in points or []:
        study.enqueue_trial({f"mix/{g}": u for g, u in zip(GROUPS[:-1], from_simplex(w), strict=True)})
    ctx = TrialContext(config, "tuned")
    start = time.perf_counter()
    study.optimize(lambda t: run_trial(t, ctx), n_trials=n)
    return study.best_value, study.best_trial.user_attrs["weights"], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="experiments/mixture_tuning.toml")
    parser.add_argument("--resolution", type=int, default=4, help="grid step 1/R: (R+1)(R+2)/2 trials per method")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="override, as for tune")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    points = grid(args.resolution)
    n = len(points)
    with tempfile.TemporaryDirectory() as out:
        cfg = space_config(args.experiment, out, args.overrides)
        print(f"{n} proxy trainings per method, {cfg.train.total_steps} steps x {cfg.train.tokens_per_step} tokens")
        results = {
            "grid": run(cfg, optuna.samplers.RandomSampler(seed=0), n, points),
            "tpe": run(cfg, make_sampler(cfg.model_copy(update={"study": cfg.study.model_copy(
                update={"sampler": "tpe"})}), "tuned"), n),
            "random": run(cfg, optuna.samplers.RandomSampler(seed=cfg.seed), n),
        }
    best = results["grid"][0]
    print(f"{'method':8} {'best target':>12} {'regret vs grid':>15} {'wall s':>8}  best mixture")
    for name, (value, weights, wall) in results.items():
        mix = " ".join(f"{g}={w:.2f}" for g, w in weights.items())
        print(f"{name:8} {value:12.4f} {value - best:+15.4f} {wall:8.0f}  {mix}")


if __name__ == "__main__":
    main()
