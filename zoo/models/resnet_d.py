"""The stem and shortcut variants of Bag of Tricks (He et al., 2019): ResNet-C, -S, -D and -T.

- C: a deep stem of three 3x3 convolutions (32, 32, 64 channels) instead of the 7x7.
- S: the same deep stem 64 wide (64, 64, 128).
- D: the C stem and the average-pool shortcut: the projection pools 2x2 before a stride-1
  1x1 convolution, instead of a strided 1x1 that ignores three pixels in four.
- T: the D shortcut with a tiered deep stem (24, 32, 64).

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

RESNET50C = arch(Bottleneck, (3, 4, 6, 3), stem_width=32, stem_type="deep")
RESNET50S = arch(Bottleneck, (3, 4, 6, 3), stem_width=64, stem_type="deep")
RESNET50D = arch(Bottleneck, (3, 4, 6, 3), stem_width=32, stem_type="deep", avg_down=True)
RESNET101D = arch(Bottleneck, (3, 4, 23, 3), stem_width=32, stem_type="deep", avg_down=True)
RESNET152D = arch(Bottleneck, (3, 8, 36, 3), stem_width=32, stem_type="deep", avg_down=True)
RESNET200D = arch(Bottleneck, (3, 24, 36, 3), stem_width=32, stem_type="deep", avg_down=True)
RESNET26T = arch(Bottleneck, (2, 2, 2, 2), stem_width=32, stem_type="deep_tiered", avg_down=True)


@register_model(**scratch_meta("resnet_d", RESNET50C, "ResNet-50-C, random init"))
@takes_timm_args
def resnet50c_scratch(
    num_classes: int = 10,
    *,
    stem: str = "imagenet",
    zero_init_last: bool = True,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """ResNet-50-C: ResNet-50 with a deep 32-wide stem of three 3x3 convolutions, random init."""
    return create_resnet(
        RESNET50C, num_classes, stem=stem, zero_init_last=zero_init_last, drop_path_rate=drop_path_rate, **kwargs
    )


@register_model(**scratch_meta("resnet_d", RESNET50S, "ResNet-50-S, random init"))
@takes_timm_args
def resnet50s_scratch(
    num_classes: int = 10,
    *,
    stem: str = "imagenet",
    zero_init_last: bool = True,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """ResNet-50-S: ResNet-50 with a deep 64-wide stem of three 3x3 convolutions, random init."""
    return create_resnet(
        RESNET50S, num_classes, stem=stem, zero_init_last=zero_init_last, drop_path_rate=drop_path_rate, **kwargs
    )


@register_model(**scratch_meta("resnet_d", RESNET50D, "ResNet-50-D, random init"))
@takes_timm_args
def resnet50d_scratch(
    num_classes: int = 10,
    *,
    stem: str = "imagenet",
    zero_init_last: bool = True,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """ResNet-50-D: the deep 32-wide stem and the average-pool shortcut, random init."""
    return create_resnet(
        RESNET50D, num_classes, stem=stem, zero_init_last=zero_init_last, drop_path_rate=drop_path_rate, **kwargs
    )


@register_model(**scratch_meta("resnet_d", RESNET101D, "ResNet-101-D, random init"))
@takes_timm_args
def resnet101d_scratch(
    num_classes: int = 10,
    *,
    stem: str = "imagenet",
    zero_init_last: bool = True,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """ResNet-101-D: ResNet-101 with the deep stem and the average-pool shortcut, random init."""
    return create_resnet(
        RESNET101D, num_classes, stem=stem, zero_init_last=zero_init_last, drop_path_rate=drop_path_rate, **kwargs
    )


@register_model(**scratch_meta("resnet_d", RESNET152D, "ResNet-152-D, random init"))
@takes_timm_args
def resnet152d_scratch(
    num_classes: int = 10,
    *,
    stem: str = "imagenet",
    zero_init_last: bool = True,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """ResNet-152-D: ResNet-152 with the deep stem and the average-pool shortcut, random init."""
    return create_resnet(
        RESNET152D, num_classes, stem=stem, zero_init_last=zero_init_last, drop_path_rate=drop_path_rate, **kwargs
    )


@register_model(**scratch_meta("resnet_d", RESNET200D, "ResNet-200-D, random init"))
@takes_timm_args
def resnet200d_scratch(
    num_classes: int = 10,
    *,
    stem: str = "imagenet",
    zero_init_last: bool = True,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """ResNet-200-D: ResNet-200 with the deep stem and the average-pool shortcut, random init."""
    return create_resnet(
        RESNET200D, num_classes, stem=stem, zero_init_last=zero_init_last, drop_path_rate=drop_path_rate, **kwargs
    )


@register_model(**scratch_meta("resnet_d", RESNET26T, "ResNet-26-T, random init"))
@takes_timm_args
def resnet26t_scratch(
    num_classes: int = 10,
    *,
    stem: str = "imagenet",
    zero_init_last: bool = True,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """ResNet-26-T: ResNet-26 with the tiered deep stem (24, 32, 64) and the average-pool shortcut, random init."""
    return create_resnet(
        RESNET26T, num_classes, stem=stem, zero_init_last=zero_init_last, drop_path_rate=drop_path_rate, **kwargs
    )


resnet50c_timm_pretrained = timm_twin(__name__, "resnet50c", RESNET50C, "gluon_in1k", "resnet_d", "ResNet-50-C")
resnet50s_timm_pretrained = timm_twin(__name__, "resnet50s", RESNET50S, "gluon_in1k", "resnet_d", "ResNet-50-S")
resnet50d_timm_pretrained = timm_twin(__name__, "resnet50d", RESNET50D, "ra2_in1k", "resnet_d", "ResNet-50-D")
resnet101d_timm_pretrained = timm_twin(__name__, "resnet101d", RESNET101D, "ra2_in1k", "resnet_d", "ResNet-101-D")
resnet152d_timm_pretrained = timm_twin(__name__, "resnet152d", RESNET152D, "ra2_in1k", "resnet_d", "ResNet-152-D")
resnet200d_timm_pretrained = timm_twin(__name__, "resnet200d", RESNET200D, "ra2_in1k", "resnet_d", "ResNet-200-D")
resnet26t_timm_pretrained = timm_twin(__name__, "resnet26t", RESNET26T, "ra2_in1k", "resnet_d", "ResNet-26-T")
