"""A sweep's worker processes on one machine: started first, before anything heavy is imported.

``zoo run FILE --workers N`` makes this process worker 0 and starts workers
1 .. N-1 at once, each running the same command with ``--worker-index I``. Every
worker opens (or joins) the sweep's study itself, so their start-ups (seconds of
imports) overlap instead of queueing behind this process's own. Each worker gets
its own GPU (``CUDA_VISIBLE_DEVICES``, set before torch is imported, so NVML counts
the GPUs here) or its share of the CPU cores (torch threads). The options that may
hold a password (``--storage``, ``--tracking-uri``) reach a worker through its
environment, never its command line, which ``ps`` shows to every user of the machine.

Nothing here imports torch: it must run before the first worker starts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence

THREADS_ENV = "ZOO_TORCH_THREADS"
"""Torch threads of a worker process, set by the process that starts it."""

OPTIONS_ENV = "ZOO_WORKER_OPTIONS"
"""A worker's options that may hold a secret, as JSON ``{dest: value}`` (see `secret_options`)."""

SECRET_OPTIONS = ("storage", "tracking_uri")
"""Destinations of the options whose values may hold a password: never on a worker's command line."""


def secret_options(args: argparse.Namespace) -> dict[str, str]:
    """The options given to this process that may hold a password.

    Args:
        args: The parsed arguments of ``zoo run``.

    Returns:
        ``{dest: value}`` of the ones given (``storage``, ``tracking_uri``).
    """
    return {name: value for name in SECRET_OPTIONS if isinstance(value := getattr(args, name, None), str)}


def restore_secret_options(args: argparse.Namespace) -> None:
    """In a worker: take the options its starter moved into the environment back into ``args``.

    The variable is removed from this process's environment once read.

    Args:
        args: The worker's parsed arguments, completed in place.
    """
    moved = os.environ.pop(OPTIONS_ENV, None)
    if moved is not None and args.worker_index is not None:
        for name, value in json.loads(moved).items():
            if name in SECRET_OPTIONS:
                setattr(args, name, value)


def without_values(argv: Sequence[str], values: Sequence[str]) -> list[str]:
    """A command line without the options that carry any of ``values`` (``--opt VALUE`` and ``--opt=VALUE``).

    Args:
        argv: The arguments.
        values: The values to leave out, with their options.

    Returns:
        The other arguments, in order.
    """
    kept: list[str] = []
    for token in argv:
        if token in values and kept and kept[-1].startswith("--"):
            kept.pop()
        elif not (token.startswith("--") and "=" in token and token.split("=", 1)[1] in values):
            kept.append(token)
    return kept


def gpu_count() -> int:
    """The NVIDIA GPUs this process may use, counted without starting CUDA.

    Returns:
        The count from NVML (``nvidia-ml-py``) or ``nvidia-smi -L``, limited by
        ``$CUDA_VISIBLE_DEVICES``; 0 without a driver.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    try:
        import pynvml  # deferred: optional; only machines with an NVIDIA driver answer

        pynvml.nvmlInit()
        return int(pynvml.nvmlDeviceGetCount())
    except Exception:  # no package, no driver, no GPU
        pass
    if shutil.which("nvidia-smi"):
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
        return sum(line.startswith("GPU ") for line in listed.stdout.splitlines())
    return 0


def worker_environment(index: int, workers: int, gpus: int) -> dict[str, str]:
    """What changes in worker ``index``'s environment: its GPU, or its share of the CPU cores.

    Args:
        index: The worker's index on this machine.
        workers: How many workers this machine runs.
        gpus: The GPUs this machine may use.

    Returns:
        The variables to set.
    """
    if gpus:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", ",".join(map(str, range(gpus)))).split(",")
        return {"CUDA_VISIBLE_DEVICES": visible[index % len(visible)].strip()}
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    return {THREADS_ENV: threads, "OMP_NUM_THREADS": threads}


def worker_command(argv: Sequence[str], index: int, secrets: Mapping[str, str] | None = None) -> list[str]:
    """The command line of worker ``index``: this process's own, as a worker, without its secrets.

    Args:
        argv: This process's arguments (without the program).
        index: The worker's index.
        secrets: `secret_options`: options left out here (the worker's environment carries them).

    Returns:
        The argv to start.
    """
    kept = without_values(argv, list((secrets or {}).values()))
    return [sys.executable, "-m", "experiments.cli", *kept, "--worker-index", str(index)]


def check_workers(workers: int) -> None:
    """Refuse more CPU workers than cores (each would get no core of its own).

    Args:
        workers: How many workers this machine runs (``--workers``).

    Raises:
        ValueError: With the two numbers, when no GPU takes them.
    """
    cores = os.cpu_count() or 1
    if workers > cores and not gpu_count():
        raise ValueError(f"--workers {workers}: this machine has {cores} CPU cores and no GPU; give at most {cores}")


def start_workers(
    argv: Sequence[str], workers: int, secrets: Mapping[str, str] | None = None
) -> list[subprocess.Popen[bytes]]:
    """Make this process worker 0 and start workers 1 .. N-1.

    Args:
        argv: This process's arguments (the workers repeat them).
        workers: How many workers this machine runs (``--workers``).
        secrets: `secret_options`: handed over in the workers' environment (`OPTIONS_ENV`), not argv.

    Returns:
        The started processes (each in a process group of its own: a signal reaches
        them through `stop_workers`, after they have had a chance to stop at a batch end).
    """
    gpus = gpu_count()
    os.environ.update(worker_environment(0, workers, gpus))  # before torch is imported here
    moved = {OPTIONS_ENV: json.dumps(dict(secrets or {}))}
    return [
        subprocess.Popen(
            worker_command(argv, index, secrets),
            env={**os.environ, **worker_environment(index, workers, gpus), **moved},
            start_new_session=True,
        )
        for index in range(1, workers)
    ]


def stop_workers(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """Ask started workers to stop (SIGTERM: each stops at a batch end and puts its trial back) and wait.

    Args:
        processes: From `start_workers`.
    """
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
    for process in processes:
        process.wait()


def wait_for_workers(processes: Sequence[subprocess.Popen[bytes]]) -> list[int]:
    """Wait for started workers to end.

    Args:
        processes: From `start_workers`.

    Returns:
        Their exit codes, in order (worker 1 first).
    """
    return [process.wait() for process in processes]
