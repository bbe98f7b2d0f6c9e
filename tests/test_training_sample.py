"""`synthdspy sample`: seeded, batched sampling from a trained proxy model into JSONL that `train` reads."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from synthdspy.cli import app
from synthdspy.training import TrainConfig, train
from synthdspy.training.sampling import filter_logits, iter_samples, load_for_sampling

SHAKESPEARE = Path("../shared/data/tinyshakespeare/input.txt")
pytestmark = pytest.mark.usefixtures("needs_shared_data")


def config(out: Path, path: Path, fmt: str = "text", steps: int = 40) -> TrainConfig:
    """A character-level model small enough to train in a few seconds on two cores."""
    source = {"name": "docs", "path": str(path), "format": fmt, "split": "blank_lines", "limit": 800}
    if fmt == "jsonl":
        source = {"name": "docs", "path": str(path), "format": "jsonl", "template": "{text}"}
    return TrainConfig.model_validate({
        "name": "sample-test",
        "output": {"dir": str(out)},
        "tokenizer": {"kind": "char"},
        "model": {"n_layer": 2, "n_head": 2, "n_embd": 48, "block_size": 32},
        "optim": {"learning_rate": 3e-3, "min_lr": 3e-4, "warmup_steps": 5},
        "trainer": {"max_steps": steps, "batch_size": 16, "eval_interval": steps, "eval_windows": 8, "threads": 1},
        "sources": [source],
        "validation": {"mode": "tail", "fraction": 0.05},
        "tracking": {"enabled": False},
    })


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model")
    train(config(out, SHAKESPEARE))
    return out


def cli(*args: str):
    return CliRunner().invoke(app, ["sample", *args])


def read(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]


def test_same_seed_same_text_other_seed_other_text(model_dir, tmp_path):
    common = ["-n", "6", "--max-tokens", "40", "--batch-size", "4", "--temperature", "1.0"]
    runs = {}
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        res = cli(str(model_dir), *common, "--seed", seed, "-o", str(tmp_path / f"{name}.jsonl"))
        assert res.exit_code == 0, res.output
        runs[name] = read(tmp_path / f"{name}.jsonl")
    assert len(runs["a"]) == 6 and any(runs["a"])
    assert runs["a"] == runs["b"]
    assert runs["a"] != runs["c"]


def greedy_by_hand(model, ids: list[int], steps: int, vocab: int, banned: int) -> list[int]:
    """Argmax decoding that re-reads the whole (cropped) context at every step, without a cache."""
    block = model.cfg.block_size
    out = list(ids)
    with torch.no_grad():
        for _ in range(steps):
            logits = model(torch.tensor([out[-block:]]))[0][0, -1, :vocab]
            logits[banned] = float("-inf")
            out.append(int(logits.argmax()))
    return out[len(ids):]


def test_temperature_zero_is_argmax_decoding_and_top_k_one_is_greedy(model_dir):
    model, tok = load_for_sampling(model_dir)
    steps = 50  # past block_size 32: the cached and the re-reading paths are both exercised
    prompt = "ROMEO:\n"
    ids = [tok.eot_id, *tok.encode(prompt).tolist()]
    expected = greedy_by_hand(model, ids, steps, tok.vocab_size, tok.unk_id)
    cut = expected.index(tok.eot_id) if tok.eot_id in expected else len(expected)
    want = prompt + tok.decode(expected[:cut])
    greedy = next(iter_samples(model, tok, steps, temperature=0.0, batch_size=2, prompt=prompt))
    assert greedy.text == want and greedy.n_tokens == cut
    top1 = list(itertools.islice(iter_samples(model, tok, steps, 1.3, top_k=1, seed=3, batch_size=2,
                                              prompt=prompt), 2))
    assert [s.text for s in top1] == [want, want]
    sampled = list(itertools.islice(iter_samples(model, tok, steps, 1.3, seed=3, batch_size=4, prompt=prompt), 4))
    assert any(s.text != want for s in sampled)  # sampling at temperature 1.3 is not greedy


def test_top_p_keeps_the_smallest_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = torch.isfinite(filter_logits(logits, None, 0.75))
    assert kept.tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, None, 0.1)).tolist() == [[True, False, False, False]]
    assert torch.isfinite(filter_logits(logits, 3, None)).tolist() == [[True, True, True, False]]


def test_sampled_jsonl_trains_a_model(model_dir, tmp_path):
    samples = tmp_path / "samples.jsonl"
    res = cli(str(model_dir), "-n", "40", "--max-tokens", "60", "--seed", "1", "-o", str(samples))
    assert res.exit_code == 0, res.output
    assert "40 samples" in res.output
    result = train(config(tmp_path / "second", samples, fmt="jsonl", steps=4))
    assert result.steps == 4 and result.tokens == 4 * 16 * 32
    assert "val/docs" in result.losses


def test_bad_model_dir_and_bad_options_are_one_line_errors(model_dir, tmp_path):
    res = cli(str(tmp_path / "nowhere"), "-n", "2", "-o", str(tmp_path / "x.jsonl"))
    assert res.exit_code == 2 and "no checkpoint.pt" in res.output and len(res.output.strip().splitlines()) == 1
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "checkpoint.pt").write_text("not a checkpoint")
    (broken / "tokenizer.json").write_text("{}")
    res = cli(str(broken), "-n", "2", "-o", str(tmp_path / "x.jsonl"))
    assert res.exit_code == 2 and "cannot load the model" in res.output
    res = cli(str(model_dir), "-n", "2", "--prompt", "\u00e9t\u00e9", "-o", str(tmp_path / "x.jsonl"))
    assert res.exit_code == 2 and "outside the model's vocabulary" in res.output
    assert not (tmp_path / "x.jsonl").exists()
