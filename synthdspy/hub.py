"""``synthdspy push``: upload a generate run's exported dataset and its card to the Hugging Face Hub.

The card (:mod:`synthdspy.dataset_card`) is committed first as ``README.md``; then
``datasets.Dataset.push_to_hub`` uploads the Parquet shards and, reading that README back,
adds its ``dataset_info``/``configs`` metadata to the card's YAML while keeping its text. The
token is read from an environment variable, passed to the Hub client only, and scrubbed from
every error message.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from synthdspy.configio import ConfigError
from synthdspy.store import StoreError

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class RunFiles:
    """Where a generate run keeps its exported dataset, record store and generation facts."""

    generate_dir: Path
    dataset_dir: Path
    store_dir: Path


def locate(run_dir: str | Path) -> RunFiles:
    """The files of the generate run at ``run_dir``: an experiment's output directory (holding
    ``generate/``), the ``generate`` directory itself, or its ``dataset`` export.

    Raises:
        ConfigError: no exported dataset there (the message names the directories looked in).
    """
    run_dir = Path(run_dir)
    for dataset_dir in (run_dir / "generate" / "dataset", run_dir / "dataset", run_dir):
        if (dataset_dir / "dataset_info.json").is_file():
            return RunFiles(dataset_dir.parent, dataset_dir, dataset_dir.parent / "store")
    raise ConfigError(f"{run_dir}: no exported dataset in {run_dir / 'generate' / 'dataset'} or {run_dir / 'dataset'} "
                      "(run `synthdspy generate` with --export dataset, the default, first)")


def build_card(files: RunFiles, repo_id: str, n_rows: int) -> str:
    """The dataset card text for the run in ``files`` (see :func:`synthdspy.dataset_card.card_text`)."""
    from synthdspy.dataset_card import card_text, run_facts
    from synthdspy.gate_report import gate_report

    try:
        report = gate_report(files.store_dir)
    except FileNotFoundError:
        report = None
    return card_text(repo_id, n_rows, run_facts(files.generate_dir, files.store_dir), report)


def check_push(repo_id: str, token_env: str = "HF_TOKEN", export: tuple[str, ...] = ("dataset",)) -> None:
    """Check, before a long run, that a push to ``repo_id`` can start: an ``owner/name`` id, a
    ``dataset`` export among ``export``, and a non-empty ``$token_env``.

    Raises:
        ConfigError: naming the first of these that fails.
    """
    from synthdspy.tracking import register_secret_env

    if not REPO_ID.match(repo_id):
        raise ConfigError(f"{repo_id!r}: expected a Hub dataset id owner/name")
    if "dataset" not in export:
        raise ConfigError(f"--push-to-hub {repo_id}: uploads the dataset export; add --export dataset")
    register_secret_env(token_env)
    if not os.environ.get(token_env):
        raise ConfigError(f"push: set the environment variable {token_env} to a Hugging Face write token "
                          "(or name another variable with --token-env)")


def push(run_dir: str | Path, repo_id: str, token_env: str = "HF_TOKEN", private: bool = True) -> str:
    """Upload the run's exported dataset (split ``train``) and its card to the dataset repository
    ``repo_id`` (created, private by default, if absent); returns the repository's URL.

    Raises:
        ConfigError: ``repo_id`` is not ``owner/name``; no exported dataset at ``run_dir``;
            ``$token_env`` is unset or empty.
        StoreError: the Hub refused or failed the upload (one line, token scrubbed).
    """
    from datasets import load_from_disk
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    from synthdspy.tracking import scrub_env_secrets

    check_push(repo_id, token_env)
    files = locate(run_dir)
    token = os.environ[token_env]
    dataset = load_from_disk(str(files.dataset_dir))
    card = build_card(files, repo_id, dataset.num_rows)
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        api.upload_file(path_or_fileobj=card.encode("utf-8"), path_in_repo="README.md", repo_id=repo_id,
                        repo_type="dataset", commit_message="synthdspy: dataset card")
        dataset.push_to_hub(repo_id, token=token, private=private, commit_message="synthdspy: records")
    except (HfHubHTTPError, OSError, ValueError) as exc:
        detail = scrub_env_secrets(" ".join(str(exc).split())).replace(token, "***")[:300]
        raise StoreError(f"push to {repo_id} failed: {type(exc).__name__}: {detail}") from None
    return f"https://huggingface.co/datasets/{repo_id}"
