"""What a run records after testing: the confusion matrix, per-class accuracy, the logged model."""

from __future__ import annotations

import functools
import importlib.metadata as md
import logging
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pytorch
import numpy as np
import torch
from matplotlib.figure import Figure
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec
from sklearn.metrics import ConfusionMatrixDisplay

from experiments.analysis.tables import format_table
from experiments.config.secrets import mask_text
from experiments.data.datamodule import ImageDataModule
from experiments.serving.export import ExportableServingModel, export_example
from experiments.serving.model import serving_copy
from experiments.tracking import readback
from experiments.tracking.names import CONFUSION_ARTIFACT, LOGGED_MODEL_TAG, PER_CLASS_ARTIFACT
from experiments.tracking.runs import Run
from experiments.training.classifier import Classifier

REQUIREMENTS = ("torch", "torchvision", "lightning", "bottleneck-zoo")
"""What loading the logged model needs, pinned to the versions that trained it (given, not inferred:
MLflow's inference spends seconds and misses the zoo itself)."""

INPUT_EXAMPLE_IMAGES = 2
"""Test images stored with the logged model as its input example."""

EXPORT_ERRORS: tuple[type[BaseException], ...] = (RuntimeError, TypeError, ValueError, AssertionError)
"""What torch.export raises on a network it cannot trace (its own errors derive from RuntimeError)."""

log = logging.getLogger(__name__)


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
        correct, total = int(confusion[i, i]), int(confusion[i].sum())
        accuracy = round(correct / total, 4) if total else float("nan")
        rows.append({"class": name, "correct": correct, "total": total, "accuracy": accuracy})
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
    display = ConfusionMatrixDisplay(confusion, display_labels=class_names)
    display.plot(ax=fig.subplots(), cmap="Blues", xticks_rotation=45, colorbar=False, text_kw={"fontsize": 8})
    display.ax_.set(xlabel="predicted", ylabel="true", title="test confusion matrix")
    fig.tight_layout()
    return fig


def log_test_report(run: Run, module: Classifier) -> None:
    """Upload ``test/confusion_matrix.png`` and ``test/per_class_accuracy.csv``.

    Args:
        run: The run the files are uploaded to.
        module: The `Classifier` after testing.
    """
    confusion = module.test_confusion.compute().cpu().numpy()
    rows = per_class_rows(confusion, module.class_names)
    run.log_text(format_table(rows, ["class", "correct", "total", "accuracy"], "csv") + "\n", PER_CLASS_ARTIFACT)
    folder, name = CONFUSION_ARTIFACT.rsplit("/", 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        confusion_figure(confusion, module.class_names).savefig(path, dpi=100)
        run.log_artifact(path, folder)


def pinned_requirements() -> list[str]:
    """`REQUIREMENTS` at the versions installed here.

    Returns:
        Such as ``["torch==2.14.1", ...]`` (a distribution that is not installed is left unpinned).
    """
    pinned = []
    for name in REQUIREMENTS:
        try:
            pinned.append(f"{name}=={md.version(name)}")
        except md.PackageNotFoundError:
            pinned.append(name)
    return pinned


def input_example(dm: ImageDataModule) -> np.ndarray:
    """A few test images as the served model takes them: uint8 ``(N, 3, H, W)``, as stored.

    Args:
        dm: The data module.

    Returns:
        The images.
    """
    images, _ = next(iter(dm.test_dataloader()))
    return images[:INPUT_EXAMPLE_IMAGES].numpy()


def log_serving_model(run: Run, dm: ImageDataModule, module: Classifier) -> str:
    """Log the trained model with its `Preprocess` as an MLflow LoggedModel of the run's experiment.

    Named after the registry model, with a signature (uint8 images ``(N, 3, H, W)``
    in, logits out) and a small input example, requirements pinned to the versions
    that trained it, and linked to the run's summary metrics (logged at step 0: the
    best checkpoint's figures and its test), so that MLflow's Models table ranks
    models on them.

    Args:
        run: The run to log the model into (its experiment and store), one that has both.
        dm: The data module (its evaluation `Preprocess`, the test images of the example).
        module: The `Classifier`, holding the best weights.

    Returns:
        The logged model's URI (also in the run's tag ``mlflow.zoo.logged_model_uri``).
    """
    run_id = str(run.run_id)
    mlflow.set_tracking_uri(str(run.uri))  # mlflow.pytorch writes through the fluent API
    # MLflow puts a run's logged model in the *active* experiment, not the run's: say which it is.
    mlflow.set_experiment(experiment_id=readback.get_run(run_id, run.uri).info.experiment_id)
    served = serving_copy(dm.preprocess, module.model)
    example = input_example(dm)
    # 'pt2' (torch.export): MLflow loads it without unpickling code where pickle is refused
    # (MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false); the exportable copy keeps batch, height and
    # width free (see experiments.serving.export). A network torch.export cannot trace is logged
    # as a pickle, as before, with a warning.
    log_model = functools.partial(
        mlflow.pytorch.log_model,
        name=module.config.model,
        run_id=run_id,
        signature=serving_signature(module.num_classes),
        pip_requirements=pinned_requirements(),
        metadata={"class_names": served.class_names},
        step=0,
    )
    quiet = logging.getLogger("mlflow.pytorch")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # MLflow warns about pickle on every call; docs/security.md says it once
    try:
        try:
            exportable = ExportableServingModel(served)
            example_in = export_example(torch.from_numpy(example)).numpy()
            info = log_model(exportable, input_example=example_in, serialization_format="pt2")
        except EXPORT_ERRORS as exc:
            log.warning(
                "the model cannot be exported for MLflow's pt2 format (%s); logging it as a pickle",
                mask_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__),
            )
            info = log_model(served, input_example=example, serialization_format="pickle")
    finally:
        quiet.setLevel(level)
    run.set_tags({LOGGED_MODEL_TAG: info.model_uri})
    return info.model_uri


def serving_signature(num_classes: int) -> ModelSignature:
    """What the logged model takes and gives: uint8 images of any batch and size in, fp32 logits out.

    Inferred from the example, the height and width would be fixed to the example's;
    the served model resizes any image itself.

    Args:
        num_classes: The logits per image.

    Returns:
        ``(N, 3, H, W)`` uint8 to ``(N, num_classes)`` float32, ``-1`` for the free sizes.
    """
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, 3, -1, -1))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, num_classes))]),
    )
