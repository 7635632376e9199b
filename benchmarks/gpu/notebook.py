"""Stage ``notebook_table``: the shipped ``seed`` experiment through `experiments.train`, beside the notebook.

The runs are the experiment file's own (models, epochs, optimizer, preset), with
what this benchmark changes: bf16-mixed and channels_last, the device, the store
the environment stage chose, and in tiny mode a tiny model, size and epoch count.
"""

from __future__ import annotations

import time
from typing import Any

import registry
from experiments import ExperimentConfig, TrainResult, load_experiment

from gpu.budget import Clock, Skip, estimate_run_s
from gpu.measure import free_memory, probe_step_s
from gpu.report import Report
from gpu.runs import prepare_data, tracking_overrides, train_with_fallback
from gpu.settings import NOTEBOOK, TOLERANCE, Settings

NOTEBOOK_ROW_TAG = "zoo.notebook_row"
"""The tag naming the notebook row a run reproduces (its model may be a tiny stand-in)."""


def notebook_configs(s: Settings, ctx: dict[str, Any]) -> list[ExperimentConfig]:
    """The shipped ``seed`` experiment's runs with this benchmark's overrides.

    Args:
        s: Settings.
        ctx: Shared state (tracking, work folder).

    Returns:
        One validated `ExperimentConfig` per notebook row, in the file's order.
    """
    overrides: dict[str, Any] = {
        "data": s.data,
        "precision": "bf16-mixed",
        "channels_last": True,
        "accelerator": s.accelerator,
        "devices": "1",
        "progress_bar": False,
        "checkpoint_dir": str(ctx["work"] / "checkpoints"),
        "log_model": s.log_model,
        **tracking_overrides(ctx),
        "experiment": "gpu-bench-seed",
        "limit_per_class": s.limit_per_class,
        "image_size": s.seed_size,
        "batch_size": s.seed_batch,
        "tags": s.bench_tag,
    }
    configs = []
    for config in load_experiment("seed", **overrides).runs:
        changes: dict[str, Any] = {
            "model": s.seed_models[config.model],
            "tags": {**config.tags, NOTEBOOK_ROW_TAG: config.model},
        }
        if s.seed_epochs:
            changes["epochs"] = s.seed_epochs
        configs.append(config.replace(**changes))
    return configs


def notebook_row(
    config: ExperimentConfig, result: TrainResult, wall_s: float, estimate_s: float, s: Settings
) -> dict[str, Any]:
    """One measured row beside the notebook's figures.

    Args:
        config: The run's config.
        result: What the run returned.
        wall_s: Its wall time.
        estimate_s: Its estimate beforehand.
        s: Settings (tiny figures are not compared with the notebook's).

    Returns:
        The row.
    """
    row_name = config.tags[NOTEBOOK_ROW_TAG]
    nb = NOTEBOOK[row_name]
    acc = result.metrics.get("test_acc")
    return {
        "notebook_row": row_name,
        "model": config.model,
        "epochs": int(result.metrics.get("epochs", config.epochs)),
        "test_acc": acc,
        "test_loss": result.metrics.get("test_loss"),
        "wall_s": round(wall_s, 1),
        "estimate_s": round(estimate_s, 1),
        "train_time_s": result.metrics.get("train_time_s"),
        "images_per_s": result.metrics.get("images_per_sec"),
        "best_val_acc": result.metrics.get("best_val_acc"),
        "notebook_acc": nb["test_acc"],
        "notebook_loss": nb["test_loss"],
        "run_id": result.run_id,
        "reproduced": None if s.tiny or acc is None else bool(acc >= nb["test_acc"] - TOLERANCE),
    }


def stage_notebook_table(s: Settings, clock: Clock, report: Report, ctx: dict[str, Any]) -> dict[str, Any]:
    """Stage 2: the ``seed`` experiment through the runner; one row per run, saved after each.

    Args:
        s: Settings.
        clock: The deadline.
        report: The results.
        ctx: Shared state.

    Returns:
        The stage's figures.

    Raises:
        Skip: When not one run fitted (each one's reason).
    """
    configs = notebook_configs(s, ctx)
    clock.require(s.run_overhead_s, "decoding the data and one training run", s.margin_s)
    sizes, decode_s = prepare_data(configs[0])
    result = report.stage("notebook_table")
    result.update(
        status="running", data=s.data, sizes=sizes, data_prepare_s=round(decode_s, 1), rows=[], skipped_runs=[]
    )
    for config in configs:
        try:
            step_s = probe_step_s(
                registry.create_model(config.model, num_classes=10), config.batch_size, s.seed_size, s
            )
            free_memory(s)
            estimate = estimate_run_s(step_s, config.epochs, sizes, config.batch_size, s)
            clock.require(estimate, f"{config.model} for {config.epochs} epochs", s.margin_s)
            start = time.perf_counter()
            trained, note = train_with_fallback(config, estimate, clock, s)
        except Skip as reason:
            result["skipped_runs"].append({"model": config.model, "reason": str(reason)})
            continue
        result["rows"].append(
            {**notebook_row(config, trained, time.perf_counter() - start, estimate, s), "tracking": note}
        )
        free_memory(s)
        report.save(f"notebook_table:{config.tags[NOTEBOOK_ROW_TAG]}", clock)
    rows = result["rows"]
    complete = len(rows) == len(configs)
    result["reproduced"] = None if s.tiny or not complete else all(r["reproduced"] for r in rows)
    result["rule"] = f"reproduced when every test accuracy >= notebook - {TOLERANCE}"
    if not rows:
        raise Skip("; ".join(r["reason"] for r in result["skipped_runs"]))
    result["status"] = "done" if complete else "partial"
    return result
