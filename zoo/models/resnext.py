"""ResNeXt (Xie et al., 2017) and Wide ResNet (Zagoruyko and Komodakis, 2016) on the zoo's `Bottleneck`.

ResNeXt splits the 3x3 convolution into ``cardinality`` groups of ``width_per_group``
channels (at the first stage's 64 planes); Wide ResNet-50-2 doubles the inner width
(``width_per_group=128``). Both keep ResNet-50's outputs, so only the inner layers change.

Builder arguments (each builder takes only those its signature names):
    num_classes: Classes of the head; 0 returns the pooled features.
    stem: ``"imagenet"`` (reduces 4x, for 224x224 input) or ``"cifar"`` (every stride 1,
        no pool, for native 32x32 input; a deep stem keeps its three convolutions).
    zero_init_last: Zero every block's last norm so each block starts as an identity (on, as in timm).
    drop_path_rate: Stochastic depth of the last block (earlier blocks get less); 0 is off.
    pretrained: ``False`` builds a ``*_timm_pretrained`` architecture without weights.
    weights: A local ``.safetensors``/``.pth`` file instead of timm's download.
    timm_name: timm's weights to load (``architecture.tag``).
    in_chans: Input channels of a ``*_scratch`` model (3).
    global_pool: Pooling before the head: ``"avg"``, ``"max"`` or ``""`` (none, with ``num_classes=0``).
    output_stride: The last map's reduction (32; 8 with the ``cifar`` stem); 8 or 16 dilates the later stages.
    features_only: Return a backbone (timm's ``FeatureListNet``) whose forward gives the stem's and
        each stage's feature maps; see ``docs/backbones.md``.
    out_indices: Which feature maps a backbone returns (0 the stem's, 1.. the stages'); all by default.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from registry import register_model
from zoo.blocks import Bottleneck
from zoo.models.factory import arch, create_resnet, scratch_meta, takes_timm_args, timm_twin

RESNEXT50_32X4D = arch(Bottleneck, (3, 4, 6, 3), cardinality=32, width_per_group=4)
RESNEXT101_32X8D = arch(Bottleneck, (3, 4, 23, 3), cardinality=32, width_per_group=8)
RESNEXT101_64X4D = arch(Bottleneck, (3, 4, 23, 3), cardinality=64, width_per_group=4)
WIDE_RESNET50_2 = arch(Bottleneck, (3, 4, 6, 3), width_per_group=128)
WIDE_RESNET101_2 = arch(Bottleneck, (3, 4, 23, 3), width_per_group=128)


@register_model(**scratch_meta("resnext", RESNEXT50_32X4D, "ResNeXt-50 32x4d, random init"))
@takes_timm_args
def resnext50_32x4d_scratch(
    num_classes: int = 10,
    *,
    stem: str = "imagenet",
    zero_init_last: bool = True,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """ResNeXt-50 32x4d: 32 groups of 4 channels in the first stage's 3x3, random init."""
    return create_resnet(
        RESNEXT50_32X4D, num_classes, stem=stem, zero_init_last=zero_init_last, drop_path_rate=drop_path_rate, **kwargs
    )


@register_model(**scratch_meta("resnext", RESNEXT101_32X8D, "ResNeXt-101 32x8d, random init"))
@takes_timm_args
def resnext101_32x8d_scratch(
    num_classes: int = 10,
    *,
    stem: str = "imagenet",
    zero_init_last: bool = True,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """ResNeXt-101 32x8d: 32 groups of 8 channels, stages of 3-4-23-3 blocks, random init."""
    return create_resnet(
        RESNEXT101_32X8D, num_classes, stem=stem, zero_init_last=zero_init_last, drop_path_rate=drop_path_rate, **kwargs
    )


@register_model(**scratch_meta("resnext", RESNEXT101_64X4D, "ResNeXt-101 64x4d, random init"))
@takes_timm_args
def resnext101_64x4d_scratch(
    num_classes: int = 10,
    *,
    stem: str = "imagenet",
    zero_init_last: bool = True,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """ResNeXt-101 64x4d: 64 groups of 4 channels, stages of 3-4-23-3 blocks, random init."""
    return create_resnet(
        RESNEXT101_64X4D, num_classes, stem=stem, zero_init_last=zero_init_last, drop_path_rate=drop_path_rate, **kwargs
    )


@register_model(**scratch_meta("wide_resnet", WIDE_RESNET50_2, "Wide ResNet-50-2, random init"))
@takes_timm_args
def wide_resnet50_2_scratch(
    num_classes: int = 10,
    *,
    stem: str = "imagenet",
    zero_init_last: bool = True,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """Wide ResNet-50-2: ResNet-50 with twice the inner width of every bottleneck, random init."""
    return create_resnet(
        WIDE_RESNET50_2, num_classes, stem=stem, zero_init_last=zero_init_last, drop_path_rate=drop_path_rate, **kwargs
    )


@register_model(**scratch_meta("wide_resnet", WIDE_RESNET101_2, "Wide ResNet-101-2, random init"))
@takes_timm_args
def wide_resnet101_2_scratch(
    num_classes: int = 10,
    *,
    stem: str = "imagenet",
    zero_init_last: bool = True,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """Wide ResNet-101-2: ResNet-101 with twice the inner width of every bottleneck, random init."""
    return create_resnet(
        WIDE_RESNET101_2, num_classes, stem=stem, zero_init_last=zero_init_last, drop_path_rate=drop_path_rate, **kwargs
    )


resnext50_32x4d_timm_pretrained = timm_twin(
    __name__, "resnext50_32x4d", RESNEXT50_32X4D, "a1h_in1k", "resnext", "ResNeXt-50 32x4d"
)
resnext101_32x8d_timm_pretrained = timm_twin(
    __name__, "resnext101_32x8d", RESNEXT101_32X8D, "tv_in1k", "resnext", "ResNeXt-101 32x8d"
)
resnext101_64x4d_timm_pretrained = timm_twin(
    __name__, "resnext101_64x4d", RESNEXT101_64X4D, "c1_in1k", "resnext", "ResNeXt-101 64x4d"
)
wide_resnet50_2_timm_pretrained = timm_twin(
    __name__, "wide_resnet50_2", WIDE_RESNET50_2, "racm_in1k", "wide_resnet", "Wide ResNet-50-2"
)
wide_resnet101_2_timm_pretrained = timm_twin(
    __name__, "wide_resnet101_2", WIDE_RESNET101_2, "tv_in1k", "wide_resnet", "Wide ResNet-101-2"
)
