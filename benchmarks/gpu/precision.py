"""Stage ``precision``: the zoo's default precision and memory format against fp32 NCHW (issue #16).

Both sides are `steps.config_step`: the zoo's `Classifier` with ``auto`` resolved by
`experiments.training.hardware` as `experiments.train` resolves it, under
Lightning's own precision plugin.
"""

from __future__ import annotations

from typing import Any

from experiments import ExperimentConfig

from gpu.budget import Clock
from gpu.measure import ESTIMATE_FACTOR, free_memory, interleaved, time_step_s
from gpu.report import Report
from gpu.settings import Settings
from steps import config_step

PRECISION_CASES = ((32, 32),)
"""(input size, batch) of the precision stage besides the throughput stage's own."""
MODEL = {"model": "resnet50_scratch", "stem": "cifar"}


def stage_precision(s: Settings, clock: Clock, report: Report, ctx: dict[str, Any]) -> dict[str, Any]:
    """Stage 3b: the zoo's default precision and memory format against fp32 NCHW, interleaved.

    Args:
        s: Settings.
        clock: The deadline.
        report: The results.
        ctx: Shared state.

    Returns:
        The stage's figures: one row per (size, batch, config), with the ratio to fp32 NCHW.
    """
    base = {**MODEL, "accelerator": s.accelerator}
    cases = list(PRECISION_CASES) + ([] if s.tiny else [(s.bench_size, s.bench_batch)])
    rows = []
    for size, batch in cases:
        clock.require(s.run_overhead_s / 2, f"probing {size}x{size} batch {batch}", s.margin_s)
        default_step, default = config_step(ExperimentConfig(**base), batch, size, s.device)
        fp32_step, _ = config_step(
            ExperimentConfig(**base, precision="32-true", channels_last=False), batch, size, s.device
        )
        probe = time_step_s(fp32_step, s, warmup=0, rounds=1)  # the first step, warm-up included: on the safe side
        clock.require(
            2 * (s.warmup + s.rounds * s.steps_per_round) * probe * ESTIMATE_FACTOR,
            f"{size}x{size} x 2 configs",
            s.margin_s,
        )
        medians = interleaved({"default": default_step, "32-true NCHW": fp32_step}, s)
        for name, seconds in medians.items():
            rows.append(
                {
                    "size": size,
                    "batch": batch,
                    "config": name,
                    "precision": default.precision if name == "default" else "32-true",
                    "channels_last": default.channels_last if name == "default" else False,
                    "images_per_s": round(batch / seconds, 1),
                    "speedup_over_fp32_nchw": round(medians["32-true NCHW"] / seconds, 2),
                }
            )
        del default_step, fp32_step
        free_memory(s)
        report.stage("precision").update(rows=rows)
        report.save(f"precision:{size}x{size}-b{batch}", clock)
    return {"model": "resnet50_scratch (cifar stem)", "rows": rows}
