"""Stage ``recipe``: the zoo's from-scratch recipe at 32x32 for as many epochs as the measured step lets fit.

The recipe: CIFAR stem, SGD Nesterov, one-cycle, label smoothing 0.1, crop + flip,
bf16-mixed, channels_last; a public anchor (`RECIPE_ANCHOR`) to read the accuracy against.
"""

from __future__ import annotations

import time
from typing import Any

import registry
from experiments import ExperimentConfig
from experiments.config.schema import from_dict

from gpu.budget import Clock, Skip, estimate_run_s
from gpu.measure import free_memory, probe_step_s
from gpu.report import Report
from gpu.runs import prepare_data, tracking_overrides, train_with_fallback
from gpu.settings import RECIPE_ANCHOR, Settings

RECIPE_SIZE = 32
"""The recipe's input size: CIFAR-10's own."""


def recipe_config(s: Settings, ctx: dict[str, Any], epochs: int) -> ExperimentConfig:
    """The zoo's from-scratch recipe at 32x32: CIFAR stem, SGD Nesterov, one-cycle, label smoothing, crop + flip.

    Args:
        s: Settings.
        ctx: Shared state (tracking, work folder).
        epochs: Epochs to train.

    Returns:
        The validated config.
    """
    return from_dict(
        {
            "model": s.recipe_model,
            "stem": "cifar",
            "data": s.data,
            "preset": "cifar",
            "augment": True,
            "limit_per_class": s.limit_per_class,
            "val_fraction": 0.1,
            "batch_size": s.recipe_batch,
            "epochs": epochs,
            "optimizer": "sgd",
            "lr": s.recipe_lr,
            "momentum": 0.9,
            "nesterov": True,
            "weight_decay": 5e-4,
            "schedule": "onecycle",
            "label_smoothing": 0.1,
            "early_stopping": False,
            "precision": "bf16-mixed",
            "channels_last": True,
            "accelerator": s.accelerator,
            "devices": "1",
            "progress_bar": False,
            "checkpoint_dir": str(ctx["work"] / "checkpoints"),
            "log_model": s.log_model,
            **tracking_overrides(ctx),
            "experiment": "gpu-bench-recipe",
            "tags": s.bench_tag,
        },
        source="the recipe",
    )


def stage_recipe(s: Settings, clock: Clock, report: Report, ctx: dict[str, Any]) -> dict[str, Any]:
    """Stage 4b: the recipe for as many epochs as the measured step time lets fit.

    Args:
        s: Settings.
        clock: The deadline.
        report: The results.
        ctx: Shared state.

    Returns:
        The stage's figures.

    Raises:
        Skip: Not even one epoch fits.
    """
    clock.require(s.run_overhead_s, "the recipe's data and probe", s.margin_s)
    sizes, _ = prepare_data(recipe_config(s, ctx, 1))
    model = registry.create_model(s.recipe_model, num_classes=10, stem="cifar")
    step_s = probe_step_s(model, s.recipe_batch, RECIPE_SIZE, s)
    free_memory(s)
    one = estimate_run_s(step_s, 1, sizes, s.recipe_batch, s)
    per_epoch = estimate_run_s(step_s, 2, sizes, s.recipe_batch, s) - one
    epochs = min(s.recipe_max_epochs, int((clock.left() - s.margin_s - (one - per_epoch)) // per_epoch))
    if epochs < 1:
        raise Skip(f"one recipe epoch needs about {one:.0f} s but {max(0.0, clock.left()):.0f} s are left")
    config = recipe_config(s, ctx, epochs)
    estimate = estimate_run_s(step_s, epochs, sizes, s.recipe_batch, s)
    start = time.perf_counter()
    result, note = train_with_fallback(config, estimate, clock, s)
    wall = time.perf_counter() - start
    return {
        "model": s.recipe_model,
        "stem": "cifar",
        "size": RECIPE_SIZE,
        "batch": s.recipe_batch,
        "lr": s.recipe_lr,
        "recipe": "SGD Nesterov 0.9, wd 5e-4, one-cycle, label smoothing 0.1, crop+flip, bf16-mixed, channels_last",
        "epochs": epochs,
        "estimate_s": round(estimate, 1),
        "probe_ms": round(step_s * 1e3, 2),
        "test_acc": result.metrics.get("test_acc"),
        "test_loss": result.metrics.get("test_loss"),
        "wall_s": round(wall, 1),
        "run_id": result.run_id,
        "anchor_acc": RECIPE_ANCHOR,
        "tracking": note,
        "sizes": sizes,
    }
