"""The residual blocks every ResNet in the zoo is built from.

One `Bottleneck` (and one `BasicBlock`) carries every knob of the bottleneck families:
groups and width per group (ResNeXt, Wide ResNet), the first 1x1's reduction, channel
attention after the last norm (SE, ECA), anti-aliased downsampling, stochastic depth, the
norm layer (BatchNorm or GroupNorm) and the average-pool shortcut (ResNet-D). The
`Bottleneck` also takes the pre-activation order of He et al. 2016 ("Identity mappings in
deep residual networks"): the same three convolutions, each after its norm and ReLU.

Attribute names (``conv1``, ``bn1``, ..., ``aa``, ``se``, ``downsample.0``, ...) follow
timm's, which torchvision shares for the plain ResNet, so that their weights load into
these blocks key for key.
"""

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from registry.errors import ModelArgumentError
from zoo.layers.attention import AttnLayer, create_attn
from zoo.layers.blur_pool import create_aa
from zoo.layers.drop_path import DropPath
from zoo.layers.norm import NormLayer, get_norm_layer


def projection(
    in_channels: int,
    out_channels: int,
    stride: int,
    avg_down: bool = False,
    norm_layer: str | NormLayer = "batchnorm",
    preact: bool = False,
    dilation: int = 1,
) -> nn.Sequential:
    """The projection shortcut (``downsample``): a 1x1 convolution and norm, after an average pool for ResNet-D.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        stride: Stride matching the block's.
        avg_down: Subsample with a 2x2 average pool before a stride-1 convolution (the "D"
            shortcut of Bag of Tricks, He et al. 2019) instead of a strided 1x1 convolution,
            which skips three pixels in four.
        norm_layer: ``"batchnorm"``, ``"groupnorm"`` or a callable taking the channel count.
        preact: Leave out the norm: a pre-activation block's shortcut convolves the block's
            already normalised input, and its sum is normalised by the next block.
        dilation: The block's dilation: above 1 at stride 1, `avg_down` averages 2x2 at
            stride 1 (zero-padded on the right and bottom, as timm's ``AvgPool2dSame``).

    Returns:
        ``Sequential(conv, norm)`` (keys ``0.weight``, ``1.*``), or with `avg_down`
        ``Sequential(pool, conv, norm)`` (keys ``1.weight``, ``2.*``), as timm's; with
        `preact`, the same without the norm.
    """
    norm = get_norm_layer(norm_layer)
    tail = [] if preact else [norm(out_channels)]
    if not avg_down:
        return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), *tail)
    pool: nn.Module = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride != 1 else nn.Identity()
    if stride == 1 and dilation > 1:  # a dilated stage's first block: timm's same-padded 2x2/1 average (AvgPool2dSame)
        pool = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.AvgPool2d(2, 1))
    return nn.Sequential(pool, nn.Conv2d(in_channels, out_channels, 1, bias=False), *tail)


class _Residual(nn.Module):
    """What both blocks share after their convolutions: attention, drop path, the skip, the ReLU."""

    if TYPE_CHECKING:  # for mypy only: TorchScript cannot read a class annotation of a module
        se: nn.Module | None
        drop_path: nn.Module | None
        downsample: nn.Module | None
        relu: nn.Module
        residual: bool
    preact: bool = False

    def _tail(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.se is not None:
            out = self.se(out)
        if self.drop_path is not None:
            out = self.drop_path(out)
        if self.residual:
            out += x if self.downsample is None else self.downsample(x)
        activated: torch.Tensor = self.relu(out)
        return activated


class Bottleneck(_Residual):
    """The zoo's bottleneck block: 1x1 reduce, 3x3 (grouped), 1x1 expand x4, [attention], add, ReLU.

    The 3x3 convolution carries the stride (the "ResNet v1.5" placement used by
    torchvision and timm), unless anti-aliasing moves it into ``aa`` after the 3x3. A
    projection shortcut is made when the shape changes.

    With the defaults it is ResNet-50's block. The inner width is
    ``floor(width * width_per_group / 64) * cardinality``: ResNeXt-50 32x4d has
    ``cardinality=32, width_per_group=4``; Wide ResNet-50-2 has ``width_per_group=128``.

    With ``preact=True`` the same convolutions run in the pre-activation order of He et al.
    2016: ``bn1, relu, conv1, bn2, relu, conv2, bn3, relu, conv3, [attention], add``, with
    no ReLU after the sum. Each norm then sits before its convolution and takes that
    convolution's input channels (``bn1`` the block's input, ``bn3`` the inner width), a
    projection shortcut convolves the normalised input and has no norm of its own, and
    ``zero_init_last`` zeroes ``conv3`` (as timm's ``PreActBottleneck``).

    Args:
        in_channels: Channels entering the block.
        width: The block's planes: it outputs ``width * 4`` channels, and its inner width
            follows from `cardinality` and `width_per_group`.
        stride: Stride of the block (1 or 2).
        residual: ``False`` drops the skip connection and its projection,
            giving the "plain" twin of the same depth and width.
        cardinality: Groups of the 3x3 convolution.
        width_per_group: Channels per group at ``width=64`` (timm's and torchvision's
            ``base_width``).
        reduce_first: Divides the first 1x1's output channels (2 in SENet-154).
        attn_layer: ``"se"``, ``"eca"``, a callable taking the channel count, or ``None``;
            applied after the last norm, as ``se``.
        aa_layer: ``"avg"`` or ``"blur"`` anti-aliasing of a stride-2 block, or ``None``.
        drop_path: Stochastic depth: probability of dropping the residual branch.
        norm_layer: ``"batchnorm"``, ``"groupnorm"`` or a callable taking the channel count.
        avg_down: The average-pool projection shortcut (ResNet-D).
        preact: The pre-activation order (each norm and ReLU before its convolution).
        dilation: Dilation of the 3x3 convolution in a dilated stage (timm's ``output_stride``).
        first_dilation: The 3x3's dilation in the stage's first block (the previous stage's); default `dilation`.
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int = 1,
        residual: bool = True,
        *,
        cardinality: int = 1,
        width_per_group: int = 64,
        reduce_first: int = 1,
        attn_layer: AttnLayer = None,
        aa_layer: str | None = None,
        drop_path: float = 0.0,
        norm_layer: str | NormLayer = "batchnorm",
        avg_down: bool = False,
        preact: bool = False,
        dilation: int = 1,
        first_dilation: int | None = None,
    ) -> None:
        super().__init__()
        norm = get_norm_layer(norm_layer)
        first_dilation = first_dilation or dilation
        inner = int(math.floor(width * (width_per_group / 64)) * cardinality)
        first = inner // reduce_first
        out_channels = width * self.expansion
        # timm anti-aliases where the stride is, or where the dilation starts (a stride-1 blur).
        aa = create_aa(aa_layer, inner, stride) if stride != 1 or first_dilation != dilation else None
        # The same norms either way; pre-activation moves each before its convolution.
        normed = (in_channels, first, inner) if preact else (first, inner, out_channels)
        self.conv1 = nn.Conv2d(in_channels, first, 1, bias=False)
        self.bn1 = norm(normed[0])
        self.conv2 = nn.Conv2d(
            first,
            inner,
            3,
            stride=1 if aa is not None else stride,
            padding=first_dilation,
            dilation=first_dilation,
            groups=cardinality,
            bias=False,
        )
        self.bn2 = norm(normed[1])
        self.aa = aa
        self.conv3 = nn.Conv2d(inner, out_channels, 1, bias=False)
        self.bn3 = norm(normed[2])
        self.se = create_attn(attn_layer, out_channels)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else None
        self.relu = nn.ReLU(inplace=True)
        self.residual = residual
        self.preact = preact
        needs_projection = residual and (stride != 1 or in_channels != out_channels)
        self.downsample = (
            projection(in_channels, out_channels, stride, avg_down, norm, preact, dilation)
            if needs_projection
            else None
        )

    def zero_init_last(self) -> None:
        """Start the block as an identity: zero the last norm's scale (``conv3``'s weights when pre-activated)."""
        last = self.conv3 if self.preact else self.bn3
        nn.init.zeros_(last.weight)  # type: ignore[arg-type]  # a norm's weight is a Parameter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block.

        Args:
            x: Input of shape ``(N, in_channels, H, W)``.

        Returns:
            Output of shape ``(N, width * 4, H / stride, W / stride)``.
        """
        if self.preact:
            return self._forward_preact(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        if self.aa is not None:
            out = self.aa(out)
        out = self.bn3(self.conv3(out))
        return self._tail(out, x)

    def _forward_preact(self, x: torch.Tensor) -> torch.Tensor:
        activated: torch.Tensor = self.relu(self.bn1(x))
        # A projection sees the normalised input (the paper's "both_preact"); an identity, the raw sum.
        shortcut = x if self.downsample is None else self.downsample(activated)
        out: torch.Tensor = self.conv2(self.relu(self.bn2(self.conv1(activated))))
        if self.aa is not None:
            out = self.aa(out)
        out = self.conv3(self.relu(self.bn3(out)))
        if self.se is not None:
            out = self.se(out)
        if self.drop_path is not None:
            out = self.drop_path(out)
        return out + shortcut if self.residual else out


class BasicBlock(_Residual):
    """The two-3x3 block of ResNet-18 and ResNet-34, with the same conventions and knobs.

    It takes the `Bottleneck`'s keywords; a 3x3 block has no groups, so `cardinality` must
    be 1 and `width_per_group` 64.

    Args:
        in_channels: Channels entering the block.
        width: Channels of the second convolution and of the output.
        stride: Stride of the first convolution (or of ``aa`` after it).
        residual: ``False`` drops the skip connection and its projection.
        cardinality: Must be 1.
        width_per_group: Must be 64.
        reduce_first: Divides the first convolution's output channels.
        attn_layer: ``"se"``, ``"eca"``, a callable, or ``None`` (after the last norm).
        aa_layer: ``"avg"`` or ``"blur"`` anti-aliasing of a stride-2 block, or ``None``.
        drop_path: Stochastic depth: probability of dropping the residual branch.
        norm_layer: ``"batchnorm"``, ``"groupnorm"`` or a callable taking the channel count.
        avg_down: The average-pool projection shortcut (ResNet-D).
        preact: Must be ``False``: the pre-activation order is the `Bottleneck`'s.
        dilation: Dilation of the second convolution (and of the first, after the stage's first block).
        first_dilation: The first convolution's dilation in the stage's first block; default `dilation`.
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int = 1,
        residual: bool = True,
        *,
        cardinality: int = 1,
        width_per_group: int = 64,
        reduce_first: int = 1,
        attn_layer: AttnLayer = None,
        aa_layer: str | None = None,
        drop_path: float = 0.0,
        norm_layer: str | NormLayer = "batchnorm",
        avg_down: bool = False,
        preact: bool = False,
        dilation: int = 1,
        first_dilation: int | None = None,
    ) -> None:
        super().__init__()
        first_dilation = first_dilation or dilation
        if preact:
            raise ModelArgumentError("BasicBlock has no pre-activation order; use Bottleneck with preact=True")
        if cardinality != 1 or width_per_group != 64:
            raise ModelArgumentError(
                f"BasicBlock takes no groups (cardinality=1, width_per_group=64), got "
                f"cardinality={cardinality}, width_per_group={width_per_group}; use Bottleneck for ResNeXt"
            )
        norm = get_norm_layer(norm_layer)
        first = width // reduce_first
        aa = create_aa(aa_layer, first, stride) if stride != 1 or first_dilation != dilation else None
        self.conv1 = nn.Conv2d(
            in_channels,
            first,
            3,
            stride=1 if aa is not None else stride,
            padding=first_dilation,
            dilation=first_dilation,
            bias=False,
        )
        self.bn1 = norm(first)
        self.aa = aa
        self.conv2 = nn.Conv2d(first, width, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = norm(width)
        self.se = create_attn(attn_layer, width)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else None
        self.relu = nn.ReLU(inplace=True)
        self.residual = residual
        needs_projection = residual and (stride != 1 or in_channels != width)
        self.downsample = (
            projection(in_channels, width, stride, avg_down, norm, dilation=dilation) if needs_projection else None
        )

    def zero_init_last(self) -> None:
        """Zero the last norm's scale so the block starts as an identity."""
        nn.init.zeros_(self.bn2.weight)  # type: ignore[arg-type]  # a norm's weight is a Parameter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block.

        Args:
            x: Input of shape ``(N, in_channels, H, W)``.

        Returns:
            Output of shape ``(N, width, H / stride, W / stride)``.
        """
        out = self.relu(self.bn1(self.conv1(x)))
        if self.aa is not None:
            out = self.aa(out)
        out = self.bn2(self.conv2(out))
        return self._tail(out, x)
