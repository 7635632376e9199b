"""The machine a benchmark runs on, as a results file records it: CPU, the flags that decide its speed, torch.

Used by ``test_throughput_bench.py``, whose figures mean nothing without the machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import torch

from experiments.training.hardware import cpu_flags


def lscpu(text: str | None = None) -> dict[str, str]:
    """``lscpu``'s fields (``Model name``, ``CPU(s)``, ...).

    Args:
        text: Its output; run here when not given.

    Returns:
        Field to value; empty where ``lscpu`` is missing (macOS, Windows) or fails.
    """
    if text is None:
        if shutil.which("lscpu") is None:
            return {}
        done = subprocess.run(["lscpu"], capture_output=True, text=True, check=False, env={**os.environ, "LC_ALL": "C"})
        text = done.stdout if done.returncode == 0 else ""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:  # the first "Model name" (a host lists several per socket)
            fields[key.strip()] = value.strip()
    return fields


def machine_facts(fields: dict[str, str] | None = None) -> dict[str, object]:
    """This machine, as the throughput file keeps it (`zoo.throughput.describe_machine` words it).

    The flags are the ones the zoo's ``precision: auto`` reads (`experiments.training.hardware.cpu_flags`).

    Args:
        fields: From `lscpu`, for the CPU's model name; read here when not given.

    Returns:
        ``cpu`` (lscpu's model name), ``avx512_bf16`` and ``amx`` (whether the CPU computes
        bf16 natively, and has the AMX tiles), ``cpus`` (the CPUs this process may use),
        ``torch`` (its version) and ``torch_threads`` (its intra-op threads, torch's default
        unless set).
    """
    fields = lscpu() if fields is None else fields
    flags = cpu_flags()
    return {
        "cpu": fields.get("Model name") or "unknown (no lscpu)",
        "avx512_bf16": "avx512_bf16" in flags,
        "amx": any(flag.startswith("amx") for flag in flags),
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def load_average() -> list[float]:
    """The 1-, 5- and 15-minute load averages, rounded to two decimals (empty where unknown).

    Returns:
        Three numbers, or none.
    """
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []
