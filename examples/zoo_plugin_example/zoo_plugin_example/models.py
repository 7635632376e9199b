"""Two small models, registered with the zoo when this module is imported.

The registry imports this module through the entry point declared in
``pyproject.toml``; users never import it themselves.
"""

from __future__ import annotations

from torch import nn

from registry import register_model
from zoo.blocks import Bottleneck
from zoo.resnet import ResNet


@register_model(
    family="convnet",
    description="A small two-convolution ConvNet for 32x32 images (example plugin)",
    input_size=(3, 32, 32),
    tags=("scratch", "example"),
)
def example_convnet(num_classes: int = 10, *, width: int = 32) -> nn.Module:
    """A small VGG-style ConvNet: two conv-BN-ReLU pairs, each followed by a max-pool.

    Args:
        num_classes: Classes of the head.
        width: Channels of the first convolution; the second has twice as many.

    Returns:
        The model.
    """
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, num_classes),
    )


@register_model(
    family="resnet",
    description="A narrow ResNet-26 from the zoo's own Bottleneck (example plugin)",
    input_size=(3, 32, 32),
    tags=("scratch", "example"),
)
def example_resnet26_narrow(num_classes: int = 10, *, stem: str = "cifar") -> ResNet:
    """ResNet-26 (Bottleneck, 2-2-2-2) with base width 16, built from the zoo's blocks.

    Args:
        num_classes: Classes of the head.
        stem: ``"cifar"`` for 32x32 input, ``"imagenet"`` for 224x224.

    Returns:
        The model, with the zoo's ResNet API (``forward_features``, ``reset_classifier``...).
    """
    return ResNet(Bottleneck, (2, 2, 2, 2), num_classes, stem, base_width=16)
