"""A training step of the zoo's ResNet-50 against torchvision's, side by side.

Run: ``pytest benchmarks/test_model_bench.py --benchmark-only -s``. The zoo's
model must be at least as fast within noise: ratio (torchvision time / zoo
time) >= 0.95.
"""

from __future__ import annotations

import pytest
import torch
import torchvision

import registry

from timing import interleaved_medians

CASES = [  # (input size, batch, channels_last)
    (32, 64, False),
    (32, 64, True),
    (224, 8, False),
    (224, 8, True),
]


def make_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    return step


@pytest.mark.parametrize(
    ("size", "batch", "channels_last"), CASES, ids=[f"{s}px-b{b}-{'cl' if c else 'nchw'}" for s, b, c in CASES]
)
def test_training_step_vs_torchvision(benchmark, size: int, batch: int, channels_last: bool) -> None:
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(batch, 3, size, size).to(memory_format=fmt)
    y = torch.randint(0, 10, (batch,))
    zoo_model = registry.create_model("resnet50_scratch", num_classes=10).to(memory_format=fmt).train()
    tv_model = torchvision.models.resnet50(num_classes=10).to(memory_format=fmt).train()
    zoo_step, tv_step = make_step(zoo_model, x, y), make_step(tv_model, x, y)
    zoo_s, tv_s = interleaved_medians(zoo_step, tv_step, rounds=7 if size == 224 else 15)
    ratio = tv_s / zoo_s
    benchmark.extra_info.update(zoo_ms=zoo_s * 1e3, torchvision_ms=tv_s * 1e3, ratio=ratio, images_per_s=batch / zoo_s)
    benchmark.pedantic(zoo_step, rounds=3, iterations=1)
    print(
        f"\n{size}px batch {batch} {'channels_last' if channels_last else 'NCHW'}: "
        f"zoo {zoo_s * 1e3:.1f} ms, torchvision {tv_s * 1e3:.1f} ms, ratio {ratio:.3f}"
    )
    assert ratio >= 0.95, f"zoo step {zoo_s:.4f}s vs torchvision {tv_s:.4f}s"
