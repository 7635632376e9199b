"""ResNet built from the zoo's one `Bottleneck` (and `BasicBlock`), and its builders.

The layout follows the original paper: a stem, four stages of blocks, global
average pooling and a fully connected head. Module names match timm's and
torchvision's ResNets, so their weights load key for key.

Builder arguments (every registered builder takes the first two; each takes
only those its signature names):
    num_classes: Classes of the head; 0 returns the pooled features.
    stem: ``"imagenet"`` (7x7/2 conv and max-pool, for 224x224 input) or
        ``"cifar"`` (3x3/1 conv, no pool, for native 32x32 input).
    zero_init_last: Zero every block's last BatchNorm, so that each block
        starts as an identity. On by default in the scratch ResNet-18 to -152
        builders, as in timm (Goyal et al., 2017): without it a deep ResNet's first
        gradients are ill-conditioned (for ResNet-50 at 32x32, fp32 rounding
        alone moves them 1.5% and bf16 autocast by as much as another batch
        would; with it, 0.0002% and 12%). ``False`` gives torchvision's and
        the ResNet paper's init.
    residual: ``False`` builds the plain twin, without skip connections.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from registry import register_model
from registry.errors import ModelArgumentError
from zoo.blocks import BasicBlock, Bottleneck

STEMS = ("imagenet", "cifar")
"""Stems a ResNet can take: ``imagenet`` (7x7/2 conv + 3x3/2 max-pool) or ``cifar`` (3x3/1 conv)."""

Block = type[Bottleneck] | type[BasicBlock]


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


class ResNet(nn.Module):
    """A ResNet with the timm-style model API.

    Args:
        block: `Bottleneck` or `BasicBlock`.
        layers: Blocks per stage, such as ``(3, 4, 6, 3)`` for ResNet-50.
        num_classes: Classes of the head; 0 leaves the pooled features.
        stem: ``"imagenet"`` (7x7/2 conv, BN, ReLU, 3x3/2 max-pool) or
            ``"cifar"`` (3x3/1 conv, BN, ReLU, no pool) for native 32x32 input.
        base_width: Width of the first stage; later stages double it.
        residual: ``False`` builds the plain network without skip connections.
        zero_init_last: Zero the last BatchNorm of every block, so each block
            starts as an identity (helps large-batch training).
        in_chans: Input channels.
    """

    pretrained_cfg: dict[str, Any]
    """Where pretrained weights came from (set by the pretrained builders)."""

    def __init__(
        self,
        block: Block,
        layers: Sequence[int],
        num_classes: int = 10,
        stem: str = "imagenet",
        base_width: int = 64,
        residual: bool = True,
        zero_init_last: bool = False,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        num_classes = check_num_classes(num_classes)
        if zero_init_last and not residual:
            raise ModelArgumentError(
                "zero_init_last needs residual=True: a plain network's blocks have no "
                "identity to start as, zeroing them would cut the network"
            )
        if stem not in STEMS:
            raise ModelArgumentError(f"unknown stem '{stem}'; use one of: {', '.join(STEMS)}")
        self.stem_type = stem
        self.num_classes = num_classes
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_chans, base_width, 7, stride=2, padding=3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        else:
            self.conv1 = nn.Conv2d(in_chans, base_width, 3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(base_width)
        self.relu = nn.ReLU(inplace=True)

        channels = base_width
        for index, depth in enumerate(layers):
            width = base_width * 2**index
            stage = []
            for position in range(depth):
                stride = 2 if index > 0 and position == 0 else 1
                stage.append(block(channels, width, stride, residual=residual))
                channels = width * block.expansion
            setattr(self, f"layer{index + 1}", nn.Sequential(*stage))
        self.num_stages = len(layers)
        self.num_features = channels
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc: nn.Module = nn.Linear(channels, num_classes) if num_classes else nn.Identity()
        self._init_weights(zero_init_last)

    def _init_weights(self, zero_init_last: bool) -> None:
        # Kaiming init as in the paper and in torchvision.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
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
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in self.stages:
            x = stage(x)
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
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Classify a batch of images.

        Args:
            x: Images of shape ``(N, C, H, W)``, normalised.

        Returns:
            Logits of shape ``(N, num_classes)``.
        """
        return self.forward_head(self.forward_features(x))


# -- registered builders ---------------------------------------------------------
# timm's style: each builder names its block and depths in one line and hands the
# arguments it shares with the others to `_create_resnet`.


def _create_resnet(block: Block, layers: Sequence[int], num_classes: int, stem: str, **kwargs: Any) -> ResNet:
    return ResNet(block, layers, num_classes, stem, **kwargs)


_SCRATCH: dict[str, Any] = {"family": "resnet", "tags": ("scratch",)}
_PLAIN: dict[str, Any] = {"family": "plain", "tags": ("scratch", "plain")}
_TINY: dict[str, Any] = {"input_size": (3, 32, 32), "tags": ("scratch", "tiny")}


@register_model(description="ResNet-18 (BasicBlock, 2-2-2-2), random init", **_SCRATCH)
def resnet18_scratch(num_classes: int = 10, *, stem: str = "imagenet", zero_init_last: bool = True) -> ResNet:
    """ResNet-18: `BasicBlock`, stages of 2-2-2-2 blocks, random init."""
    return _create_resnet(BasicBlock, (2, 2, 2, 2), num_classes, stem, zero_init_last=zero_init_last)


@register_model(description="ResNet-34 (BasicBlock, 3-4-6-3), random init", **_SCRATCH)
def resnet34_scratch(num_classes: int = 10, *, stem: str = "imagenet", zero_init_last: bool = True) -> ResNet:
    """ResNet-34: `BasicBlock`, stages of 3-4-6-3 blocks, random init."""
    return _create_resnet(BasicBlock, (3, 4, 6, 3), num_classes, stem, zero_init_last=zero_init_last)


@register_model(description="ResNet-50 (Bottleneck, 3-4-6-3), random init", **_SCRATCH)
def resnet50_scratch(num_classes: int = 10, *, stem: str = "imagenet", zero_init_last: bool = True) -> ResNet:
    """ResNet-50: the zoo's `Bottleneck`, stages of 3-4-6-3 blocks, random init."""
    return _create_resnet(Bottleneck, (3, 4, 6, 3), num_classes, stem, zero_init_last=zero_init_last)


@register_model(description="ResNet-101 (Bottleneck, 3-4-23-3), random init", **_SCRATCH)
def resnet101_scratch(num_classes: int = 10, *, stem: str = "imagenet", zero_init_last: bool = True) -> ResNet:
    """ResNet-101: the zoo's `Bottleneck`, stages of 3-4-23-3 blocks, random init."""
    return _create_resnet(Bottleneck, (3, 4, 23, 3), num_classes, stem, zero_init_last=zero_init_last)


@register_model(description="ResNet-152 (Bottleneck, 3-8-36-3), random init", **_SCRATCH)
def resnet152_scratch(num_classes: int = 10, *, stem: str = "imagenet", zero_init_last: bool = True) -> ResNet:
    """ResNet-152: the zoo's `Bottleneck`, stages of 3-8-36-3 blocks, random init."""
    return _create_resnet(Bottleneck, (3, 8, 36, 3), num_classes, stem, zero_init_last=zero_init_last)


@register_model(description="ResNet-50 without skip connections (plain twin), random init", **_PLAIN)
def plain50_scratch(num_classes: int = 10, *, stem: str = "imagenet") -> ResNet:
    """ResNet-50's plain twin: the same blocks and depths without skip connections."""
    return _create_resnet(Bottleneck, (3, 4, 6, 3), num_classes, stem, residual=False)


@register_model(description="ResNet-101 without skip connections (plain twin), random init", **_PLAIN)
def plain101_scratch(num_classes: int = 10, *, stem: str = "imagenet") -> ResNet:
    """ResNet-101's plain twin: the same blocks and depths without skip connections."""
    return _create_resnet(Bottleneck, (3, 4, 23, 3), num_classes, stem, residual=False)


@register_model(
    description="Tiny Bottleneck ResNet (1-1-1-1, width 8) for smoke tests and first runs", family="resnet", **_TINY
)
def resnet_tiny_scratch(
    num_classes: int = 10, *, stem: str = "cifar", residual: bool = True, zero_init_last: bool = False
) -> ResNet:
    """A tiny `Bottleneck` ResNet (one block per stage, base width 8) for smoke tests and first runs.

    ``zero_init_last`` is off here: four blocks are not deep enough to be ill-conditioned, and
    starting them as identities only slows the first epochs (digits, three epochs: validation
    accuracy 0.74 with it, 0.885 without).
    """
    return _create_resnet(
        Bottleneck, (1, 1, 1, 1), num_classes, stem, base_width=8, residual=residual, zero_init_last=zero_init_last
    )


@register_model(
    description="Tiny plain network (resnet_tiny_scratch without skip connections) for smoke tests",
    family="plain",
    **{**_TINY, "tags": ("scratch", "tiny", "plain")},
)
def plain_tiny_scratch(num_classes: int = 10, *, stem: str = "cifar") -> ResNet:
    """`resnet_tiny_scratch`'s plain twin: the same blocks without skip connections."""
    return _create_resnet(Bottleneck, (1, 1, 1, 1), num_classes, stem, base_width=8, residual=False)
