"""Stage ``throughput``: training steps of the zoo's ResNet-50 against timm's and torchvision's, interleaved.

All three are bare networks in the same step (`gpu.measure.bench_step`: Adam, bf16
autocast, channels_last, eager), so only the architecture's code differs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import timm
import torch
import torchvision

import registry

from gpu.budget import Clock
from gpu.measure import ESTIMATE_FACTOR, bench_step, free_memory, interleaved, probe_step_s
from gpu.report import Report
from gpu.settings import SPEED_TOLERANCE, Settings


def resnet50_variants() -> dict[str, Callable[[], torch.nn.Module]]:
    """Builders of the three ResNet-50s compared, the zoo's first."""
    return {
        "zoo resnet50_scratch": lambda: registry.create_model("resnet50_scratch", num_classes=10),
        "timm resnet50": lambda: timm.create_model("resnet50", pretrained=False, num_classes=10),
        "torchvision resnet50": lambda: torchvision.models.resnet50(num_classes=10),
    }


def stage_throughput(s: Settings, clock: Clock, report: Report, ctx: dict[str, Any]) -> dict[str, Any]:
    """Stage 3a: training steps of the zoo's ResNet-50 against timm's and torchvision's, interleaved.

    Args:
        s: Settings.
        clock: The deadline.
        report: The results.
        ctx: Shared state (the zoo's images/s goes here for the pipeline stage).

    Returns:
        The stage's figures.
    """
    builders = resnet50_variants()
    zoo_name = next(iter(builders))
    clock.require(s.run_overhead_s / 2, "probing a ResNet-50 step", s.margin_s)
    probe = probe_step_s(builders[zoo_name](), s.bench_batch, s.bench_size, s)
    free_memory(s)

    def estimate(rounds: int) -> float:
        return len(builders) * (s.warmup + rounds * s.steps_per_round) * probe * ESTIMATE_FACTOR

    rounds = s.rounds
    if estimate(rounds) + s.margin_s > clock.left():
        rounds = 2  # fewer rounds are noisier but still side by side
    clock.require(estimate(rounds), f"{len(builders)} models x {rounds} rounds", s.margin_s)
    steps = {name: bench_step(build(), s.bench_batch, s.bench_size, s.device) for name, build in builders.items()}
    medians = interleaved(steps, s, rounds)
    del steps
    free_memory(s)
    zoo_s = medians[zoo_name]
    rows = [
        {
            "model": n,
            "ms_per_step": round(t * 1e3, 2),
            "images_per_s": round(s.bench_batch / t, 1),
            "ratio_ref_over_zoo": round(t / zoo_s, 3),
        }
        for n, t in medians.items()
    ]
    ctx["zoo_images_per_s"] = s.bench_batch / zoo_s
    return {
        "size": s.bench_size,
        "batch": s.bench_batch,
        "precision": "bf16 autocast",
        "memory_format": "channels_last",
        "rounds": rounds,
        "steps_per_round": s.steps_per_round,
        "probe_ms": round(probe * 1e3, 2),
        "rows": rows,
        "zoo_at_least_as_fast": all(r["ratio_ref_over_zoo"] >= SPEED_TOLERANCE for r in rows),
        "rule": f"zoo at least as fast when every reference time / zoo time >= {SPEED_TOLERANCE}",
    }
