"""Trainer: schedule of the learning rate, model shapes, short runs, resume, mixture direction, CLI."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from synthdspy.configio import ConfigError
from synthdspy.training import StopTraining, TrainConfig, load_train_config, train
from synthdspy.training.model import GPT, GPTConfig
from synthdspy.training.trainer import lr_at

DATA = Path("../shared/data")
SHAKESPEARE = DATA / "tinyshakespeare/input.txt"
GSM8K = DATA / "gsm8k/train.jsonl"
needs_data = pytest.mark.usefixtures("needs_shared_data")
EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def tiny(tmp_path: Path, **over) -> TrainConfig:
    """A byte-level two-source config small enough to train in seconds on two cores."""
    data = {
        "name": "tiny",
        "output": {"dir": str(tmp_path / "out")},
        "tokenizer": {"kind": "byte"},
        "model": {"n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 64},
        "optim": {"learning_rate": 3e-3, "min_lr": 3e-4, "warmup_steps": 10},
        "trainer": {
            "max_steps": 40,
            "batch_size": 16,
            "eval_interval": 10,
            "eval_windows": 32,
            "log_interval": 10,
        },
        "sources": [
            {"name": "shakespeare", "path": str(SHAKESPEARE), "split": "blank_lines", "limit": 1500},
            {
                "name": "gsm8k",
                "path": str(GSM8K),
                "format": "jsonl",
                "template": "{question}\n{answer}",
                "limit": 1500,
            },
        ],
        "validation": {"fraction": 0.05},
        "tracking": {"enabled": False},
    }
    for key, value in over.items():
        node = data
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return TrainConfig.model_validate(data)


def test_lr_warmup_then_cosine_to_the_floor():
    peak, floor, warm, decay = 1e-3, 1e-4, 100, 2000
    assert lr_at(0, peak, floor, warm, decay) == pytest.approx(peak / 101)
    assert lr_at(99, peak, floor, warm, decay) == pytest.approx(peak * 100 / 101)
    assert lr_at(100, peak, floor, warm, decay) == pytest.approx(peak)
    assert lr_at(1050, peak, floor, warm, decay) == pytest.approx((peak + floor) / 2)
    assert lr_at(2000, peak, floor, warm, decay) == pytest.approx(floor)
    assert lr_at(5000, peak, floor, warm, decay) == floor
    lrs = [lr_at(s, peak, floor, warm, decay) for s in range(100, 2001, 50)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


def test_gpt_shapes_init_loss_and_flops():
    cfg = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=65)
    model = GPT(cfg)
    idx = torch.randint(0, 65, (3, 16))
    logits, loss = model(idx, torch.randint(0, 65, (3, 16)))
    assert logits.shape == (3, 16, 65)
    assert abs(loss.item() - math.log(65)) < 0.3  # near-uniform predictions at init
    # worked by hand, no biases: a layer is ln_1 32 + c_attn 32*96 + c_proj 32*32 + ln_2 32 + fc 32*128
    # + proj 128*32 = 12,352; two layers + wte 65*32 (tied with the head) + ln_f 32 = 26,816; wpe 16*32 = 512
    assert (model.num_params(), model.num_params(non_embedding=False)) == (26_816, 27_328)
    assert model.flops_per_token() == 173_184  # 6 * 26,816 + 12 * L 2 * H 2 * Q 16 * T 16 (= 12,288)
    with pytest.raises(ValueError, match="longer than block_size"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="divisible"):
        GPT(GPTConfig(n_head=3, n_embd=32, vocab_size=10))


def test_parameter_counts_match_the_ones_nanogpt_prints():
    """Published figures, not the model's own formula: nanoGPT prints "number of parameters: 123.65M" for
    GPT-2 small (124,439,808 weights with tied embeddings, less 1024 x 768 position embeddings) and 0.80M for
    its shakespeare_char config."""
    gpt2 = GPT(GPTConfig(n_layer=12, n_head=12, n_embd=768, block_size=1024, vocab_size=50257, bias=True))
    assert (gpt2.num_params(), gpt2.num_params(non_embedding=False)) == (123_653_376, 124_439_808)
    del gpt2
    char = GPT(GPTConfig(n_layer=4, n_head=4, n_embd=128, block_size=64, vocab_size=65))
    assert round(char.num_params() / 1e6, 2) == 0.80


def test_config_errors_name_the_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[sources]]\nname = "a"\npath = "x"\n[trainer]\nmax_steps = 5\ntoken_budget = 100\n')
    with pytest.raises(ConfigError, match="exactly one of trainer.token_budget"):
        load_train_config(bad)
    good = tmp_path / "good.toml"
    good.write_text('[[sources]]\nname = "a"\npath = "x"\n[trainer]\nmax_steps = 5\n')
    with pytest.raises(ConfigError, match=r"mixture: \['nope'\] name no source"):
        load_train_config(good, ["mixture.nope=1"])
    with pytest.raises(ConfigError, match="model.n_layer"):
        load_train_config(good, ["model.n_layer=0"])
    with pytest.raises(ConfigError, match=r"model: .*n_embd \(128\) must be divisible by n_head \(3\)"):
        load_train_config(good, ["model.n_head=3"])
    with pytest.raises(ConfigError, match="every source weight is zero"):
        load_train_config(good, ["mixture.a=0"])
    mixture = EXPERIMENTS / "train_mixture.toml"
    with pytest.raises(ConfigError, match=r"curriculum\.schedule.*starts must ascend"):
        load_train_config(mixture, ["curriculum.schedule.starts=[0, 0.5, 0.2]"])
    with pytest.raises(ConfigError, match=r"curriculum\.schedule.*sum to 1"):
        load_train_config(mixture, ['curriculum.schedule={kind = "strict", fractions = [0.5, 0.2]}'])
    cfg = load_train_config(EXPERIMENTS / "train_shakespeare_char.toml", ["trainer.max_steps=10"])
    assert cfg.total_steps == 10 and cfg.tokens_per_step == 768  # batch 12 x block 64
    small = tmp_path / "budget.toml"
    small.write_text('[[sources]]\nname = "a"\npath = "x"\n[model]\nblock_size = 16\n'
                     '[trainer]\nbatch_size = 4\ngrad_accum_steps = 2\ntoken_budget = 1000\n')
    assert load_train_config(small).total_steps == 8  # 1000 tokens / (4 x 2 x 16 = 128 per step) = 7.8 -> 8
    budget = load_train_config(EXPERIMENTS / "train_mixture.toml", ["mixture.gsm8k=3"])
    assert budget.total_steps == 500 and budget.source_weights["gsm8k"] == 3


@needs_data
def test_shakespeare_char_learns_quickly(tmp_path):
    cfg = load_train_config(
        EXPERIMENTS / "train_shakespeare_char.toml",
        [
            "trainer.max_steps=100",
            "trainer.eval_interval=100",
            "trainer.eval_windows=48",
            "tracking.enabled=false",
            f"output.dir={tmp_path}",
        ],
    )
    result = train(cfg)
    first, last = result.curves[0].losses["val/shakespeare"], result.losses["val/shakespeare"]
    assert first.nats_per_token > 4.0  # about ln(67) at init
    assert last.nats_per_token < 2.8  # already better than a unigram model (about 3.3 nats)
    # ASCII text: one character is one byte, so bits per byte = nats per token / ln 2
    assert last.bits_per_byte == pytest.approx(last.nats_per_token / math.log(2), rel=1e-3)
    assert result.steps == 100 and result.tokens == 76_800 and result.tokens_per_s > 0  # 100 steps of 12 x 64


@needs_data
def test_resume_gives_the_same_loss_as_an_uninterrupted_run(tmp_path):
    full = train(tiny(tmp_path / "a", **{"trainer.max_steps": 30}))

    def stop_at_20(event):
        if event.step == 20:
            raise StopTraining

    cfg = tiny(tmp_path / "b", **{"trainer.max_steps": 30})
    part = train(cfg, on_eval=stop_at_20)
    assert part.stopped and part.steps == 20
    resumed = train(cfg, resume=True)
    assert resumed.steps == 30 and not resumed.stopped
    for name, loss in full.losses.items():
        assert resumed.losses[name].nats_per_token == pytest.approx(loss.nats_per_token, abs=1e-5), name
    assert [e.step for e in resumed.curves] == [e.step for e in full.curves]


def test_running_out_of_data_ends_with_one_final_evaluation(tmp_path):
    sources = tiny(tmp_path).model_dump()["sources"]
    capped = [{**src, "max_repeats": 0.05} for src in sources]
    result = train(tiny(tmp_path / "a", **{"sources": capped, "trainer.max_steps": 400}))
    assert result.exhausted and result.steps < 400
    steps = [e.step for e in result.curves]
    assert steps[-1] == result.steps and len(steps) == len(set(steps))

    def stop_on_final(event):
        if event.reason == "final":
            raise StopTraining

    stopped = train(tiny(tmp_path / "b", **{"sources": capped, "trainer.max_steps": 400}), on_eval=stop_on_final)
    assert stopped.exhausted and stopped.stopped


@needs_data
def test_mixture_weights_move_per_source_losses_in_the_expected_direction(tmp_path):
    over = {"trainer.max_steps": 60, "trainer.eval_interval": 60}
    more_shakespeare = train(tiny(tmp_path / "s", mixture={"shakespeare": 0.9, "gsm8k": 0.1}, **over))
    more_gsm8k = train(tiny(tmp_path / "g", mixture={"shakespeare": 0.1, "gsm8k": 0.9}, **over))
    s, g = more_shakespeare.losses, more_gsm8k.losses
    assert s["val/shakespeare"].nats_per_token < g["val/shakespeare"].nats_per_token
    assert g["val/gsm8k"].nats_per_token < s["val/gsm8k"].nats_per_token
    rows = more_shakespeare.group_rows
    assert rows["shakespeare@0"] > 5 * rows["gsm8k@0"]


@needs_data
def test_curriculum_run_logs_stage_splits_and_transitions_to_mlflow(tmp_path):
    cfg = tiny(
        tmp_path,
        curriculum={"schedule": {"kind": "strict", "fractions": [0.4, 0.3, 0.3]}},
        tracking={"enabled": True},
        **{"trainer.max_steps": 20, "trainer.eval_interval": 20},
    )
    result = train(cfg)
    reasons = {e.step: e.reason for e in result.curves}
    assert reasons == {0: "interval", 8: "transition", 14: "transition", 20: "final"}
    assert {"stage/Foundations", "stage/Skill Building", "stage/Advanced Integration"} <= set(result.losses)
    import mlflow

    client = mlflow.tracking.MlflowClient(result.tracking_uri)
    history = client.get_metric_history(result.run_id, "stage/Foundations/loss")
    assert [m.step for m in history] == [0, 8, 14, 20]
    assert client.get_metric_history(result.run_id, "train/loss")


@needs_data
def test_cli_train_prints_per_split_losses(tmp_path):
    from typer.testing import CliRunner

    from synthdspy.cli import app

    out = tmp_path / "cli"
    # typer runs a lone command without its name; with several commands "train" must be given
    prefix = ["train"] if len(app.registered_commands) > 1 or app.registered_callback else []
    args = ["--set", "trainer.max_steps=5", "--set", "tracking.enabled=false", "--output", str(out)]
    res = CliRunner().invoke(app, [*prefix, str(EXPERIMENTS / "train_shakespeare_char.toml"), *args])
    assert res.exit_code == 0, res.output
    assert "val/shakespeare" in res.output and "bits/byte" in res.output
    assert (out / "result.json").is_file() and (out / "checkpoint.pt").is_file()
    bad = CliRunner().invoke(app, [*prefix, str(tmp_path / "missing.toml")])
    assert bad.exit_code == 2 and "no such configuration file" in " ".join(bad.output.split())


@pytest.mark.slow
@needs_data
def test_shakespeare_char_reaches_nanogpt_validation_loss(tmp_path):
    cfg = load_train_config(
        EXPERIMENTS / "train_shakespeare_char.toml", ["tracking.enabled=false", f"output.dir={tmp_path}"]
    )
    result = train(cfg)
    assert abs(result.losses["val/shakespeare"].nats_per_token - 1.88) < 0.05


@needs_data
def test_a_trained_proxy_model_scores_perplexity_as_its_validation_loss(tmp_path):
    from synthdspy.metrics.diversity.perplexity import perplexity
    from synthdspy.training import load_model

    cfg = tiny(tmp_path, **{"trainer.max_steps": 10})
    train(cfg)
    model, tok = load_model(cfg.out_dir)
    texts = ["To be, or not to be, that is the question.", "Natalia sold clips to 48 of her friends in April."]
    nll, n = 0.0, 0
    for text in texts:
        ids = torch.as_tensor(tok.encode(text)[:64], dtype=torch.long).unsqueeze(0)
        with torch.no_grad():
            _, loss = model(ids[:, :-1], ids[:, 1:])
        nll, n = nll + float(loss) * (ids.shape[1] - 1), n + ids.shape[1] - 1
    value = perplexity(texts, str(cfg.out_dir))
    assert value == pytest.approx(math.exp(nll / n), rel=1e-5)
    assert value < 257  # trained: better than uniform over the byte vocabulary
    with pytest.raises(FileNotFoundError, match="checkpoint.pt"):
        load_model(tmp_path)


def test_fused_optimizer_matches_the_default_adamw_update():
    """The trainer's AdamW uses the fused kernel (on CPU too) and updates as torch's default AdamW."""
    from synthdspy.training.config import OptimSpec
    from synthdspy.training.model import param_groups
    from synthdspy.training.trainer import make_optimizer

    torch.manual_seed(0)
    cfg = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=50)
    a, b = GPT(cfg), GPT(cfg)
    b.load_state_dict(a.state_dict())
    start = [p.detach().clone() for p in a.parameters()]
    spec = OptimSpec(learning_rate=1e-2, weight_decay=0.1, beta2=0.99)
    fused = make_optimizer(a, spec)
    plain = torch.optim.AdamW(param_groups(b, 0.1), lr=1e-2, betas=(0.9, 0.99), foreach=False)
    assert fused.defaults["fused"] is True
    x, y = torch.randint(0, 50, (4, 16)), torch.randint(0, 50, (4, 16))
    for _ in range(10):
        for model, opt in ((a, fused), (b, plain)):
            model(x, y)[1].backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    moved = max((p - q).abs().max().item() for p, q in zip(a.parameters(), start, strict=True))
    gap = max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert moved > 1e-2 and gap < 1e-5
