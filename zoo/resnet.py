"""`ResNet`: a stem, stages of the zoo's one `Bottleneck` (or `BasicBlock`), pooling and a head.

Every bottleneck family of timm and torchvision is this class with other arguments: the
block's knobs (groups and width per group, attention, anti-aliasing, drop path, norm
layer), the stem's shape (deep, tiered, without max-pool), the average-pool shortcut and
the channels per stage. Module names match timm's ResNet (and torchvision's for the
plain ResNet), so their weights load key for key. The registered builders live in
`zoo.models`, one module per family.
"""

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from registry.errors import ModelArgumentError
from zoo.blocks import BasicBlock, Bottleneck
from zoo.layers.attention import ATTENTION, AttnLayer
from zoo.layers.norm import NormLayer, get_norm_layer
from zoo.layers.stems import STEMS, make_stem, stem_channels

__all__ = ["GLOBAL_POOLS", "STEMS", "Block", "GlobalPool", "ResNet", "check_num_classes", "layer_name"]

Block = type[Bottleneck] | type[BasicBlock]

MAX_STAGES = 4
"""Stages a ResNet may have: ``layer1 .. layer4`` are named attributes, so TorchScript can run them."""

GLOBAL_POOLS = ("avg", "max", "")
"""Pooling before the head, as timm's ``global_pool``: average, max, or none (only without a head)."""


class GlobalPool(nn.Module):
    """Pool a feature map to one vector per image (``"avg"``, ``"max"``), or pass it on (``""``).

    Args:
        pool_type: One of `GLOBAL_POOLS`.
    """

    def __init__(self, pool_type: str = "avg") -> None:
        super().__init__()
        if pool_type not in GLOBAL_POOLS:
            raise ModelArgumentError(
                f"unknown global_pool {pool_type!r}; use one of: {', '.join(map(repr, GLOBAL_POOLS))}"
            )
        self.pool_type = pool_type

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool.

        Args:
            x: Feature map ``(N, C, H, W)``.

        Returns:
            ``(N, C)``, or `x` itself for ``""``.
        """
        if self.pool_type == "avg":
            return x.mean((2, 3))
        if self.pool_type == "max":
            return x.amax((2, 3))
        return x

    def extra_repr(self) -> str:
        """Show the pool type in the model's repr.

        Returns:
            ``pool_type=...``.
        """
        return f"pool_type={self.pool_type!r}"


def _head(num_features: int, num_classes: int, global_pool: str) -> tuple[GlobalPool, nn.Module]:
    if num_classes and not global_pool:
        raise ModelArgumentError("global_pool='' leaves a feature map, which no head takes; give num_classes=0 with it")
    return GlobalPool(global_pool), nn.Linear(num_features, num_classes) if num_classes else nn.Identity()


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


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def scratch_cfg(stem: str, in_chans: int, reduction: int, num_classes: int, first_conv: str) -> dict[str, Any]:
    """The ``pretrained_cfg`` (timm's) of a model without weights: the input its stem is made for.

    So timm's ``resolve_data_config`` gives 32x32 and CIFAR-10's statistics for a ``cifar``
    stem (the zoo's ``cifar`` preset), 224x224 cropped at 0.875 and ImageNet's for ``imagenet``.

    Args:
        stem: ``"imagenet"`` or ``"cifar"``.
        in_chans: Input channels.
        reduction: The last feature map's reduction (for ``pool_size``).
        num_classes: Classes of the head.
        first_conv: The first convolution's module name (``conv1``, or ``conv1.0`` for a deep stem).

    Returns:
        The cfg, with timm's keys.
    """
    size = 224 if stem == "imagenet" else 32
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if stem == "imagenet" else (CIFAR10_MEAN, CIFAR10_STD)
    side = -(-size // reduction)
    return {
        "url": "",
        "num_classes": num_classes,
        "input_size": (in_chans, size, size),
        "pool_size": (side, side),
        "crop_pct": 0.875 if stem == "imagenet" else 1.0,
        "interpolation": "bilinear",
        "mean": mean,
        "std": std,
        "first_conv": first_conv,
        "classifier": "fc",
    }


def check_output_stride(output_stride: int | None, stem_reduction: int, num_stages: int) -> int:
    """Check an ``output_stride`` against the reductions a ResNet can stop at.

    Args:
        output_stride: Asked for; ``None`` for the model's own.
        stem_reduction: What the stem reduces (4 for ``imagenet``, 1 for ``cifar``).
        num_stages: Stages; each after the first halves the map.

    Returns:
        The output stride (the model's own for ``None``).

    Raises:
        ModelArgumentError: If the model cannot stop at it; the message lists those it can.
    """
    allowed = [stem_reduction << i for i in range(num_stages)]
    if output_stride is None:
        return allowed[-1]
    if output_stride not in allowed:
        raise ModelArgumentError(f"output_stride must be one of {allowed} for this model, got {output_stride!r}")
    return output_stride


def take_indices(count: int, indices: int | Sequence[int] | None) -> list[int]:
    """Which of `count` feature maps to take, as timm's ``feature_take_indices`` reads `indices`.

    Args:
        count: Feature maps the model has (the stem's and one per stage).
        indices: ``None`` for all, an int ``n`` for the last ``n``, or a sequence (negative from the end).

    Returns:
        The indices, sorted, each in ``0 .. count - 1``.

    Raises:
        ModelArgumentError: If an index is not one the model has; the message lists those it has.
    """
    if indices is None:
        return list(range(count))
    if isinstance(indices, int):
        if not 0 < indices <= count:
            raise ModelArgumentError(f"take the last 1 to {count} feature maps, not {indices}")
        return list(range(count - indices, count))
    taken = sorted(i + count if i < 0 else i for i in indices)
    if not taken or any(not 0 <= i < count for i in taken):
        raise ModelArgumentError(
            f"feature map indices {list(indices)!r} are not this model's; it has {list(range(count))} "
            f"(0 the stem's, 1 to {count - 1} the stages'; negative counts from the end)"
        )
    return taken


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
    if not 1 <= len(layers) <= MAX_STAGES:
        raise ModelArgumentError(f"a ResNet has 1 to {MAX_STAGES} stages, got layers={tuple(layers)!r}")
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
            input), and a final norm and ReLU (``norm``, ``final_act``) before the pooling.
        global_pool: ``"avg"``, ``"max"`` or ``""`` (no pooling, with ``num_classes=0``).
        output_stride: The last map's reduction: ``None`` for the model's own (32, or 8 with the
            ``cifar`` stem); smaller dilates the later stages instead of striding them, as timm's.

    Modules are registered in the order they run (``conv1``, ``bn1``, ``act1``, ``maxpool``,
    ``layer1`` ..., ``norm``, ``final_act``, ``global_pool``, ``fc``), so that tools which run
    a model's children in turn (timm's ``FeatureListNet``, torchvision's
    ``IntermediateLayerGetter``) compute what `forward` computes. A model of fewer than four
    stages has an ``nn.Identity`` for each stage it lacks.
    """

    # Plain Python data TorchScript need not (and cannot) type: the cards', timm's and FX's.
    __jit_ignored_attributes__: ClassVar = ["block_settings", "pretrained_cfg", "default_cfg", "feature_info"]
    __jit_unused_properties__: ClassVar = ["stages", "default_cfg"]
    if TYPE_CHECKING:  # set by name in __init__; TorchScript cannot read a class annotation of a module
        layer1: nn.Module
        layer2: nn.Module
        layer3: nn.Module
        layer4: nn.Module

    pretrained_cfg: dict[str, Any]
    """timm's pretrained config: the input it expects (size, mean, std, crop) and its layout, as timm's models have it;
    the pretrained builders add where the weights came from."""

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
        global_pool: str = "avg",
        output_stride: int | None = None,
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
        conv1, bn1, maxpool = make_stem(stem, stem_type, width, in_chans, norm, replace_stem_pool, aa_layer)
        # The pre-activation stem is its convolutions only: the first block normalises their output.
        self.conv1 = conv1
        self.bn1 = nn.Identity() if preact else bn1
        self.act1: nn.Module = nn.Identity() if preact else nn.ReLU(inplace=True)
        self.maxpool = maxpool

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
        # The imagenet stem halves the image twice: its convolution (the stem's map), then its pool.
        reduction = 4 if stem == "imagenet" else 1
        self.feature_info: list[dict[str, Any]] = [
            {"num_chs": in_channels, "reduction": 2 if stem == "imagenet" else 1, "module": "act1"}
        ]
        """timm's description of the feature maps: channels, reduction and the module that gives each."""
        total, index = sum(layers), 0
        output_stride = check_output_stride(output_stride, reduction, len(layers))
        dilation = previous_dilation = 1
        for stage_index in range(MAX_STAGES):
            if stage_index >= len(layers):
                setattr(self, f"layer{stage_index + 1}", nn.Identity())
                continue
            stage_stride = 2 if stage_index > 0 else 1
            if reduction >= output_stride:  # timm's rule: past the output stride, dilate instead of striding
                dilation, stage_stride = dilation * stage_stride, 1
            else:
                reduction *= stage_stride
            stage = []
            for position in range(layers[stage_index]):
                drop_path = drop_path_rate * index / max(total - 1, 1)
                stage.append(
                    block(
                        in_channels,
                        planes[stage_index],
                        stage_stride if position == 0 else 1,
                        residual,
                        drop_path=drop_path,
                        dilation=dilation,
                        first_dilation=previous_dilation,
                        **block_args,
                    )
                )
                previous_dilation = dilation
                in_channels = planes[stage_index] * block.expansion
                index += 1
            setattr(self, f"layer{stage_index + 1}", nn.Sequential(*stage))
            self.feature_info.append(
                {"num_chs": in_channels, "reduction": reduction, "module": f"layer{stage_index + 1}"}
            )
        self.num_stages = len(layers)
        self.num_features = self.head_hidden_size = in_channels
        self.norm: nn.Module = norm(in_channels) if preact else nn.Identity()
        self.final_act: nn.Module = nn.ReLU(inplace=True) if preact else nn.Identity()
        if preact:  # the last map a pre-activation network hands on is the normalised one
            self.feature_info[-1]["module"] = "final_act"
        self.global_pool, self.fc = _head(in_channels, num_classes, global_pool)
        self.grad_checkpointing = False
        self.pretrained_cfg = scratch_cfg(stem, in_chans, reduction, num_classes, "conv1.0" if stem_type else "conv1")
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

    @property
    def default_cfg(self) -> dict[str, Any]:
        """The older name (timm's) of `pretrained_cfg`."""
        return self.pretrained_cfg

    @default_cfg.setter
    def default_cfg(self, cfg: dict[str, Any]) -> None:
        self.pretrained_cfg = cfg

    def get_classifier(self) -> nn.Module:
        """Return the head (``fc``)."""
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the head with a freshly initialised one (and the pooling, if given), as timm's.

        Args:
            num_classes: New class count; 0 removes the head.
            global_pool: ``"avg"``, ``"max"`` or ``""`` (none, with ``num_classes=0``); ``None`` keeps it.
        """
        self.num_classes = check_num_classes(num_classes)
        pool_type = self.global_pool.pool_type if global_pool is None else global_pool
        device = next(self.parameters()).device
        self.global_pool, fc = _head(self.num_features, num_classes, pool_type)
        self.fc = fc.to(device)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute every block's activations in the backward pass instead of keeping them (less memory).

        Args:
            enable: On or off.
        """
        self.grad_checkpointing = enable

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Parameter groups for layer-wise learning rates, as timm's ``ResNet.group_matcher``.

        Args:
            coarse: One group per stage instead of one per block.

        Returns:
            ``stem`` and ``blocks`` patterns over parameter names (timm's ``group_parameters``
            reads them); the head falls in the last group.
        """
        blocks: Any = r"^layer(\d+)" if coarse else r"^layer(\d+)\.(\d+)"
        if self.preact:  # the final norm belongs with the last stage, as timm's ResNetV2 has it
            blocks = [(blocks, None), (r"^norm", (99999,))]
        return {"stem": r"^conv1|bn1|maxpool", "blocks": blocks}

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """Run the stem up to its pool: the first feature map (``act1``).

        Args:
            x: Images of shape ``(N, C, H, W)``.

        Returns:
            ``(N, stem channels, H / 2, W / 2)`` (``H, W`` with the ``cifar`` stem).
        """
        stem: torch.Tensor = self.act1(self.bn1(self.conv1(x)))
        return stem

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Run the stem and the stages.

        Args:
            x: Images of shape ``(N, C, H, W)``.

        Returns:
            The last stage's feature map, ``(N, num_features, h, w)``.
        """
        x = self.maxpool(self.forward_stem(x))
        if self.grad_checkpointing and not torch.jit.is_scripting():
            x = self._checkpointed_stages(x)
        else:
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        features: torch.Tensor = self.final_act(self.norm(x))
        return features

    @torch.jit.unused
    def _checkpointed_stages(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            for block in stage:
                x = checkpoint(block, x, use_reentrant=False)
        return x

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """The stem's and the stages' feature maps, as timm's ``forward_intermediates``.

        Args:
            x: Images of shape ``(N, C, H, W)``.
            indices: Which maps (0 the stem's, 1.. the stages'): all with ``None``, the last
                ``n`` for an int, or those listed (negative counts from the end).
            norm: Apply the final norm and ReLU to the last stage's map (a pre-activation model's own map).
            stop_early: Stop after the last map asked for.
            output_fmt: Only ``"NCHW"``.
            intermediates_only: Return the maps only, not the final features too.

        Returns:
            The maps, or ``(final features, maps)``.
        """
        if output_fmt != "NCHW":
            raise ModelArgumentError(f"output_fmt must be 'NCHW', got {output_fmt!r}")
        take = take_indices(len(self.feature_info), indices)
        maps = []
        x = self.forward_stem(x)
        if 0 in take:
            maps.append(x)
        x = self.maxpool(x)
        last = max(take) if stop_early else self.num_stages
        for index, stage in enumerate(self.stages[:last], start=1):
            x = stage(x)
            if index in take:
                last_map = index == self.num_stages and (norm or self.preact)
                maps.append(self.final_act(self.norm(x)) if last_map else x)
        if intermediates_only:
            return maps
        return self.final_act(self.norm(x)), maps

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Drop the stages after the last map asked for (and the head), as timm's.

        Args:
            indices: As `forward_intermediates` takes them.
            prune_norm: Drop the final norm too.
            prune_head: Drop the head.

        Returns:
            The indices kept.
        """
        take = take_indices(len(self.feature_info), indices)
        for stage_index in range(max(take) + 1, MAX_STAGES + 1):
            setattr(self, f"layer{stage_index}", nn.Identity())
        self.num_stages = min(self.num_stages, max(take))
        if prune_norm:
            self.norm = nn.Identity()
        if prune_head:
            self.reset_classifier(0, "")
        return take

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool the feature map and apply the head.

        Args:
            x: Output of `forward_features`.
            pre_logits: Return the pooled features instead of the logits.

        Returns:
            Logits ``(N, num_classes)``, or pooled features ``(N, num_features)``.
        """
        x = self.global_pool(x)
        if self.drop_rate > 0.0:
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
