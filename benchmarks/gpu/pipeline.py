"""Stage ``data_pipeline``: images per second reaching the model, against the model's own step rate.

Each batch goes the way training takes it: uint8 from the decoded cache (the data
module's training loader), to the device, then `ImageDataModule.model_input` (crop
+ flip seeded by epoch and batch, resize and normalise with `Preprocess`), then
channels_last as the `Classifier` takes it.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from experiments.data.datamodule import ImageDataModule

from gpu.budget import Clock, Skip
from gpu.measure import sync
from gpu.report import Report
from gpu.settings import Settings

TIME_BOX_S = 60.0
"""At most this long timing batches (and at most a quarter of the time left)."""


def stage_data_pipeline(s: Settings, clock: Clock, report: Report, ctx: dict[str, Any]) -> dict[str, Any]:
    """Stage 3c: images per second reaching the model, against the model's own step rate.

    The first batch is a warm-up; the rest are timed until the batch count or the
    time box runs out.

    Args:
        s: Settings.
        clock: The deadline.
        report: The results.
        ctx: Shared state (the zoo's images/s from the throughput stage).

    Returns:
        The stage's figures.

    Raises:
        Skip: Too little time, or too little data for a timed batch.
    """
    clock.require(s.run_overhead_s / 2, "the data pipeline", s.margin_s)
    box_s = min(TIME_BOX_S, max(1.0, (clock.left() - s.margin_s) / 4))  # leave time for the later stages
    dm = ImageDataModule(
        s.data,
        batch_size=s.bench_batch,
        limit_per_class=s.limit_per_class,
        preset="cifar",
        image_size=s.bench_size,
        augment=True,
    )
    dm.prepare_data()
    dm.setup("fit")
    images_seen, timed_s, start = 0, 0.0, None
    for index, (images, _labels) in enumerate(dm.train_dataloader()):
        batch = dm.model_input(images.to(s.device, non_blocking=True), epoch=0, batch_index=index)
        batch = batch.contiguous(memory_format=torch.channels_last)
        sync(s.device)
        if start is None:
            start = time.perf_counter()  # after the warm-up batch
            continue
        images_seen += len(images)
        timed_s = time.perf_counter() - start
        if index >= s.pipeline_batches or timed_s > box_s:
            break
    if not images_seen:
        raise Skip("the training part has fewer than two batches; give more data")
    pipeline_ips = images_seen / timed_s
    model_ips = ctx.get("zoo_images_per_s")
    return {
        "size": s.bench_size,
        "batch": s.bench_batch,
        "images": images_seen,
        "timed_s": round(timed_s, 3),
        "pipeline_images_per_s": round(pipeline_ips, 1),
        "transforms": "crop+flip, resize, normalise on the device",
        "model_images_per_s": None if model_ips is None else round(model_ips, 1),
        "pipeline_over_model": None if model_ips is None else round(pipeline_ips / model_ips, 2),
        "data_not_bottleneck": None if model_ips is None else pipeline_ips >= model_ips,
    }
