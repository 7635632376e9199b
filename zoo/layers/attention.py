"""Channel attention after a block's last norm: squeeze-excitation (SE) and ECA.

The module names (``fc1``/``fc2`` for SE, ``conv`` for ECA) and the channel arithmetic are
timm's (``timm/layers/squeeze_excite.py``, ``timm/layers/eca.py``), so that SE-ResNet,
SE-ResNeXt, ECA-ResNet and ResNet-RS weights load key for key.
"""

import math
from collections.abc import Callable

import torch
from torch import nn

from registry.errors import ModelArgumentError

AttnLayer = str | Callable[[int], nn.Module] | None
"""An attention choice: ``"se"``, ``"eca"``, a callable taking the channel count, or ``None``."""


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """Round a channel count to a multiple of `divisor`, as timm and the EfficientNet code do.

    Args:
        value: The channel count before rounding.
        divisor: The multiple to round to.
        min_value: The smallest result (defaults to `divisor`).
        round_limit: Round up by one more `divisor` if rounding lost more than ``1 - round_limit``.

    Returns:
        The rounded channel count.
    """
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < round_limit * value:
        rounded += divisor
    return rounded


class SEModule(nn.Module):
    """Squeeze-and-excitation (Hu et al., 2018): global mean, 1x1 reduce, ReLU, 1x1 expand, sigmoid gate.

    Args:
        channels: Channels of the input (and the output).
        rd_ratio: Reduction ratio of the hidden layer (1/16 in SE-Nets, 1/4 in ResNet-RS).
        rd_divisor: The hidden width is rounded to a multiple of this.
    """

    def __init__(self, channels: int, rd_ratio: float = 1.0 / 16, rd_divisor: int = 8) -> None:
        super().__init__()
        hidden = make_divisible(channels * rd_ratio, rd_divisor, round_limit=0.0)
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale every channel of `x` by its learned gate.

        Args:
            x: Feature map ``(N, C, H, W)``.

        Returns:
            The gated feature map, same shape.
        """
        gate: torch.Tensor = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * gate.sigmoid()


class EcaModule(nn.Module):
    """Efficient channel attention (Wang et al., 2020): a 1-D convolution across the pooled channels.

    The kernel size grows with the channel count (``|log2(C) + 1| / 2``, made odd, at least 3).

    Args:
        channels: Channels of the input, which set the kernel size.
        gamma: Slope of the kernel-size rule.
        beta: Offset of the kernel-size rule.
    """

    def __init__(self, channels: int, gamma: float = 2, beta: float = 1) -> None:
        super().__init__()
        t = int(abs(math.log(channels, 2) + beta) / gamma)
        kernel_size = max(t if t % 2 else t + 1, 3)
        self.conv = nn.Conv1d(1, 1, kernel_size=kernel_size, padding=(kernel_size - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale every channel of `x` by a gate computed from its neighbours' means.

        Args:
            x: Feature map ``(N, C, H, W)``.

        Returns:
            The gated feature map, same shape.
        """
        y: torch.Tensor = self.conv(x.mean((2, 3)).view(x.shape[0], 1, -1))
        return x * y.sigmoid().view(x.shape[0], -1, 1, 1)


ATTENTION: dict[str, Callable[[int], nn.Module]] = {"se": SEModule, "eca": EcaModule}
"""Attention layers by name, as a block's ``attn_layer`` takes them."""


def create_attn(attn_layer: AttnLayer, channels: int) -> nn.Module | None:
    """Build a block's attention module, or nothing.

    Args:
        attn_layer: ``"se"``, ``"eca"``, a callable taking the channel count, or ``None``.
        channels: Channels it gates.

    Returns:
        The module, or ``None`` when `attn_layer` is ``None``.

    Raises:
        ModelArgumentError: If `attn_layer` is a name the zoo does not know.
    """
    if attn_layer is None:
        return None
    if isinstance(attn_layer, str):
        if attn_layer not in ATTENTION:
            raise ModelArgumentError(f"unknown attn_layer '{attn_layer}'; use one of: {', '.join(ATTENTION)} or None")
        attn_layer = ATTENTION[attn_layer]
    return attn_layer(channels)
