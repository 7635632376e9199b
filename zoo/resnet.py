"""`ResNet`: a stem, stages of the zoo's one `Bottleneck` (or `BasicBlock`), pooling and a head.

Every bottleneck family of timm and torchvision is this class with other arguments: the
block's knobs (groups and width per group, attention, anti-aliasing, drop path, norm
layer), the stem's shape (deep, tiered, without max-pool), the average-pool shortcut and
the channels per stage. Module names match timm's ResNet (and torchvision's for the
plain ResNet), so their weights load key for key. The registered builders live in
`zoo.models`, one module per family.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from registry.errors import ModelArgumentError
from zoo.blocks import BasicBlock, Bottleneck
from zoo.layers.attention import ATTENTION, AttnLayer
from zoo.layers.norm import NormLayer, get_norm_layer
from zoo.layers.stems import STEMS, make_stem, stem_channels

__all__ = ["STEMS", "Block", "ResNet", "check_num_classes", "layer_name"]

Block = type[Bottleneck] | type[BasicBlock]


def layer_name(layer: Any) -> str | None:
    """A layer argument's name for a model card: a name as given, or the class's registered name.

    Args:
        layer: ``None``, a name such as ``"se"``, a class, or a ``functools.partial`` of one.

    Returns:
        Such as ``"se"`` or ``"GroupNorm"``; ``None`` for no layer.
    """
    if layer is None or isinstance(layer, str):
        return layer
    made = layer.func if isinstance(layer, partial) else layer
    registered = (name for name, cls in ATTENTION.items() if cls is made)
    return next(registered, getattr(made, "__name__", type(made).__name__))


def check_num_classes(num_classes: Any) -> int:
    """Validate a class count: an integer >= 0 (0 removes the head, as in timm).

    Args:
        num_classes: The value given.

    Returns:
        The value, as an int.

    Raises:
        ModelArgumentError: If it is not a non-negative integer.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ModelArgumentError(f"num_classes must be an integer >= 1 (or 0 for no head), got {num_classes!r}")
    return num_classes


def _widths(
    layers: Sequence[int], base_width: int | None, stem_width: int | None, channels: Sequence[int] | None
) -> tuple[int, tuple[int, ...]]:
    # `base_width` is the zoo's first spelling: the stem's and the first stage's width, doubled per stage.
    if base_width is not None:
        if stem_width is not None or channels is not None:
            raise ModelArgumentError(
                "base_width (the first stage's width) cannot be combined with stem_width or channels; "
                "give stem_width and channels instead"
            )
        return base_width, tuple(base_width * 2**i for i in range(len(layers)))
    channels = tuple(channels) if channels is not None else tuple(64 * 2**i for i in range(len(layers)))
    if len(channels) != len(layers):
        raise ModelArgumentError(
            f"channels has {len(channels)} stages but layers has {len(layers)}; give one per stage"
        )
    return (64 if stem_width is None else stem_width), channels


class ResNet(nn.Module):
    """A ResNet with the timm-style model API.

    Args:
        block: `Bottleneck` or `BasicBlock`.
        layers: Blocks per stage, such as ``(3, 4, 6, 3)`` for ResNet-50.
        num_classes: Classes of the head; 0 leaves the pooled features.
        stem: ``"imagenet"`` (reduces 4x, for 224x224 input) or ``"cifar"`` (every
            stride 1, no pool, for native 32x32 input); see `zoo.layers.stems`.
        base_width: The zoo's older spelling of ``stem_width=w, channels=(w, 2w, 4w, 8w)``;
            not timm's ``base_width``, which is `width_per_group` here.
        residual: ``False`` builds the plain network without skip connections.
        zero_init_last: Zero the last norm of every block, so each block
            starts as an identity (helps large-batch training).
        in_chans: Input channels.
        channels: Planes of each stage (a `Bottleneck` outputs 4x as many); default
            ``64, 128, 256, 512``.
        stem_width: Width of the stem (64); a deep stem outputs twice as many channels.
        stem_type: ``""`` (one 7x7 convolution), ``"deep"`` (three 3x3, ResNet-C/D/S) or
            ``"deep_tiered"`` (three 3x3 of 3/4, 1 and 2 times `stem_width`, ResNet-T).
        replace_stem_pool: A 3x3/2 convolution, norm and ReLU instead of the max-pool (ResNet-RS).
        avg_down: The average-pool projection shortcut (ResNet-D).
        cardinality: Groups of every bottleneck's 3x3 convolution (ResNeXt).
        width_per_group: Channels per group at 64 planes (timm's and torchvision's ``base_width``).
        block_reduce_first: Divides every block's first convolution's width.
        attn_layer: ``"se"``, ``"eca"``, a callable taking the channel count, or ``None``.
        aa_layer: ``"avg"`` or ``"blur"`` anti-aliased downsampling (stem and blocks), or ``None``.
        norm_layer: ``"batchnorm"``, ``"groupnorm"`` or a callable taking the channel count.
        drop_path_rate: Stochastic depth of the last block; earlier blocks get a linearly
            smaller rate (timm's rule).
        drop_rate: Dropout before the head.
        preact: The pre-activation ResNet of He et al. 2016 ("Identity mappings in deep
            residual networks"): `Bottleneck` blocks in their pre-activation order, a stem
            of convolutions only (``bn1`` is an identity: the first block normalises its
            input), and a final norm and ReLU (``norm``) before the pooling.
    """

    pretrained_cfg: dict[str, Any]
    """Where pretrained weights came from (set by the pretrained builders)."""

    def __init__(
        self,
        block: Block,
        layers: Sequence[int],
        num_classes: int = 10,
        stem: str = "imagenet",
        base_width: int | None = None,
        residual: bool = True,
        zero_init_last: bool = False,
        in_chans: int = 3,
        *,
        channels: Sequence[int] | None = None,
        stem_width: int | None = None,
        stem_type: str = "",
        replace_stem_pool: bool = False,
        avg_down: bool = False,
        cardinality: int = 1,
        width_per_group: int = 64,
        block_reduce_first: int = 1,
        attn_layer: AttnLayer = None,
        aa_layer: str | None = None,
        norm_layer: str | NormLayer = "batchnorm",
        drop_path_rate: float = 0.0,
        drop_rate: float = 0.0,
        preact: bool = False,
    ) -> None:
        super().__init__()
        num_classes = check_num_classes(num_classes)
        if zero_init_last and not residual:
            raise ModelArgumentError(
                "zero_init_last needs residual=True: a plain network's blocks have no "
                "identity to start as, zeroing them would cut the network"
            )
        if not 0.0 <= drop_path_rate < 1.0 or not 0.0 <= drop_rate < 1.0:
            raise ModelArgumentError(
                f"drop_path_rate and drop_rate must be in [0, 1), got {drop_path_rate!r} and {drop_rate!r}"
            )
        width, planes = _widths(layers, base_width, stem_width, channels)
        norm = get_norm_layer(norm_layer)
        self.stem = stem
        self.stem_type = stem_type
        self.block_settings: dict[str, Any] = {
            "block": block.__name__,
            "layers": list(layers),
            "channels": list(planes),
            "stem_width": width,
            "stem_type": stem_type or "single",
            "stem_pool": not replace_stem_pool,
            "cardinality": cardinality,
            "width_per_group": width_per_group,
            "reduce_first": block_reduce_first,
            "attn_layer": layer_name(attn_layer),
            "aa_layer": aa_layer,
            "avg_down": avg_down,
            "norm_layer": layer_name(norm_layer),
            "residual": residual,
            "preact": preact,
        }
        """The architecture's settings (block, depth per stage, the block's knobs), for model cards."""
        self.preact = preact
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        self.conv1, self.bn1, self.maxpool = make_stem(
            stem, stem_type, width, in_chans, norm, replace_stem_pool, aa_layer
        )
        if preact:
            self.bn1 = nn.Identity()
        self.relu = nn.ReLU(inplace=True)

        block_args: dict[str, Any] = {
            "cardinality": cardinality,
            "width_per_group": width_per_group,
            "reduce_first": block_reduce_first,
            "attn_layer": attn_layer,
            "aa_layer": aa_layer,
            "norm_layer": norm,
            "avg_down": avg_down,
        }
        if preact:  # only then: a BasicBlock refuses it
            block_args["preact"] = True
        in_channels = stem_channels(stem_type, width)
        total, index = sum(layers), 0
        for stage_index, (depth, stage_planes) in enumerate(zip(layers, planes, strict=True)):
            stage = []
            for position in range(depth):
                stride = 2 if stage_index > 0 and position == 0 else 1
                drop_path = drop_path_rate * index / max(total - 1, 1)
                stage.append(block(in_channels, stage_planes, stride, residual, drop_path=drop_path, **block_args))
                in_channels = stage_planes * block.expansion
                index += 1
            setattr(self, f"layer{stage_index + 1}", nn.Sequential(*stage))
        self.num_stages = len(layers)
        self.num_features = in_channels
        self.norm: nn.Module = norm(in_channels) if preact else nn.Identity()
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc: nn.Module = nn.Linear(in_channels, num_classes) if num_classes else nn.Identity()
        self._init_weights(zero_init_last)

    def _init_weights(self, zero_init_last: bool) -> None:
        # Kaiming init as in the paper, torchvision and timm.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if zero_init_last:
            for module in self.modules():
                if isinstance(module, (Bottleneck, BasicBlock)):
                    module.zero_init_last()

    @property
    def stages(self) -> list[nn.Sequential]:
        """The residual stages ``layer1 .. layerN``, in order."""
        return [getattr(self, f"layer{i + 1}") for i in range(self.num_stages)]

    def get_classifier(self) -> nn.Module:
        """Return the head (``fc``)."""
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head with a freshly initialised one.

        Args:
            num_classes: New class count; 0 removes the head.
        """
        self.num_classes = check_num_classes(num_classes)
        device = next(self.parameters()).device
        self.fc = nn.Linear(self.num_features, num_classes, device=device) if num_classes else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Run the stem and the stages.

        Args:
            x: Images of shape ``(N, C, H, W)``.

        Returns:
            The last stage's feature map, ``(N, num_features, h, w)``.
        """
        x = self.conv1(x)
        x = self.maxpool(x if self.preact else self.relu(self.bn1(x)))
        for stage in self.stages:
            x = stage(x)
        if self.preact:
            x = self.relu(self.norm(x))
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool the feature map and apply the head.

        Args:
            x: Output of `forward_features`.
            pre_logits: Return the pooled features instead of the logits.

        Returns:
            Logits ``(N, num_classes)``, or pooled features ``(N, num_features)``.
        """
        x = torch.flatten(self.global_pool(x), 1)
        if self.drop_rate:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Classify a batch of images.

        Args:
            x: Images of shape ``(N, C, H, W)``, normalised.

        Returns:
            Logits of shape ``(N, num_classes)``.
        """
        return self.forward_head(self.forward_features(x))
