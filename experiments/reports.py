"""What a run records after testing: the confusion matrix, per-class accuracy, the logged model."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from experiments import tracking

PIP_REQUIREMENTS = ("torch", "lightning", "bottleneck-zoo")
"""Requirements written with the logged model (given, so MLflow does not spend seconds inferring them)."""


def per_class_rows(confusion: Any, class_names: list[str]) -> list[dict[str, Any]]:
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


def confusion_figure(confusion: Any, class_names: list[str]) -> Any:
    """Draw the confusion matrix.

    Args:
        confusion: ``(C, C)`` counts (rows: true class).
        class_names: Names in label order.

    Returns:
        The matplotlib figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(class_names)
    fig, ax = plt.subplots(figsize=(max(4, 0.6 * n + 2), max(4, 0.6 * n + 1.5)))
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


def log_test_report(run: Any, module: Any) -> None:
    """Upload ``test/confusion_matrix.png`` and ``test/per_class_accuracy.csv``.

    Args:
        run: The `TrackedRun` (a `NullRun` records nothing).
        module: The `Classifier` after testing.
    """
    if not run.run_id:
        return
    import matplotlib.pyplot as plt

    from experiments.tables import format_table

    confusion = module.test_confusion.compute().cpu().numpy()
    rows = per_class_rows(confusion, module.class_names)
    run.log_text(format_table(rows, ["class", "correct", "total", "accuracy"], "csv") + "\n",
                 "test/per_class_accuracy.csv")
    fig = confusion_figure(confusion, module.class_names)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "confusion_matrix.png"
        fig.savefig(path, dpi=100)
        run.log_artifact(path, "test")
    plt.close(fig)


def log_serving_model(run: Any, dm: Any, module: Any) -> str:
    """Log the trained model with its `Preprocess` (``mlflow.pytorch.log_model``).

    Args:
        run: The `TrackedRun`.
        dm: The data module.
        module: The `Classifier`, holding the best weights.

    Returns:
        The logged model's URI (also in the run's tag ``zoo.logged_model_uri``).
    """
    import mlflow.pytorch

    from experiments.runner import serving_copy

    tracking.get_client(run.uri)  # points mlflow's fluent API at the run's store
    # Pickle, not MLflow's default 'pt2' (torch.export): an exported graph is traced for one input
    # shape, and the served model must take any batch and image size. MLflow warns about pickle on
    # every call; docs/tracking.md says it once.
    quiet = logging.getLogger("mlflow.pytorch")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        info = mlflow.pytorch.log_model(serving_copy(dm, module), name="model", run_id=run.run_id,
                                        pip_requirements=list(PIP_REQUIREMENTS), serialization_format="pickle")
    finally:
        quiet.setLevel(level)
    run.set_tags({tracking.LOGGED_MODEL_TAG: info.model_uri})
    return info.model_uri
