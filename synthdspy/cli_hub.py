"""``synthdspy push``: a generate run's dataset and card to the Hugging Face Hub (:mod:`synthdspy.hub`)."""

from __future__ import annotations

import typer

from synthdspy.cli_common import app, console, user_errors


@app.command("push")
@user_errors
def push_cmd(
    run_dir: str = typer.Argument(..., help="A generate run: the experiment's output dir, its generate/ dir, "
                                  "or its dataset/ export."),
    repo_id: str = typer.Argument(..., help="Hub dataset repository, owner/name (created if absent)."),
    token_env: str = typer.Option("HF_TOKEN", "--token-env", help="Environment variable holding a Hub write "
                                  "token."),
    public: bool = typer.Option(False, "--public", help="Create the repository public (default: private)."),
) -> None:
    """Upload the run's exported dataset with a generated dataset card (task, program hash, prompts,
    gates and pass rates, LMs, simulated or not)."""
    from synthdspy.hub import push

    console.print(f"pushed {run_dir} -> {push(run_dir, repo_id, token_env, private=not public)}")
