"""The docs' notebook and the shipped file that ask its question from the command line.

- ``docs/notebooks/resnet50_vs_resnet101.ipynb`` is executed with nbclient and a real
  ipykernel, in smoke mode (``ZOO_NOTEBOOK_SMOKE=1``: two tiny registry models, two seeds,
  60 digits images per run, one epoch), in a temporary working directory with its own
  MLflow store and data cache: every cell must run, the figure must be drawn inline and the
  last cell must print a verdict from ``compare_groups``.
- The committed notebook must carry the outputs of a real run of ResNet-50 against
  ResNet-101 (the site renders them with ``execute: false``).
- ``zoo run depth_quick --dry-run`` lists the same comparison: both models, three seeds,
  one equal budget.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from experiments.cli import main
from experiments.config.experiment import load_experiment

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "notebooks" / "resnet50_vs_resnet101.ipynb"
VERDICTS = ("better than", "no detectable difference", "cannot tell", "confounded")


def _outputs(nb: nbformat.NotebookNode) -> tuple[str, list[str]]:
    text, mimes = [], []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text.append(out.get("text", "") + str(out.get("data", {}).get("text/plain", "")))
            mimes += list(out.get("data", {}))
    return "\n".join(text), mimes


def test_notebook_runs_and_ends_with_a_verdict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOO_NOTEBOOK_SMOKE", "1")
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        cell["outputs"] = [] if cell.cell_type == "code" else cell.get("outputs", [])
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text, mimes = _outputs(nb)
    assert "2 models x 2 seeds" in text
    assert "image/png" in mimes  # the comparison, drawn inline
    verdict = nb.cells[-2].outputs[0]["text"]  # the verdict cell, before the closing text
    assert verdict.startswith("resnet_tiny_scratch vs plain_tiny_scratch: ") or verdict.startswith(
        "plain_tiny_scratch vs resnet_tiny_scratch: "
    )
    assert any(v in verdict for v in VERDICTS)
    assert "confounded" not in verdict  # the budgets are equal by construction
    assert (tmp_path / "mlflow.db").exists()  # the runs went to the store it was given


def test_committed_notebook_holds_a_real_run_of_resnet50_against_resnet101() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    text, mimes = _outputs(nb)
    assert "image/png" in mimes
    assert "3 seeds" in text
    verdict = nb.cells[-2].outputs[0]["text"]
    assert {"resnet50_scratch", "resnet101_scratch"} <= set(verdict.replace(":", " ").split())
    assert any(v in verdict for v in VERDICTS)


def test_depth_quick_is_the_notebooks_comparison(capsys: pytest.CaptureFixture[str]) -> None:
    experiment = load_experiment("depth_quick")
    runs = [(r.model, r.seed) for r in experiment.runs]
    assert sorted(runs) == sorted((m, s) for m in ("resnet50_scratch", "resnet101_scratch") for s in (0, 1, 2))
    budgets = {
        (r.data, r.preset, r.stem, r.limit_per_class, r.epochs, r.batch_size, r.early_stopping) for r in experiment.runs
    }
    assert budgets == {("digits", "cifar", "imagenet", 16, 1, 32, False)}  # one budget for all six runs
    assert main(["run", "depth_quick", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("depth_quick") == 6
    assert out.count("resnet101_scratch") >= 3
