"""Anti-aliased downsampling (Zhang, 2019): blur, then subsample.

A block with anti-aliasing runs its 3x3 convolution at stride 1 and moves the stride into
``aa`` after it: an average pool (``"avg"``, ResNet-AA) or a binomial blur pool (``"blur"``,
ResNet-Blur), as timm's ``timm/layers/blur_pool.py`` does. Neither has weights: the blur
filter is a non-persistent buffer, so the state dict is the same as without anti-aliasing.
"""

from math import comb

import torch
import torch.nn.functional as F
from torch import nn

from registry.errors import ModelArgumentError

AA_LAYERS = ("avg", "blur")
"""Anti-aliasing layers by name, as ``aa_layer`` takes them."""


class BlurPool2d(nn.Module):
    """Blur with a binomial filter (reflect padding), then subsample, one channel at a time.

    Args:
        channels: Channels of the input.
        filt_size: Side of the binomial filter (3 gives ``[1, 2, 1] / 4`` in each direction).
        stride: Subsampling stride.
    """

    filt: torch.Tensor

    def __init__(self, channels: int, filt_size: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.channels = channels
        self.stride = stride
        pad = ((stride - 1) + (filt_size - 1)) // 2
        self.padding = [pad, pad, pad, pad]
        coeffs = torch.tensor([comb(filt_size - 1, k) for k in range(filt_size)], dtype=torch.float32)
        coeffs = coeffs / 2 ** (filt_size - 1)
        blur = (coeffs[:, None] * coeffs[None, :])[None, None].repeat(channels, 1, 1, 1)
        self.register_buffer("filt", blur, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Blur and subsample.

        Args:
            x: Feature map ``(N, channels, H, W)``.

        Returns:
            ``(N, channels, ceil(H / stride), ceil(W / stride))``.
        """
        x = F.pad(x, self.padding, mode="reflect")
        return F.conv2d(x, self.filt.to(x.dtype), stride=self.stride, groups=self.channels)


def create_aa(aa_layer: str | None, channels: int, stride: int = 2) -> nn.Module | None:
    """Build the anti-aliasing downsampler that replaces a convolution's or pool's stride.

    Args:
        aa_layer: ``"avg"`` (2x2 average pool), ``"blur"`` (`BlurPool2d`) or ``None``.
        channels: Channels it sees (for the blur filter).
        stride: The stride it takes over.

    Returns:
        The module, or ``None`` when `aa_layer` is ``None``.

    Raises:
        ModelArgumentError: If `aa_layer` is a name the zoo does not know.
    """
    if aa_layer is None:
        return None
    if aa_layer == "avg":
        return nn.AvgPool2d(stride)
    if aa_layer == "blur":
        return BlurPool2d(channels, stride=stride)
    raise ModelArgumentError(f"unknown aa_layer '{aa_layer}'; use one of: {', '.join(AA_LAYERS)} or None")
