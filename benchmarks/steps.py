"""Training steps as the zoo runs them, for the benchmarks: a config's precision and memory format.

Used by ``test_precision_bench.py`` on the CPU and by the GPU benchmark
(``gpu/throughput.py``, ``gpu/precision.py``, ``gpu/compiled.py``), so that both
measure the same thing.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from lightning.pytorch.plugins.precision import MixedPrecision, Precision

from experiments import ExperimentConfig
from experiments.training import hardware
from experiments.training.classifier import Classifier


def device_kind(device: str) -> str:
    """The kind of a torch device string, as autocast and Lightning's plugins name it.

    Args:
        device: ``cpu``, ``cuda``, ``cuda:1``, ...

    Returns:
        ``cuda`` or ``cpu``.
    """
    return "cuda" if device.startswith("cuda") else "cpu"


def train_step(
    module: torch.nn.Module,
    batch: int,
    size: int,
    device: str = "cpu",
    precision: str = "32-true",
    channels_last: bool = False,
    classes: int = 10,
) -> Callable[[], None]:
    """One Adam step of a network on a fixed random batch, under Lightning's plugin for ``precision``.

    Args:
        module: The network (moved to the device here).
        batch: Images per step.
        size: Input size.
        device: Torch device.
        precision: A resolved Lightning precision (``*-mixed`` runs the forward pass under autocast).
        channels_last: Put the network and the batch in channels-last once, here (a `Classifier`
            does it itself, per batch, as in training: pass False for one).
        classes: Output classes.

    Returns:
        ``step()``.
    """
    module.to(device).train()
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, classes, (batch,), device=device)
    if channels_last:
        module.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    kind = device_kind(device)
    plugin = MixedPrecision(precision, kind) if precision.endswith("-mixed") else Precision()
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with plugin.forward_context():
            loss = F.cross_entropy(module(x), y)
        loss.backward()
        optimizer.step()

    return step


def config_step(
    config: ExperimentConfig, batch: int, size: int, device: str = "cpu", classes: int = 10
) -> tuple[Callable[[], None], ExperimentConfig]:
    """One Adam step of the zoo's `Classifier` on a fixed random batch, at the config's precision and format.

    ``auto`` values are resolved as `experiments.train` resolves them; the step runs
    under Lightning's own precision plugin (autocast for ``*-mixed``), as a Trainer does.

    Args:
        config: The run's config (its model, stem, precision, channels_last, accelerator).
        batch: Images per step.
        size: Input size.
        device: Torch device.
        classes: Output classes.

    Returns:
        ``(step, resolved config)``.
    """
    config = hardware.resolve_hardware(config.validate())
    torch.manual_seed(0)
    module = Classifier(config, classes)  # channels_last applied by the module itself
    return train_step(module, batch, size, device, config.precision, classes=classes), config
