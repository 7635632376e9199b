"""The GPU benchmark of issue #8: the notebook's table, throughput, data pipeline, compile, a recipe.

Runs the stages below in order under a wall-clock deadline and writes
``results.json`` and ``results.md`` to the output folder after every stage (and
after every training run), so whatever finishes is kept when the machine is
taken back. Each stage lives in its own module of the ``gpu`` package (this folder):

1. ``environment`` (`gpu.environment`): GPU, driver, CUDA, library versions, the MLflow store in use.
2. ``notebook_table`` (`gpu.notebook`): the shipped ``seed`` experiment (ResNet-50 2 epochs,
   ResNet-101 6 epochs, 224x224, Adam 1e-3, batch 32) with bf16-mixed and
   channels_last, through `experiments.train` and tracked in MLflow.
3. ``throughput`` (`gpu.throughput`): training steps at 224x224, batch 256, bf16-mixed,
   channels_last, eager: the zoo's ``resnet50_scratch`` interleaved with timm's
   and torchvision's ``resnet50``.
   ``precision`` (`gpu.precision`): the zoo's default config (``precision: auto``,
   ``channels_last: auto``, resolved on the device) against ``32-true`` NCHW,
   ``resnet50_scratch`` with the ``cifar`` stem at 32x32, batch 32 (issue #16's
   measurement), and at the throughput stage's size and batch.
   ``data_pipeline`` (`gpu.pipeline`): images per second reaching the model (cache ->
   device -> crop + flip -> resize -> normalise) against the model's own step rate.
4. ``compile`` (`gpu.compiled`): ``torch.compile`` of the zoo model, interleaved with eager.
   ``recipe`` (`gpu.recipe`): the zoo's from-scratch recipe at 32x32 for as many epochs as fit.

A stage whose estimate (from measured step times) does not fit in the time left
is recorded as skipped with the reason; one that raises (an import included: a
stage's module is imported when it runs) is recorded as failed, and the next
stage still runs. ``--tiny`` runs every code path on a CPU with small numbers
(tiny models, a few images, 32x32, batch 8) in about a minute.

Usage (see benchmarks/gpu/README.md for the device command)::

    python benchmarks/gpu/run_gpu_bench.py --data /tmp/CIFAR-10-images-master --out $OUT
    python benchmarks/gpu/run_gpu_bench.py --tiny --data digits --out /tmp/bench
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# This folder's modules are the package `gpu`: as bare names (Python puts a script's folder first on
# the path) `settings`, `report` or `pipeline` would shadow any library's module of that name.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
for _path in (str(ROOT / "benchmarks"), str(ROOT)):  # the working tree's code wins over an installed copy
    if _path not in sys.path:  # ROOT: registry, zoo, experiments; benchmarks/: gpu, steps.py, timing.py
        sys.path.insert(0, _path)

from gpu.budget import Clock, Skip  # noqa: E402  (importable once the path above is set)
from gpu.report import Report  # noqa: E402
from gpu.settings import STAGES, Settings  # noqa: E402

StageFunction = Callable[[Settings, Clock, Report, dict[str, Any]], dict[str, Any]]

STAGE_FUNCTIONS = {
    "environment": "gpu.environment:stage_environment",
    "notebook_table": "gpu.notebook:stage_notebook_table",
    "throughput": "gpu.throughput:stage_throughput",
    "precision": "gpu.precision:stage_precision",
    "data_pipeline": "gpu.pipeline:stage_data_pipeline",
    "compile": "gpu.compiled:stage_compile",
    "recipe": "gpu.recipe:stage_recipe",
}
"""Each stage's ``module:function``, imported when the stage runs (torch and the rest load there)."""


def stage_function(name: str) -> StageFunction:
    """Import a stage's module and return its function.

    Args:
        name: The stage.

    Returns:
        ``stage(settings, clock, report, ctx) -> figures``.
    """
    module, function = STAGE_FUNCTIONS[name].split(":")
    found: StageFunction = getattr(importlib.import_module(module), function)
    return found


def run_stage(name: str, s: Settings, clock: Clock, report: Report, ctx: dict[str, Any]) -> None:
    """Run one stage, record done/skipped/failed with its time, and save the report.

    Args:
        name: The stage.
        s: Settings.
        clock: The deadline.
        report: The results.
        ctx: Shared state.
    """
    result = report.stage(name)
    start = time.perf_counter()
    print(f"[bench] {name}: starting with {clock.left():.0f} s left", flush=True)
    try:
        if clock.left() <= 0:
            raise Skip(f"the {clock.deadline_s:.0f} s deadline has passed")
        result.update(stage_function(name)(s, clock, report, ctx))
        if result.get("status") in ("pending", "running"):
            result["status"] = "done"
    except Skip as reason:
        result.update(status="skipped", reason=str(reason))
    except Exception as exc:
        traceback.print_exc()
        result.update(status="failed", error=f"{type(exc).__name__}: {str(exc)[:500]}")
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(
        f"[bench] {name}: {result['status']} in {result['seconds']} s "
        f"{result.get('reason') or result.get('error') or ''}",
        flush=True,
    )
    report.save(name, clock)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        The parsed arguments.
    """
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--deadline-s", type=float, default=360.0, help="wall-time budget in seconds (default 360)")
    parser.add_argument(
        "--out",
        default=os.environ.get("OUT") or "gpu-bench-out",
        help="results folder (default $OUT, else ./gpu-bench-out)",
    )
    parser.add_argument(
        "--work", default=None, help="scratch folder: data cache, checkpoints, artifacts (default: a temp folder)"
    )
    parser.add_argument(
        "--data", default=None, help="data source (default /tmp/CIFAR-10-images-master; --tiny: digits)"
    )
    parser.add_argument(
        "--tiny", action="store_true", help="CPU, tiny models and data: every code path in about a minute"
    )
    parser.add_argument("--log-model", action="store_true", help="also log each trained model to MLflow")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        0 when every stage ran or was skipped for time, 1 when one failed.
    """
    args = parse_args(argv)
    clock = Clock(args.deadline_s)
    data = args.data or ("digits" if args.tiny else Settings.data)
    s = Settings.tiny_cpu(data) if args.tiny else Settings(data=data)
    s.log_model = args.log_model
    out = Path(args.out).resolve()
    work = Path(args.work or tempfile.mkdtemp(prefix="zoo-gpu-bench-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ZOO_CACHE_DIR", str(work / "cache"))
    os.chdir(work)  # MLflow's default artifact root and Lightning's files land in the scratch folder
    report = Report(
        out,
        {
            "schema": 1,
            "script": "benchmarks/gpu/run_gpu_bench.py",
            "tiny": s.tiny,
            "data": data,
            "deadline_s": args.deadline_s,
            "argv": sys.argv[1:] if argv is None else argv,
            "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "settings": dataclasses.asdict(s),
            "tracking": None,
        },
    )
    report.save("start", clock)
    wanted = [name.strip() for name in args.stages.split(",") if name.strip()]
    ctx: dict[str, Any] = {"out": out, "work": work, "tracking": {"backend": "off", "uri": None, "note": "not probed"}}
    for name in STAGES:
        environment = report.stage("environment")
        if name == "environment" or (name in wanted and environment["status"] != "failed"):
            run_stage(name, s, clock, report, ctx)  # the environment is always recorded
            continue
        reason = "not asked for (--stages)" if name not in wanted else f"the environment failed: {environment['error']}"
        report.stage(name).update(status="skipped", reason=reason)
        report.save(name, clock)
    print(f"[bench] results in {out / 'results.json'} and {out / 'results.md'}", flush=True)
    return 1 if any(r["status"] == "failed" for r in report.data["stages"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
