"""The residual blocks every ResNet in the zoo is built from.

Attribute names (``conv1``, ``bn1``, ..., ``downsample.0``, ``downsample.1``)
follow the convention shared by timm and torchvision, so that their ResNet
weights load into these blocks key for key.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    """A bias-free convolution with 'same' padding and the BatchNorm after it.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Square kernel size (1, 3 or 7).
        stride: Convolution stride.

    Returns:
        The convolution and its BatchNorm.
    """
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=False)
    return conv, nn.BatchNorm2d(out_channels)


def projection(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """The projection shortcut: a 1x1 convolution and BatchNorm (``downsample``).

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        stride: Stride matching the block's.

    Returns:
        ``Sequential(conv, bn)``, whose keys are ``0.weight`` and ``1.*``.
    """
    return nn.Sequential(*conv_bn(in_channels, out_channels, 1, stride))


class Bottleneck(nn.Module):
    """The zoo's bottleneck block: 1x1 reduce, 3x3, 1x1 expand x4, add, ReLU.

    The 3x3 convolution carries the stride (the "ResNet v1.5" placement used by
    torchvision and timm). A projection shortcut is made when the shape changes.

    Args:
        in_channels: Channels entering the block.
        width: Channels inside the block; the block outputs ``width * 4``.
        stride: Stride of the 3x3 convolution.
        residual: ``False`` drops the skip connection and its projection,
            giving the "plain" twin of the same depth and width.
    """

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1, residual: bool = True) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1, self.bn1 = conv_bn(in_channels, width, 1)
        self.conv2, self.bn2 = conv_bn(width, width, 3, stride)
        self.conv3, self.bn3 = conv_bn(width, out_channels, 1)
        self.relu = nn.ReLU(inplace=True)
        self.residual = residual
        needs_projection = residual and (stride != 1 or in_channels != out_channels)
        self.downsample = projection(in_channels, out_channels, stride) if needs_projection else None

    def zero_init_last(self) -> None:
        """Zero the last BatchNorm's scale so the block starts as an identity."""
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block.

        Args:
            x: Input of shape ``(N, in_channels, H, W)``.

        Returns:
            Output of shape ``(N, width * 4, H / stride, W / stride)``.
        """
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            out += x if self.downsample is None else self.downsample(x)
        activated: torch.Tensor = self.relu(out)
        return activated


class BasicBlock(nn.Module):
    """The two-3x3 block of ResNet-18 and ResNet-34, with the same conventions.

    Args:
        in_channels: Channels entering the block.
        width: Channels of both convolutions and of the output.
        stride: Stride of the first convolution.
        residual: ``False`` drops the skip connection and its projection.
    """

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int = 1, residual: bool = True) -> None:
        super().__init__()
        self.conv1, self.bn1 = conv_bn(in_channels, width, 3, stride)
        self.conv2, self.bn2 = conv_bn(width, width, 3)
        self.relu = nn.ReLU(inplace=True)
        self.residual = residual
        needs_projection = residual and (stride != 1 or in_channels != width)
        self.downsample = projection(in_channels, width, stride) if needs_projection else None

    def zero_init_last(self) -> None:
        """Zero the last BatchNorm's scale so the block starts as an identity."""
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block.

        Args:
            x: Input of shape ``(N, in_channels, H, W)``.

        Returns:
            Output of shape ``(N, width, H / stride, W / stride)``.
        """
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out += x if self.downsample is None else self.downsample(x)
        activated: torch.Tensor = self.relu(out)
        return activated
