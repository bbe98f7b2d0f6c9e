"""The shipped notebooks execute end to end (on the simulator, with tiny budgets)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).parent.parent


def execute(name: str, tmp_path: Path, cwd: Path = ROOT, **env: str) -> nbformat.NotebookNode:
    """Run notebook ``name`` with its kernel in ``cwd`` (``ROOT / "notebooks"``: where Jupyter starts it)."""
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    old = dict(os.environ)
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def outputs_text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def test_compile_and_compare_notebook(tmp_path):
    out = tmp_path / "nb"
    nb = execute("compile_and_compare.ipynb", tmp_path, cwd=ROOT / "notebooks", SYNTHDSPY_NOTEBOOK_OUT=str(out))
    text = outputs_text(nb)
    assert "bootstrap-lexical" in text and "mipro-cluster" in text
    assert (out / "pareto.png").stat().st_size > 1000
    assert (out / "variants" / "mipro-cluster" / "criteria.json").exists()
    assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))


def test_mixture_notebook_opened_from_the_notebooks_directory(tmp_path):
    """Jupyter starts kernels in the notebook's folder: the notebook finds the repository root itself,
    so the experiment's relative data paths (``../shared/data``) resolve as from the command line."""
    from tuning_helpers import tiny_path

    out = tmp_path / "study"
    nb = execute("mixture_and_curriculum.ipynb", tmp_path, cwd=ROOT / "notebooks",
                 SYNTHDSPY_TUNE_EXPERIMENT=str(tiny_path(tmp_path)), SYNTHDSPY_NOTEBOOK_OUT=str(out))
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors[0]["evalue"] if errors else ""
    assert "tiny: storage" in outputs_text(nb) and (out / "report" / "summary.json").exists()
    assert not (ROOT / "notebooks" / "runs").exists()
