"""Stage ``compile``: ``torch.compile`` of a zoo model (ResNet-50 on the GPU), interleaved with it eager.

Compile time cannot be measured beforehand, so the stage reserves a fixed allowance
(`Settings.compile_allowance_s`) beside the estimate of its timed steps.
"""

from __future__ import annotations

import time
from typing import Any

import torch

import registry

from gpu.budget import Clock
from gpu.measure import bench_step, free_memory, interleaved, probe_step_s, sync
from gpu.report import Report
from gpu.settings import Settings


def stage_compile(s: Settings, clock: Clock, report: Report, ctx: dict[str, Any]) -> dict[str, Any]:
    """Stage 4a: ``torch.compile`` of a zoo model, interleaved with the same model eager.

    Args:
        s: Settings.
        clock: The deadline.
        report: The results.
        ctx: Shared state.

    Returns:
        The stage's figures.
    """
    clock.require(s.run_overhead_s / 2, "probing the eager step", s.margin_s)
    eager_s = probe_step_s(registry.create_model(s.compile_model, num_classes=10), s.bench_batch, s.bench_size, s)
    estimate = s.compile_allowance_s + 2 * (s.warmup + s.rounds * s.steps_per_round) * eager_s
    clock.require(
        estimate,
        f"compiling {s.compile_model} ({s.compile_backend}, allowance {s.compile_allowance_s:.0f} s) and timing",
        s.margin_s,
    )
    torch.manual_seed(0)
    eager = registry.create_model(s.compile_model, num_classes=10)
    compiled_model = registry.create_model(s.compile_model, num_classes=10)
    steps = {"eager": bench_step(eager, s.bench_batch, s.bench_size, s.device)}
    compiled_model.to(s.device, memory_format=torch.channels_last)  # in place before compiling
    compiled = torch.compile(compiled_model, backend=s.compile_backend)
    steps["compiled"] = bench_step(compiled, s.bench_batch, s.bench_size, s.device)
    start = time.perf_counter()
    steps["compiled"]()  # the first call compiles
    sync(s.device)
    compile_s = time.perf_counter() - start
    medians = interleaved(steps, s)
    del steps, eager, compiled_model
    free_memory(s)
    return {
        "model": s.compile_model,
        "backend": s.compile_backend,
        "size": s.bench_size,
        "batch": s.bench_batch,
        "compile_s": round(compile_s, 1),
        "eager_ms": round(medians["eager"] * 1e3, 2),
        "compiled_ms": round(medians["compiled"] * 1e3, 2),
        "compiled_images_per_s": round(s.bench_batch / medians["compiled"], 1),
        "speedup": round(medians["eager"] / medians["compiled"], 3),
    }
