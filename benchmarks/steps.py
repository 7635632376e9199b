"""Training steps as the zoo runs them, for the benchmarks: a config's precision and memory format.

Used by ``test_precision_bench.py`` on the CPU and by ``gpu/run_gpu_bench.py`` on a
GPU, so that both measure the same thing.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from lightning.pytorch.plugins.precision import MixedPrecision, Precision

from experiments import ExperimentConfig
from experiments.training import hardware
from experiments.training.classifier import Classifier


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
    module = Classifier(config, classes).to(device).train()  # channels_last applied by the module itself
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, classes, (batch,), device=device)
    kind = "cuda" if device.startswith("cuda") else "cpu"
    plugin = MixedPrecision(config.precision, kind) if config.precision.endswith("-mixed") else Precision()
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with plugin.forward_context():
            loss = F.cross_entropy(module(x), y)
        loss.backward()
        optimizer.step()

    return step, config
