"""`train(config)`: a config in, a trained, tested and recorded run out.

The order of work: validate the config, seed, load the data and build the model
(so that bad input fails before a run exists), create or reopen the MLflow run,
then train, test the best checkpoint, and record the summary inside the run's
`lifecycle`, which sets the final status however it ends. The runner holds a
`Run` and never asks which kind: one that records nothing does so by itself.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

import registry
from experiments.config.schema import ExperimentConfig, is_plumbing
from experiments.console import is_verbose
from experiments.data.datamodule import ImageDataModule
from experiments.serving.weights_uri import weights_store
from experiments.tracking import readback
from experiments.tracking.checkpoints import load_checkpoint
from experiments.tracking.errors import TrackingError
from experiments.tracking.heartbeat import why_dead
from experiments.tracking.names import (
    BEST_WEIGHTS_ARTIFACT,
    CONFIG_ARTIFACT,
    DATA_CACHE_TAG,
    LAST_STATE_ARTIFACT,
    MODEL_TAG,
    PARENT_TAG,
    WEIGHTS_INFO_ARTIFACT,
)
from experiments.tracking.runs import DatasetRecord, NullRun, Run, TrackedRun, config_params
from experiments.tracking.source import source_facts
from experiments.tracking.store import require_writable
from experiments.training import distributed, finetune, hardware, reports
from experiments.training.atomic import AtomicCheckpointIO
from experiments.training.callbacks import EpochLines, ResumableEarlyStopping, RunRecorder
from experiments.training.classifier import Classifier
from experiments.training.interrupts import StopSignals
from registry.info import count_flops

C = TypeVar("C", bound=Callback)

DATA_FIELDS = ("batch_size", "val_fraction", "seed", "limit_per_class", "decode_size")
"""Config fields that `ImageDataModule` takes under the same names: what is read and how it is split, ..."""
PREPROCESS_FIELDS = ("preset", "image_size", "mean", "std", "augment")
"""... and what the images become (`experiments.data.transforms.resolve_preset`) ..."""
AUGMENT_FIELDS = (
    "train_image_size",
    "repeated_augment",
    "auto_augment",
    "augment_magnitude",
    "erase_prob",
    "mixup_alpha",
    "cutmix_alpha",
    "mixup_prob",
    "mixup_switch_prob",
)
"""... and what training batches become besides the preset's crop and flip."""

LOG_EVERY_N_STEPS = 50
"""Steps between two logged ``train_loss`` values (Lightning's default; each is one write to the store)."""


@dataclass
class RunExtras:
    """What a caller adds to a run beyond its config (a sweep: the trial's number and its pruner).

    Attributes:
        params: More params, logged with the config's.
        tags: More tags, set when the run is created.
        callbacks: More Lightning callbacks, after the runner's own.
    """

    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, Any] = field(default_factory=dict)
    callbacks: list[Callback] = field(default_factory=list)


@dataclass
class TrainResult:
    """What `train` returns.

    Attributes:
        run_id: The MLflow run id (``None`` with tracking off).
        metrics: Summary figures: ``best_val_acc``, ``epoch_of_best``, ``test_acc``,
            ``test_loss``, ``train_time_s``, ``images_per_sec``, ``epochs``.
        checkpoint_dir: The run's local checkpoint folder.
        best_checkpoint: Path of the best checkpoint.
        config: The config the run used.
        tracking_uri: The MLflow store (``None`` with tracking off).
        extra: Other facts: ``fit_wall_s`` and ``fit_cpu_s``, the wall and CPU time of ``Trainer.fit``.
    """

    run_id: str | None
    metrics: dict[str, float]
    checkpoint_dir: Path
    best_checkpoint: str
    config: ExperimentConfig
    tracking_uri: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def build_datamodule(config: ExperimentConfig) -> ImageDataModule:
    """The `ImageDataModule` the config describes, prepared and set up.

    Args:
        config: The run's config.

    Returns:
        The data module, after ``prepare_data()`` and ``setup("fit")``.
    """
    dm = ImageDataModule(
        config.data,
        workers=int(config.workers) if config.workers.isdigit() else "auto",
        pretrained_cfg=registry.model_info(config.model)["pretrained_cfg"] or None,
        **{name: getattr(config, name) for name in (*DATA_FIELDS, *PREPROCESS_FIELDS, *AUGMENT_FIELDS)},
    )
    dm.prepare_data()
    dm.setup("fit")
    return dm


def open_run(config: ExperimentConfig, resume_run_id: str | None = None, extras: RunExtras | None = None) -> Run:
    """Create the run's MLflow record (or reopen it to resume); a `NullRun` with tracking off.

    The one place a run is born; a distributed launch (rank > 0) or a sweep's
    child run would be decided here.

    Args:
        config: The run's config.
        resume_run_id: A run to continue.
        extras: More tags for a new run.

    Returns:
        `TrackedRun`, `NullRun`, or on a DDP rank other than 0 a `distributed.FollowerRun`.
    """
    if not config.tracking:
        return NullRun()
    if not distributed.is_rank_zero():  # a DDP copy of this command: rank 0 owns the run
        return distributed.FollowerRun()
    if resume_run_id:
        return TrackedRun.reopen(resume_run_id, config.tracking_uri)
    tags = {MODEL_TAG: config.model, **config.tags, **(extras.tags if extras else {})}
    if config.parent_run:  # a sweep's child: MLflow nests it under the parent
        tags[PARENT_TAG] = config.parent_run
    return TrackedRun.create(config.experiment, config.default_run_name(), tags, config.tracking_uri)


def record_start(
    run: Run,
    config: ExperimentConfig,
    module: Classifier,
    dm: ImageDataModule,
    restart: bool = False,
    extra_params: dict[str, Any] | None = None,
) -> None:
    """Log what a run is: config params and file, model facts, data sizes, source and versions.

    Args:
        run: The run to record into.
        config: The run's config.
        module: The `Classifier`.
        dm: The data module.
        restart: The run was killed before its first state and starts again: what it
            recorded stays (its ``config.yaml`` is what the resume read), the rest is added.
        extra_params: More params (`RunExtras.params`).
    """
    spec = registry.get_spec(config.model)
    summary = dm.summary()
    params: dict[str, Any] = {
        **config_params(experiment_params(config, module, dm)),
        "model.family": spec.family,
        "model.num_params": sum(p.numel() for p in module.model.parameters()),
        "model.pretrained": spec.pretrained or "none",
        "data.num_classes": dm.num_classes,
        **{f"data.{part}": summary[part] for part in ("num_train", "num_val", "num_test")},
        "data.image_size": "x".join(map(str, summary["image_size"])),
        **(extra_params or {}),
    }
    run.log_params({k: v for k, v in params.items() if k not in run.recorded.params})
    run.set_tags({**source_facts(), DATA_CACHE_TAG: summary.get("cache_key", "")})
    if not restart:
        run.log_inputs(
            [DatasetRecord(p.name, p.digest, p.source, p.source_type, p.context, p.profile) for p in dm.parts()]
        )
        run.log_text(config.to_yaml(), CONFIG_ARTIFACT)
    run.log_text(json.dumps(weights_info(config, dm), indent=2), WEIGHTS_INFO_ARTIFACT)


def experiment_params(config: ExperimentConfig, module: Classifier, dm: ImageDataModule) -> dict[str, Any]:
    """The config fields that describe what a run trains, with the values it actually used.

    Plumbing (where and how it ran: the store, the folders, the progress bar) stays
    in ``config.yaml``; a preset's values are resolved (the image size, mean, std and
    augmentation it stood for, the model's own stem); a field left unset that the run
    did not use (no EMA, no clipping, no head learning rate) is left out rather than
    logged as ``None``. So runs that differ in params differ in what they trained.

    Args:
        config: The run's config.
        module: The `Classifier` (its model's stem).
        dm: The data module (its resolved preset).

    Returns:
        ``{field: value}``.
    """
    preset = dm.preset
    decoded = dm.summary()["image_size"]
    values = {k: v for k, v in config.to_dict().items() if not is_plumbing(k)}
    values.update(
        stem=getattr(module.model, "stem", config.stem),
        image_size=preset.image_size or decoded[0],
        mean=list(preset.mean),
        std=list(preset.std),
        augment=preset.augment,
        interpolation=preset.interpolation,
    )
    return {k: v for k, v in values.items() if v is not None and v != {}}


def weights_info(config: ExperimentConfig, dm: ImageDataModule) -> dict[str, Any]:
    """What the best weights fit: model name, builder arguments, classes, preprocessing.

    Args:
        config: The run's config.
        dm: The data module.

    Returns:
        A JSON-able dict (the run's ``weights/model.json``).
    """
    return {
        "model": config.model,
        "model_kwargs": config.model_kwargs(dm.num_classes),
        "class_names": list(dm.classes),
        "preprocess": dm.preprocess.config(),
    }


def build_trainer(
    config: ExperimentConfig,
    run: Run,
    ckpt_dir: Path,
    steps_per_epoch: int = LOG_EVERY_N_STEPS,
    extra_callbacks: list[Callback] | None = None,
) -> L.Trainer:
    """The Lightning `Trainer` with the run's callbacks, the run as its logger.

    Args:
        config: The run's config (``precision: auto`` is resolved here too, as `train` does).
        run: The run the callbacks and Lightning write into.
        ckpt_dir: The run's own checkpoint folder.
        steps_per_epoch: Training batches per epoch (short epochs log ``train_loss`` more often).
        extra_callbacks: More callbacks, after the runner's own (they see each epoch's figures logged).

    Returns:
        The trainer.
    """
    # Both at validation end, so that RunRecorder.on_train_epoch_end sees this epoch's files.
    best = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best-epoch{epoch:03d}",
        auto_insert_metric_name=False,
        monitor=config.monitor,
        mode=config.monitor_mode,
        save_top_k=1,
        save_on_train_epoch_end=False,
    )
    # Lightning's save_last writes last.ckpt only in a step that saved a new best: a run whose val_acc
    # stopped improving would resume from its best epoch. A second checkpoint keeps every validation end.
    last = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename=Path(LAST_STATE_ARTIFACT).stem,
        enable_version_counter=False,
        save_on_train_epoch_end=False,
    )
    log_lr = config.schedule != "none" or config.warmup_epochs > 0
    callbacks: list[Callback] = [
        best,
        last,
        RunRecorder(run, best, ckpt_dir / Path(BEST_WEIGHTS_ARTIFACT).name, log_lr=log_lr),
    ]
    distributed.hand_over(run)  # before fit, where Lightning starts the other ranks with this environment
    callbacks.append(distributed.RunIdBroadcast(run, config.batch_size))
    if config.early_stopping:
        callbacks.append(
            ResumableEarlyStopping(
                monitor=config.monitor, mode=config.monitor_mode, min_delta=config.min_delta, patience=config.patience
            )
        )
    callbacks += finetune.extra_callbacks(config)  # freezing, EMA, gradient norms
    callbacks += extra_callbacks or []
    progress_bar = config.progress_bar if config.progress_bar is not None else sys.stdout.isatty()
    if not progress_bar:
        callbacks.append(EpochLines())  # off a terminal: a line per epoch, not a redrawn bar
    return L.Trainer(
        max_epochs=config.epochs,
        accelerator=config.accelerator,
        devices=config.devices,  # Lightning parses auto, -1, a count and a list such as 0,1
        strategy=config.strategy,
        num_nodes=config.num_nodes,
        # one of the config's PRECISIONS with auto resolved: each is a name Lightning takes
        precision=cast(hardware.TrainingPrecision, hardware.resolve_hardware(config).precision),
        detect_anomaly=config.detect_anomaly,
        callbacks=callbacks,
        logger=run,
        default_root_dir=str(ckpt_dir),
        enable_progress_bar=progress_bar,
        plugins=[AtomicCheckpointIO()],  # checkpoints written beside their target, then renamed: whole or not at all
        enable_model_summary=is_verbose(),
        log_every_n_steps=max(1, min(LOG_EVERY_N_STEPS, steps_per_epoch)),
        gradient_clip_val=config.grad_clip,
        gradient_clip_algorithm=config.grad_clip_algorithm,
        accumulate_grad_batches=config.accumulate_grad_batches,
    )


def callback_of(trainer: L.Trainer, kind: type[C]) -> C:
    """The trainer's callback of a kind (`build_trainer` gives it one of each of its own).

    Args:
        trainer: A trainer from `build_trainer`.
        kind: `RunRecorder`, or `ModelCheckpoint` (the best one: it comes first).

    Returns:
        The callback.
    """
    callbacks = trainer.callbacks  # type: ignore[attr-defined]  # Lightning sets it without declaring it
    return next(c for c in callbacks if isinstance(c, kind))


def best_checkpoint(trainer: L.Trainer) -> str:
    """The best checkpoint file so far (``""`` before one is saved).

    Args:
        trainer: A trainer from `build_trainer`.

    Returns:
        The path its first `ModelCheckpoint` keeps.
    """
    return callback_of(trainer, ModelCheckpoint).best_model_path


def test_best(trainer: L.Trainer, module: Classifier, dm: ImageDataModule, run: Run) -> dict[str, float]:
    """Test the best checkpoint; fall back to the run's best weights when its file is elsewhere.

    Args:
        trainer: The trainer after ``fit``.
        module: The `Classifier`.
        dm: The data module.
        run: The run (a resumed run's best file may sit on another machine).

    Returns:
        ``{"test_acc": ..., "test_loss": ...}``.
    """
    best = best_checkpoint(trainer)
    if best and Path(best).is_file():
        trainer.test(module, datamodule=dm, ckpt_path=best, verbose=False)
    else:
        if run.uri:
            state, _ = readback.best_weights(str(run.run_id), run.uri)
            module.model.load_state_dict(state)
        trainer.test(module, datamodule=dm, verbose=False)
    # Figures logged with logger=False are not in test()'s return value; callback_metrics has them all.
    return {k: float(trainer.callback_metrics[k]) for k in ("test_acc", "test_loss") if k in trainer.callback_metrics}


def train(
    config: ExperimentConfig,
    *,
    resume_run_id: str | None = None,
    last_state: str | Path | None = None,
    extras: RunExtras | None = None,
) -> TrainResult:
    """Train, test and record one run.

    Args:
        config: The run's config (validated here again).
        resume_run_id: Continue this MLflow run (see `resume`).
        last_state: Training state to continue from (a Lightning checkpoint).
        extras: More params, tags and callbacks (a sweep's trial).

    Returns:
        The run id, summary metrics and where the checkpoints are.

    Raises:
        ZooError: For bad input, before any run is created.
    """
    config = hardware.resolve_hardware(config.validate())  # precision and memory format: auto as used here
    if config.tracking:  # an unreachable server or an unusable store: one line in seconds, before the data is read
        require_writable(config.tracking_uri)
    L.seed_everything(config.seed, verbose=False)
    dm = build_datamodule(config)
    with weights_store(config.tracking_uri):  # --weights runs:/ID reads the run from this run's store
        module = Classifier(config, dm.num_classes, list(dm.classes), dm.preprocess.config())
    run = open_run(config, resume_run_id, extras)
    ckpt_dir = Path(config.checkpoint_dir) / (run.run_id or f"{config.default_run_name()}-{int(time.time())}")
    stop = StopSignals(run, ckpt_dir)  # SIGTERM/Ctrl-C: at once, or at a batch end while training
    with run.lifecycle(), stop.handling():
        if last_state is None:  # a new run, or one killed before its first state: the same facts again
            extra_params = extras.params if extras else None
            record_start(run, config, module, dm, restart=resume_run_id is not None, extra_params=extra_params)
        steps = -(-int(dm.summary()["num_train"]) // config.batch_size)
        trainer = build_trainer(config, run, ckpt_dir, steps, [stop, *(extras.callbacks if extras else [])])
        with run.system_metrics(config.system_metrics, resumed=resume_run_id is not None):
            started, started_cpu = time.perf_counter(), time.process_time()
            trainer.fit(module, datamodule=dm, ckpt_path=str(last_state) if last_state else None)
            fit_time = {"fit_wall_s": time.perf_counter() - started, "fit_cpu_s": time.process_time() - started_cpu}
            fit_figures = summarise_fit(trainer)  # before test(), which reloads callback state from the best file
            fit_figures["train_flops"] = fit_figures["images_seen"] * 3 * forward_flops(config, dm)
            metrics = {**fit_figures, **test_best(trainer, module, dm, run)}
        if not run.recorded.summary:  # a resume of a run killed after its summary: not twice
            run.log_metrics(metrics)
        distributed.gather_test_figures(trainer, module)  # all ranks take part; then rank 0 alone reports
        if trainer.is_global_zero and run.uri:  # a store holds the run: its report, its model, its cleanup
            reports.log_test_report(run, module)  # the same files again: replaced in place
            if config.log_model and not run.recorded.model:
                reports.log_serving_model(run, dm, module)
            keep_what_a_finished_run_needs(run, config, ckpt_dir)
    return TrainResult(run.run_id, metrics, ckpt_dir, best_checkpoint(trainer), config, run.uri, extra=fit_time)


def keep_what_a_finished_run_needs(run: Run, config: ExperimentConfig, ckpt_dir: Path) -> None:
    """A finished run keeps its best weights, logged model and test report; its training states go.

    The last training state (weights, optimizer moments, loop counters: three times
    the weights for Adam) is uploaded every epoch so that a killed run can resume;
    once the run has finished nothing resumes it, so it is removed from MLflow
    (``--keep-last-state`` keeps it). The local checkpoint folder is a second copy of
    what MLflow holds: it is removed too (``--keep-local-checkpoints`` keeps it).

    Args:
        run: The run, at its end.
        config: Its config (``keep_last_state``, ``keep_local_checkpoints``).
        ckpt_dir: Its local checkpoint folder.
    """
    if not config.keep_last_state:
        try:
            run.delete_artifacts(Path(LAST_STATE_ARTIFACT).parent.as_posix())
        except Exception as exc:  # an artifact store that cannot delete keeps the file: a warning, not a failure
            print(
                f"zoo: warning: the last training state stays in run {run.run_id} ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:160]})",
                file=sys.stderr,
            )
    if not config.keep_local_checkpoints:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        with contextlib.suppress(OSError):  # the folder of every run's checkpoints, once none is left
            ckpt_dir.parent.rmdir()


def summarise_fit(trainer: L.Trainer) -> dict[str, float]:
    """The run's training summary, read from its `RunRecorder` (totals survive a resume).

    Args:
        trainer: The trainer after ``fit``.

    Returns:
        ``best_val_acc``, ``epoch_of_best`` (1-based), ``train_time_s``,
        ``images_per_sec``, ``epochs`` (epochs trained), ``optimizer_steps``, ``images_seen``
        (the budget a comparison checks: `experiments.analysis.budgets`).
    """
    recorder = callback_of(trainer, RunRecorder)
    train_time = recorder.train_time_s
    return {
        "best_val_acc": recorder.best_val_acc,
        "epoch_of_best": recorder.best_epoch + 1,
        "train_time_s": train_time,
        "images_per_sec": recorder.images_seen / train_time if train_time > 0 else 0.0,
        "epochs": len(recorder.val_acc_history),
        "optimizer_steps": trainer.global_step,
        "images_seen": recorder.images_seen,
    }


def forward_flops(config: ExperimentConfig, dm: ImageDataModule) -> int:
    """FLOPs of one forward pass of the run's model on one image at the size it trained on.

    Measured with `registry.info.count_flops` on a copy built on the meta device (no
    memory, no weights), so any strategy or wrapper around the trained model is no
    matter. Training costs about three times this per image (forward, and a backward
    of about twice the forward): ``train_flops = 3 x forward_flops x images_seen``.

    Args:
        config: The run's config (model, builder arguments).
        dm: The data module (its resolved preset's image size, else the decoded size).

    Returns:
        FLOPs (a multiply-add counts two).
    """
    side = dm.preset.image_size or dm.summary()["image_size"][0]
    kwargs = config.model_kwargs(dm.num_classes)
    if registry.get_spec(config.model).is_pretrained:
        kwargs["pretrained"] = False  # counting needs no weights: never download them
    with torch.device("meta"):
        model = registry.create_model(config.model, **kwargs)
    return count_flops(model, (int(config.model_args.get("in_chans", 3)), side, side))


def resume(run_id: str, tracking_uri: str | None = None) -> TrainResult:
    """Continue a run from its last training state, into the same MLflow run.

    The config is read back from the run's ``config.yaml`` and the state from
    ``checkpoints/last.ckpt``, both through the tracking server, so this works
    from any machine that reaches the store. A run killed before its first
    state was saved starts again from the beginning, in the same run. A FINISHED
    run, and one whose process still lives, are refused.

    Args:
        run_id: The run to continue.
        tracking_uri: The store; default as for `train`.

    Returns:
        As `train`.

    Raises:
        TrackingError: The run is FINISHED, RUNNING in a live process, or has no config.
    """
    uri = require_writable(tracking_uri)
    record = readback.get_run(run_id, uri)
    if record.info.status == "FINISHED":
        raise TrackingError(
            f"run {run_id} is FINISHED: it trained and tested to the end, so there is nothing to "
            f"resume; to train further, start a new run from its weights with --weights runs:/{run_id}"
        )
    if record.info.status == "RUNNING" and why_dead(record) is None:
        raise TrackingError(
            f"run {run_id} is RUNNING in a live process; wait for it to end or stop it "
            f"(Ctrl-C or SIGTERM) before resuming it"
        )
    # The store as given (None: $MLFLOW_TRACKING_URI again), never the resolved URI: a config holds no password.
    config = readback.run_config(run_id, uri, tracking_uri=tracking_uri, tracking=True)
    if not readback.has_artifact(run_id, LAST_STATE_ARTIFACT, uri):  # killed in its first epoch: start it again
        return train(config, resume_run_id=run_id)
    with readback.artifact_file(run_id, LAST_STATE_ARTIFACT, uri) as last:
        load_checkpoint(last)  # a pickled payload is refused before Lightning unpickles it
        return train(config, resume_run_id=run_id, last_state=last)
