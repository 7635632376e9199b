"""What ``precision: auto`` and ``channels_last: auto`` become on the hardware at hand.

The zoo trains on the fastest settings that are correct where it runs, without the
user asking:

- **precision** ``auto`` is ``bf16-mixed`` where the hardware computes bf16 natively:
  CUDA devices of compute capability 8.0 and above (Ampere, Hopper, ...), and CPUs
  with AVX512-BF16 or AMX (oneDNN runs bf16 convolutions and matrix products there
  directly). Elsewhere bf16 would be emulated, slower than fp32, so it is ``32-true``.
  Lightning's ``bf16-mixed`` keeps the weights, the optimizer and the loss in fp32
  and runs the convolutions under autocast; bf16 has fp32's exponent range, so no
  loss scaling is needed.
- **channels_last** ``auto`` is on for the CPU (oneDNN's convolutions are faster in
  NHWC in fp32 and bf16 alike, see ``docs/benchmarks.md``) and on CUDA with
  ``bf16-mixed`` or ``16-mixed`` (tensor-core convolutions take NHWC); off for fp32
  on a GPU and on other accelerators.

The run records what these resolved to: its params and its ``config.yaml`` hold the
values used, never ``auto``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from lightning.pytorch.accelerators import CUDAAccelerator, MPSAccelerator

from experiments.config.schema import ExperimentConfig

AUTO = "auto"

BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
"""``/proc/cpuinfo`` flags of CPUs that compute bf16 natively."""

BF16_CUDA_CAPABILITY = (8, 0)
"""The first CUDA compute capability with bf16 tensor cores (Ampere)."""


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags, as Linux lists them.

    Args:
        cpuinfo: Linux's CPU description.

    Returns:
        The flags of the first processor; empty where the file is absent (macOS, Windows).
    """
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86, ARM
            return frozenset(value.split())
    return frozenset()


def cpu_computes_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX).

    Returns:
        True on such a CPU.
    """
    return bool(cpu_flags() & BF16_CPU_FLAGS)


def cuda_computes_bf16() -> bool:
    """Whether every visible CUDA device computes bf16 natively (compute capability 8.0 and above).

    Returns:
        True when there is at least one device and all of them qualify.
    """
    count = torch.cuda.device_count()
    return count > 0 and all(torch.cuda.get_device_capability(i) >= BF16_CUDA_CAPABILITY for i in range(count))


def accelerator_kind(accelerator: str) -> str:
    """The kind of device Lightning will train on for an ``accelerator`` value.

    Args:
        accelerator: The config's value: ``auto``, ``cpu``, ``gpu``, ``cuda``, ``mps``, ...

    Returns:
        ``cuda``, ``mps``, ``cpu`` or the value itself for other accelerators.
    """
    if accelerator in ("auto", "gpu"):  # Lightning's own order of preference
        if CUDAAccelerator.is_available():
            return "cuda"
        if MPSAccelerator.is_available():
            return "mps"
        return "cpu" if accelerator == "auto" else "cuda"
    return accelerator


TrainingPrecision = Literal["32", "32-true", "bf16-mixed", "16-mixed"]
"""The precisions a run trains in (the config's, ``auto`` resolved): names Lightning's ``Trainer`` takes."""


def resolve_precision(precision: str, kind: str) -> str:
    """``auto`` as the precision to train in; other values unchanged.

    Args:
        precision: The config's value.
        kind: From :func:`accelerator_kind`.

    Returns:
        ``bf16-mixed`` or ``32-true`` for ``auto``.
    """
    if precision != AUTO:
        return precision
    native = cuda_computes_bf16() if kind == "cuda" else cpu_computes_bf16() if kind == "cpu" else False
    return "bf16-mixed" if native else "32-true"


def resolve_channels_last(channels_last: bool | None, kind: str, precision: str) -> bool:
    """``auto`` (None) as the memory format to train in; True or False unchanged.

    Args:
        channels_last: The config's value.
        kind: From :func:`accelerator_kind`.
        precision: The resolved precision.

    Returns:
        Whether to train channels-last.
    """
    if channels_last is not None:
        return channels_last
    return kind == "cpu" or (kind == "cuda" and precision in ("bf16-mixed", "16-mixed"))


def resolve_hardware(config: ExperimentConfig) -> ExperimentConfig:
    """The config with ``precision`` and ``channels_last`` as this machine trains them.

    Args:
        config: A validated config.

    Returns:
        A copy, ``auto`` values replaced (the same object when there is none).
    """
    if config.precision != AUTO and config.channels_last is not None:
        return config
    kind = accelerator_kind(config.accelerator)
    precision = resolve_precision(config.precision, kind)
    return config.model_copy(
        update={"precision": precision, "channels_last": resolve_channels_last(config.channels_last, kind, precision)}
    )
