"""What a run records after testing: the confusion matrix, per-class accuracy, the logged model."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import mlflow.pytorch
import numpy as np
from matplotlib.figure import Figure

from experiments.analysis.tables import format_table
from experiments.data.datamodule import ImageDataModule
from experiments.serving.model import serving_copy
from experiments.tracking.names import CONFUSION_ARTIFACT, LOGGED_MODEL_NAME, LOGGED_MODEL_TAG, PER_CLASS_ARTIFACT
from experiments.tracking.runs import Run, TrackedRun
from experiments.tracking.store import get_client
from experiments.training.classifier import Classifier

PIP_REQUIREMENTS = ("torch", "lightning", "bottleneck-zoo")
"""Requirements written with the logged model (given, so MLflow does not spend seconds inferring them)."""


def per_class_rows(confusion: np.ndarray, class_names: list[str]) -> list[dict[str, Any]]:
    """Per-class accuracy from a confusion matrix (rows: true class).

    Args:
        confusion: ``(C, C)`` counts.
        class_names: Names in label order.

    Returns:
        One dict per class: ``class``, ``correct``, ``total``, ``accuracy``.
    """
    rows = []
    for i, name in enumerate(class_names):
        total = int(confusion[i].sum())
        correct = int(confusion[i, i])
        rows.append({"class": name, "correct": correct, "total": total,
                     "accuracy": round(correct / total, 4) if total else float("nan")})
    return rows


def confusion_figure(confusion: np.ndarray, class_names: list[str]) -> Figure:
    """Draw the confusion matrix, each cell with its count.

    Args:
        confusion: ``(C, C)`` counts (rows: true class).
        class_names: Names in label order.

    Returns:
        The matplotlib figure (drawn without pyplot: nothing to close).
    """
    n = len(class_names)
    fig = Figure(figsize=(max(4, 0.6 * n + 2), max(4, 0.6 * n + 1.5)))
    ax = fig.subplots()
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    peak = confusion.max() if confusion.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, int(confusion[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if confusion[i, j] > peak / 2 else "black")
    ax.set_title("test confusion matrix")
    fig.tight_layout()
    return fig


def log_test_report(run: Run, module: Classifier) -> None:
    """Upload ``test/confusion_matrix.png`` and ``test/per_class_accuracy.csv``.

    Args:
        run: The run (one without an id records nothing).
        module: The `Classifier` after testing.
    """
    if not run.run_id:
        return
    confusion = module.test_confusion.compute().cpu().numpy()
    rows = per_class_rows(confusion, module.class_names)
    run.log_text(format_table(rows, ["class", "correct", "total", "accuracy"], "csv") + "\n", PER_CLASS_ARTIFACT)
    folder, name = CONFUSION_ARTIFACT.rsplit("/", 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        confusion_figure(confusion, module.class_names).savefig(path, dpi=100)
        run.log_artifact(path, folder)


def log_serving_model(run: TrackedRun, dm: ImageDataModule, module: Classifier) -> str:
    """Log the trained model with its `Preprocess` (``mlflow.pytorch.log_model``).

    Args:
        run: The run to log the model into (its experiment and store).
        dm: The data module (its evaluation `Preprocess`).
        module: The `Classifier`, holding the best weights.

    Returns:
        The logged model's URI (also in the run's tag ``zoo.logged_model_uri``).
    """
    get_client(run.uri)  # points mlflow's fluent API at the run's store
    # Pickle, not MLflow's default 'pt2' (torch.export): an exported graph is traced for one input
    # shape, and the served model must take any batch and image size. MLflow warns about pickle on
    # every call; docs/tracking.md says it once.
    quiet = logging.getLogger("mlflow.pytorch")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        info = mlflow.pytorch.log_model(serving_copy(dm.preprocess, module.model), name=LOGGED_MODEL_NAME,
                                        run_id=run.run_id, pip_requirements=list(PIP_REQUIREMENTS),
                                        serialization_format="pickle")
    finally:
        quiet.setLevel(level)
    run.set_tags({LOGGED_MODEL_TAG: info.model_uri})
    return info.model_uri
