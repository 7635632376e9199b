"""Stage ``environment``: the machine, GPU, driver, library versions, and the MLflow store the runs use."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from gpu.budget import Clock
from gpu.report import Report
from gpu.settings import Settings

VERSIONED = (
    "torch",
    "torchvision",
    "lightning",
    "pytorch-lightning",
    "torchmetrics",
    "timm",
    "mlflow",
    "mlflow-skinny",
    "sqlalchemy",
    "alembic",
    "numpy",
    "bottleneck-zoo",
)
"""The distributions recorded: what the device has, what comes as wheels, and the project."""

PROBE_EXPERIMENT = "gpu-bench-probe"


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that matter here ("absent" where missing)."""
    found = {}
    for name in VERSIONED:
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:
            found[name] = "absent"
    return found


def driver_version() -> str:
    """The NVIDIA driver's version from ``nvidia-smi``, or why there is none."""
    try:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"no nvidia-smi ({type(exc).__name__})"
    if smi.returncode != 0:
        return f"nvidia-smi failed: {smi.stderr.strip()[:200]}"
    return smi.stdout.strip().split(", ")[-1]


def gpu_facts() -> dict[str, Any]:
    """GPU name, memory, driver and CUDA, or why there is none."""
    facts: dict[str, Any] = {
        "cuda_available": torch.cuda.is_available(),
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        facts.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            capability=f"{props.major}.{props.minor}",
            multiprocessors=props.multi_processor_count,
        )
    facts["driver"] = driver_version()
    return facts


def probe_store(uri: str) -> None:
    """One small run through a store (params, metrics, an artifact), so a broken store shows up before training.

    The store is opened as `experiments.train` opens it (`get_client`: checked, created and
    migrated once per process).

    Args:
        uri: The store's tracking URI.
    """
    # Deferred: the device's MLflow comes as wheels; one that does not import turns tracking off, not the stage.
    from experiments.tracking.store import get_client

    client = get_client(uri)
    experiment = client.get_experiment_by_name(PROBE_EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(PROBE_EXPERIMENT)
    run = client.create_run(experiment_id, run_name="store-probe")
    client.log_param(run.info.run_id, "probe", "1")
    client.log_metric(run.info.run_id, "probe", 1.0, step=0)
    client.log_text(run.info.run_id, "the store works", "probe.txt")
    client.set_terminated(run.info.run_id)


def choose_tracking(out: Path, work: Path) -> dict[str, Any]:
    """The MLflow store the runs use: SQLite in the output folder, else a file store, else none.

    Args:
        out: Output folder (the SQLite file comes back with the results).
        work: Work folder (artifacts, a file store).

    Returns:
        ``backend`` (``sqlite``, ``file`` or ``off``), ``uri`` and ``note``.
    """
    attempts = [("sqlite", f"sqlite:///{out / 'mlflow.db'}"), ("file", (work / "mlruns").as_uri())]
    notes = []
    for backend, uri in attempts:
        if backend == "file":  # MLflow 3 refuses file stores unless told to allow them
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        try:
            probe_store(uri)
            return {"backend": backend, "uri": uri, "note": "; ".join(notes) or "the SQLite store, as usual"}
        except ImportError as exc:
            return {"backend": "off", "uri": None, "note": f"mlflow is not importable ({type(exc).__name__}: {exc})"}
        except Exception as exc:
            notes.append(f"{backend} store failed ({type(exc).__name__}: {str(exc)[:200]})")
    return {"backend": "off", "uri": None, "note": "; ".join(notes)}


def stage_environment(s: Settings, clock: Clock, report: Report, ctx: dict[str, Any]) -> dict[str, Any]:
    """Stage 1: machine, GPU, versions and the MLflow store.

    Args:
        s: Settings.
        clock: The deadline.
        report: The results.
        ctx: Shared state between stages (the tracking choice goes here).

    Returns:
        The stage's figures.

    Raises:
        RuntimeError: The GPU mode without a CUDA device (the facts gathered are kept).
    """
    if s.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True  # Lightning keeps the session's value
        torch.set_float32_matmul_precision("high")
    tracking = choose_tracking(ctx["out"], ctx["work"])
    ctx["tracking"] = tracking
    report.data["tracking"] = tracking
    facts = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        **gpu_facts(),
        "versions": library_versions(),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "tracking": tracking,
    }
    report.stage("environment").update(facts)  # kept even when the check below fails the stage
    if s.device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("no CUDA device is visible to torch; run with --tiny on a CPU")
    return facts
