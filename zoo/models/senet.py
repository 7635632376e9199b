"""Channel attention after every bottleneck's last BatchNorm: SE-ResNet, SE-ResNeXt, ECA-ResNet.

Squeeze-excitation (Hu et al., 2018) gates the channels through a 1/16-wide bottleneck of
1x1 convolutions (``se.fc1``, ``se.fc2``); ECA (Wang et al., 2020) through one 1-D
convolution across the channels (``se.conv``). The ``d`` models add the deep stem and the
average-pool shortcut of ResNet-D.

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

SERESNET50 = arch(Bottleneck, (3, 4, 6, 3), attn_layer="se")
SERESNET152D = arch(Bottleneck, (3, 8, 36, 3), stem_width=32, stem_type="deep", avg_down=True, attn_layer="se")
SERESNEXT50_32X4D = arch(Bottleneck, (3, 4, 6, 3), cardinality=32, width_per_group=4, attn_layer="se")
SERESNEXT101D_32X8D = arch(
    Bottleneck,
    (3, 4, 23, 3),
    cardinality=32,
    width_per_group=8,
    stem_width=32,
    stem_type="deep",
    avg_down=True,
    attn_layer="se",
)
ECARESNET50D = arch(Bottleneck, (3, 4, 6, 3), stem_width=32, stem_type="deep", avg_down=True, attn_layer="eca")
ECARESNET101D = arch(Bottleneck, (3, 4, 23, 3), stem_width=32, stem_type="deep", avg_down=True, attn_layer="eca")


@register_model(**scratch_meta("seresnet", SERESNET50, "SE-ResNet-50, random init"))
@takes_timm_args
def seresnet50_scratch(
    num_classes: int = 10,
    *,
    stem: str = "imagenet",
    zero_init_last: bool = True,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """SE-ResNet-50: ResNet-50 with squeeze-excitation in every block, random init."""
    return create_resnet(
        SERESNET50, num_classes, stem=stem, zero_init_last=zero_init_last, drop_path_rate=drop_path_rate, **kwargs
    )


@register_model(**scratch_meta("seresnet", SERESNET152D, "SE-ResNet-152-D, random init"))
@takes_timm_args
def seresnet152d_scratch(
    num_classes: int = 10,
    *,
    stem: str = "imagenet",
    zero_init_last: bool = True,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """SE-ResNet-152-D: ResNet-152-D with squeeze-excitation in every block, random init."""
    return create_resnet(
        SERESNET152D, num_classes, stem=stem, zero_init_last=zero_init_last, drop_path_rate=drop_path_rate, **kwargs
    )


@register_model(**scratch_meta("seresnext", SERESNEXT50_32X4D, "SE-ResNeXt-50 32x4d, random init"))
@takes_timm_args
def seresnext50_32x4d_scratch(
    num_classes: int = 10,
    *,
    stem: str = "imagenet",
    zero_init_last: bool = True,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """SE-ResNeXt-50 32x4d: ResNeXt-50 32x4d with squeeze-excitation in every block, random init."""
    return create_resnet(
        SERESNEXT50_32X4D,
        num_classes,
        stem=stem,
        zero_init_last=zero_init_last,
        drop_path_rate=drop_path_rate,
        **kwargs,
    )


@register_model(**scratch_meta("seresnext", SERESNEXT101D_32X8D, "SE-ResNeXt-101-D 32x8d, random init"))
@takes_timm_args
def seresnext101d_32x8d_scratch(
    num_classes: int = 10,
    *,
    stem: str = "imagenet",
    zero_init_last: bool = True,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """SE-ResNeXt-101-D 32x8d: ResNeXt-101 32x8d with the D stem and shortcut and squeeze-excitation, random init."""
    return create_resnet(
        SERESNEXT101D_32X8D,
        num_classes,
        stem=stem,
        zero_init_last=zero_init_last,
        drop_path_rate=drop_path_rate,
        **kwargs,
    )


@register_model(**scratch_meta("ecaresnet", ECARESNET50D, "ECA-ResNet-50-D, random init"))
@takes_timm_args
def ecaresnet50d_scratch(
    num_classes: int = 10,
    *,
    stem: str = "imagenet",
    zero_init_last: bool = True,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """ECA-ResNet-50-D: ResNet-50-D with efficient channel attention in every block, random init."""
    return create_resnet(
        ECARESNET50D, num_classes, stem=stem, zero_init_last=zero_init_last, drop_path_rate=drop_path_rate, **kwargs
    )


@register_model(**scratch_meta("ecaresnet", ECARESNET101D, "ECA-ResNet-101-D, random init"))
@takes_timm_args
def ecaresnet101d_scratch(
    num_classes: int = 10,
    *,
    stem: str = "imagenet",
    zero_init_last: bool = True,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """ECA-ResNet-101-D: ResNet-101-D with efficient channel attention in every block, random init."""
    return create_resnet(
        ECARESNET101D, num_classes, stem=stem, zero_init_last=zero_init_last, drop_path_rate=drop_path_rate, **kwargs
    )


seresnet50_timm_pretrained = timm_twin(__name__, "seresnet50", SERESNET50, "a1_in1k", "seresnet", "SE-ResNet-50")
seresnet152d_timm_pretrained = timm_twin(
    __name__, "seresnet152d", SERESNET152D, "ra2_in1k", "seresnet", "SE-ResNet-152-D"
)
seresnext50_32x4d_timm_pretrained = timm_twin(
    __name__, "seresnext50_32x4d", SERESNEXT50_32X4D, "racm_in1k", "seresnext", "SE-ResNeXt-50 32x4d"
)
seresnext101d_32x8d_timm_pretrained = timm_twin(
    __name__, "seresnext101d_32x8d", SERESNEXT101D_32X8D, "ah_in1k", "seresnext", "SE-ResNeXt-101-D 32x8d"
)
ecaresnet50d_timm_pretrained = timm_twin(
    __name__, "ecaresnet50d", ECARESNET50D, "miil_in1k", "ecaresnet", "ECA-ResNet-50-D"
)
ecaresnet101d_timm_pretrained = timm_twin(
    __name__, "ecaresnet101d", ECARESNET101D, "miil_in1k", "ecaresnet", "ECA-ResNet-101-D"
)
