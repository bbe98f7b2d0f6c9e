"""``synthdspy push`` and ``generate --push-to-hub``: the dataset card and everything up to the upload.

There is no network here: a fake Hub replaces the Hub client's network calls at their lowest public
level (``HfApi.create_repo/repo_info/preupload_lfs_files/create_commit`` and the ``HfFileSystem``
that ``datasets`` reads the repository through), keeping the bytes each commit would upload.
Everything above them (``Dataset.push_to_hub``'s sharding, Parquet writing and card merging) is
the real code. The runs are the simulator's: pipeline tests, not evidence of data quality.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import httpx
import pyarrow.parquet as pq
import pytest
import yaml
from fsspec.implementations.memory import MemoryFileSystem
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.hf_file_system import HfFileSystemResolvedRepositoryPath
from typer.testing import CliRunner

from synthdspy.cli import app
from synthdspy.config import load_experiment

ROOT = Path(__file__).parent.parent
TOKEN = "hf_fake_write_token_0123456789abcdef"
SHA = "a" * 40
runner = CliRunner()


class HubFiles(MemoryFileSystem):
    """The fake Hub's repositories as ``datasets`` reads them through ``HfFileSystem``."""

    cachable = False
    store: dict = {}
    pseudo_dirs = [""]

    def __init__(self, *args, endpoint=None, token=None, **kwargs):
        super().__init__()


class FakeHub:
    """Records the repositories created, the token of every call and the files of every commit."""

    def __init__(self) -> None:
        HubFiles.store.clear()
        self.created: list[tuple[str, bool]] = []
        self.tokens: set[str | None] = set()
        self.commits: list[dict[str, bytes | None]] = []
        self.pending: dict[str, bytes] = {}

    def root(self, repo_id: str) -> str:
        return "/" + HfFileSystemResolvedRepositoryPath("dataset", repo_id, SHA, "").unresolve()

    def files(self, repo_id: str) -> dict[str, bytes]:
        prefix = self.root(repo_id) + "/"
        return {p.removeprefix(prefix): f.getvalue() for p, f in HubFiles.store.items() if p.startswith(prefix)}

    def install(self, monkeypatch) -> None:
        hub = self

        def create_repo(api, repo_id, repo_type=None, private=None, exist_ok=False, **kw):
            hub.tokens.add(api.token)
            hub.created.append((repo_id, private))
            return SimpleNamespace(repo_id=repo_id)

        def repo_info(api, repo_id, repo_type=None, revision=None, **kw):
            hub.tokens.add(api.token)
            return SimpleNamespace(id=repo_id, sha=SHA)

        def preupload_lfs_files(api, repo_id, additions, **kw):
            hub.tokens.add(api.token)
            for op in additions:
                hub.pending[op.path_in_repo] = Path(op.path_or_fileobj).read_bytes()

        def create_commit(api, repo_id, operations, commit_message=None, **kw):
            hub.tokens.add(api.token)
            commit: dict[str, bytes | None] = {}
            for op in operations:
                if isinstance(op, CommitOperationAdd):
                    data = hub.pending.pop(op.path_in_repo, None)
                    if data is None:
                        src = op.path_or_fileobj
                        data = src if isinstance(src, bytes) else Path(src).read_bytes()
                    HubFiles.store[f"{hub.root(repo_id)}/{op.path_in_repo}"] = io.BytesIO(data)
                    commit[op.path_in_repo] = data
                elif isinstance(op, CommitOperationDelete):
                    HubFiles.store.pop(f"{hub.root(repo_id)}/{op.path_in_repo}", None)
                    commit[op.path_in_repo] = None
            hub.commits.append(commit)
            return SimpleNamespace(commit_url=f"https://hub.invalid/{repo_id}/commit/{len(hub.commits)}", oid=SHA)

        for name, fn in (("create_repo", create_repo), ("repo_info", repo_info),
                         ("preupload_lfs_files", preupload_lfs_files), ("create_commit", create_commit)):
            monkeypatch.setattr(HfApi, name, fn)
        monkeypatch.setattr("datasets.arrow_dataset.HfFileSystem", HubFiles)


@pytest.fixture
def hub(monkeypatch) -> FakeHub:
    fake = FakeHub()
    fake.install(monkeypatch)
    return fake


def sets(out: Path) -> list[str]:
    return [f"output.dir={json.dumps(str(out))}", "tracking.autolog=false", "gates[0].threshold=8"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A finished simulator run with passed and rejected records (threshold 8 of 10)."""
    from synthdspy.pipeline import run_generate

    out = tmp_path_factory.mktemp("push") / "out"
    run_generate(load_experiment(ROOT / "experiments" / "quickstart.toml", sets(out)), n=4, show_progress=False)
    return out


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_push_uploads_the_dataset_and_a_card_naming_what_made_it(run_dir, hub, monkeypatch):
    from datasets import load_from_disk

    from synthdspy.gate_report import gate_report
    from synthdspy.hub import push

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert push(run_dir, "me/lessons") == "https://huggingface.co/datasets/me/lessons"
    assert hub.created == [("me/lessons", True)] and hub.tokens == {TOKEN}
    files = hub.files("me/lessons")
    shards = [p for p in files if p.startswith("data/train-")]
    exported = load_from_disk(str(run_dir / "generate" / "dataset"))
    uploaded = pq.read_table(io.BytesIO(files[shards[0]]))
    assert len(shards) == 1 and uploaded.column("id").to_pylist() == exported["id"]
    card = files["README.md"].decode()
    meta = front_matter(card)
    assert meta["dataset_info"]["splits"][0]["num_examples"] == exported.num_rows  # datasets merged its metadata in
    facts = json.loads((run_dir / "generate" / "generation.json").read_text())
    report = gate_report(run_dir)
    assert meta["synthdspy"]["program_hash"] == facts["program_hash"] and meta["synthdspy"]["simulated"] is True
    assert meta["synthdspy"]["gate_pass_rates"] == {"reward": round(report.gates[0].pass_rate, 4)}
    assert "simulated" in meta["tags"] and meta["synthdspy"]["task"] == "textbook"
    assert "generated by the offline simulator, not a real llm" in card.lower()
    gate = report.gates[0]
    assert f"| reward | {gate.n} | {gate.passed} | {100 * gate.pass_rate:.1f}% |" in card
    assert report.n_passed < report.n_records  # the card counts rejected records too
    assert f"Records generated: {report.n_records}; passed every gate: {report.n_passed}" in card
    for prompt in facts["prompts"].values():
        assert prompt["instructions"] in card
    assert "| generator | `sim/default` |" in card and f"| program hash | `{facts['program_hash']}` |" in card
    assert all(TOKEN.encode() not in data for commit in hub.commits for data in commit.values() if data)


def test_a_missing_token_is_a_one_line_error_before_anything_runs(run_dir, hub, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    result = runner.invoke(app, ["push", str(run_dir), "me/lessons"])
    assert result.exit_code == 2 and "HF_TOKEN" in result.output and len(result.output.strip().splitlines()) == 1
    out = tmp_path / "never"
    result = runner.invoke(app, ["generate", str(ROOT / "experiments" / "quickstart.toml"), "-n", "2",
                                 "--push-to-hub", "me/lessons", *sum((["--set", s] for s in sets(out)), [])])
    assert result.exit_code == 2 and "HF_TOKEN" in result.output and not out.exists()  # nothing generated
    assert hub.created == [] and hub.commits == []


@pytest.mark.parametrize("args, needle", [
    (["not-a-repo-id"], "expected a Hub dataset id owner/name"),
    (["me/x", "--token-env", "MY_HUB_KEY"], "MY_HUB_KEY"),
])
def test_bad_push_arguments_get_one_line(run_dir, hub, args, needle):
    result = runner.invoke(app, ["push", str(run_dir), *args])
    assert result.exit_code == 2 and needle in result.output and len(result.output.strip().splitlines()) == 1


def test_a_directory_without_a_dataset_export_is_named(tmp_path, hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    result = runner.invoke(app, ["push", str(tmp_path), "me/x"])
    assert result.exit_code == 2 and str(tmp_path) in result.output and "--export dataset" in result.output


def test_a_refused_upload_is_one_line_without_the_token(run_dir, hub, monkeypatch):
    from huggingface_hub.errors import HfHubHTTPError

    def refuse(api, *a, **kw):
        answer = httpx.Response(403, request=httpx.Request("POST", "https://hub.invalid/api/datasets/me/lessons"))
        raise HfHubHTTPError(f"403 Forbidden: token {api.token} cannot write to me/lessons\nmore detail",
                             response=answer)

    monkeypatch.setattr(HfApi, "create_commit", refuse)
    monkeypatch.setenv("MY_HUB_KEY", TOKEN)
    result = runner.invoke(app, ["push", str(run_dir / "generate"), "me/lessons", "--token-env", "MY_HUB_KEY"])
    assert result.exit_code == 2 and "403 Forbidden" in result.output
    assert TOKEN not in result.output and len(result.output.strip().splitlines()) == 1


def test_generate_push_to_hub_uploads_after_generating(tmp_path, hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    out = tmp_path / "out"
    result = runner.invoke(app, ["generate", str(ROOT / "experiments" / "quickstart.toml"), "-n", "2",
                                 "--push-to-hub", "me/fresh", *sum((["--set", s] for s in sets(out)), [])])
    assert result.exit_code in (0, 1) and "https://huggingface.co/datasets/me/fresh" in result.output
    assert TOKEN not in result.output
    shards = {p for p in hub.files("me/fresh") if p.endswith(".parquet")}
    assert len(shards) == 1 and hub.created == [("me/fresh", True)]


def test_card_of_a_real_model_run_and_of_a_run_without_facts():
    from synthdspy.dataset_card import SIMULATED_NOTE, card_text

    facts = {"task": "qa", "program_hash": "abc123", "lms": {"generator": "openai/gpt-4o-mini"}, "simulated": False,
             "prompts": {"task.generate": {"instructions": "Ask about ```code``` here.", "demos": 2}}}
    card = card_text("org/qa-set", 1500, facts, None)
    meta = front_matter(card)
    assert SIMULATED_NOTE not in card and "simulated" not in meta["tags"] and meta["size_categories"] == ["1K<n<10K"]
    assert "````text\nAsk about ```code``` here.\n````" in card and "(2 demos)" in card
    assert "pass rates are unknown" in card
    bare = card_text("org/old", 3, {}, None)
    assert "Not recorded" in bare and front_matter(bare)["synthdspy"]["task"] == "unknown"
