"""`evaluate_run`: a trained run's best weights on another data source (or its test split again).

The run's own config (its ``config.yaml``) rebuilds the model and the
preprocessing, so the weights see images exactly as in training; only the data
source (and optionally ``limit_per_class`` and the batch size) change. The test
part of the source is evaluated with the same `Classifier.test_step` as the
run's own test. The result is recorded as a new MLflow run in the same
experiment, linked to the original by the tag ``zoo.eval_of`` (and tagged
``zoo.role = eval`` so that ``zoo compare`` keeps it out of training tables),
with ``eval_acc``, ``eval_loss``, ``eval_images``, per-class accuracy
(``eval_class_acc/<class>`` and ``test/per_class_accuracy.csv``) and the
confusion matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L

from experiments.config.schema import ExperimentConfig
from experiments.data.datamodule import ImageDataModule
from experiments.tracking import readback
from experiments.tracking.names import EVAL_OF_TAG, EVAL_ROLE, MODEL_TAG, NOTE_TAG, ROLE_TAG
from experiments.tracking.runs import TrackedRun
from experiments.tracking.store import open_store, require_writable
from experiments.training.classifier import Classifier
from experiments.training.interrupts import StopSignals
from experiments.training.reports import log_test_report, per_class_rows
from experiments.training.runner import build_datamodule
from registry.errors import ZooError


class EvalError(ZooError, ValueError):
    """Data that a run's weights cannot be evaluated on."""


@dataclass
class EvalResult:
    """What `evaluate_run` returns.

    Attributes:
        source_run_id: The evaluated run.
        data: The data source evaluated on.
        accuracy: Top-1 accuracy on its test part.
        loss: Mean cross-entropy there.
        num_images: Images evaluated.
        per_class: Rows of ``class``, ``correct``, ``total``, ``accuracy``.
        run_id: The eval run recorded in MLflow (``None`` with ``log=False``).
    """

    source_run_id: str
    data: str
    accuracy: float
    loss: float
    num_images: int
    per_class: list[dict[str, Any]] = field(default_factory=list)
    run_id: str | None = None


def run_test_pass(
    config: ExperimentConfig, state: dict[str, Any], class_names: list[str]
) -> tuple[Classifier, ImageDataModule, dict[str, float]]:
    """Test the weights on the config's data (its test part).

    Args:
        config: The config (data, preprocessing, model).
        state: The model's weights.
        class_names: The classes the weights were trained on, in label order.

    Returns:
        ``(module, data module, {"test_acc", "test_loss"})``.

    Raises:
        EvalError: If the data's classes are not the trained ones.
    """
    dm = build_datamodule(config)
    if list(dm.classes) != list(class_names):
        raise EvalError(
            f"data '{config.data}' has classes {dm.classes}, but the run was trained on {class_names}; "
            f"evaluate on data with the same class folders"
        )
    module = Classifier(config, dm.num_classes, list(dm.classes), dm.preprocess.config())
    module.model.load_state_dict(state)
    trainer = L.Trainer(
        accelerator=config.accelerator,
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        precision="32-true",
    )  # the served model's figures, whatever the training precision
    trainer.test(module, datamodule=dm, verbose=False)
    metrics = {k: float(trainer.callback_metrics[k]) for k in ("test_acc", "test_loss")}
    return module, dm, metrics


def evaluate_run(
    run_id: str,
    data: str | None = None,
    *,
    limit_per_class: int | None = None,
    batch_size: int | None = None,
    accelerator: str | None = None,
    experiment: str | None = None,
    tracking_uri: str | None = None,
    log: bool = True,
) -> EvalResult:
    """Evaluate a run's best weights on a data source's test part and record it as a linked run.

    Args:
        run_id: The trained run.
        data: A data source (as ``--data``); default: the run's own (its test split again).
        limit_per_class: At most this many test images per class; default: the run's.
        batch_size: Images per batch; default: the run's.
        accelerator: Lightning accelerator; default: the run's.
        experiment: MLflow experiment of the eval run; default: the original run's.
        tracking_uri: The store; default as for `experiments.train`.
        log: Record the eval run in MLflow.

    Returns:
        The figures, the per-class rows and the eval run's id.
    """
    uri = require_writable(tracking_uri) if log else open_store(tracking_uri)
    source = readback.get_run(run_id, uri)
    asked = {"data": data, "limit_per_class": limit_per_class, "batch_size": batch_size, "accelerator": accelerator}
    changes = {k: v for k, v in asked.items() if v is not None}
    config = readback.run_config(run_id, uri, **changes, weights=None, tracking_uri=uri, progress_bar=False)
    state, info = readback.best_weights(run_id, uri)
    module, _dm, metrics = run_test_pass(config, state, list(info.get("class_names") or []))
    confusion = module.test_confusion.compute().cpu().numpy()
    result = EvalResult(
        run_id,
        config.data,
        metrics["test_acc"],
        metrics["test_loss"],
        int(confusion.sum()),
        per_class_rows(confusion, module.class_names),
    )
    if log:
        name = readback.experiment_name(source.info.experiment_id, uri)
        result.run_id = record_eval(result, config, experiment or name, source.info.run_name or run_id[:8], module, uri)
    return result


def record_eval(
    result: EvalResult, config: ExperimentConfig, experiment: str, source_name: str, module: Classifier, uri: str
) -> str:
    """Record an evaluation as its own MLflow run, linked to the evaluated one.

    Args:
        result: The figures.
        config: The config used (its data and preprocessing).
        experiment: MLflow experiment.
        source_name: The evaluated run's name.
        module: The tested `Classifier` (its confusion matrix).
        uri: Tracking URI.

    Returns:
        The eval run's id.
    """
    tags = {
        ROLE_TAG: EVAL_ROLE,
        EVAL_OF_TAG: result.source_run_id,
        MODEL_TAG: config.model,
        NOTE_TAG: f"Evaluation of run {result.source_run_id} ({source_name}) on {result.data}.",
    }
    run = TrackedRun.create(experiment, f"eval-{source_name}", tags, uri)
    with run.lifecycle(), StopSignals(run, Path.cwd()).handling():  # no training: a signal stops at once, KILLED
        run.log_params(
            {
                "eval_of": result.source_run_id,
                "model": config.model,
                "data": config.data,
                "limit_per_class": config.limit_per_class,
                "split": "test",
                "weights": f"runs:/{result.source_run_id}",
                "preset": config.preset,
            }
        )
        figures = {"eval_acc": result.accuracy, "eval_loss": result.loss, "eval_images": result.num_images}
        figures.update(
            {f"eval_class_acc/{_metric_name(r['class'])}": r["accuracy"] for r in result.per_class if r["total"]}
        )
        run.log_metrics(figures)
        log_test_report(run, module)
    return run.run_id


def _metric_name(text: str) -> str:
    # MLflow metric names allow letters, digits, _ - . / and spaces only.
    return "".join(c if c.isalnum() or c in "_-. /" else "_" for c in str(text))
