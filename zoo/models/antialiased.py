"""Anti-aliased ResNets (Zhang, 2019): blur before every subsampling.

Every stride-2 block runs its 3x3 at stride 1 and subsamples after it (``aa``), and the
stem's max-pool subsamples through the same layer: a 2x2 average pool in ResNet-AA, a
binomial blur pool in ResNet-Blur. Neither adds weights.

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

RESNETAA50D = arch(Bottleneck, (3, 4, 6, 3), aa_layer="avg", stem_width=32, stem_type="deep", avg_down=True)
RESNETBLUR50 = arch(Bottleneck, (3, 4, 6, 3), aa_layer="blur")


@register_model(**scratch_meta("resnet_aa", RESNETAA50D, "ResNet-AA-50-D, random init"))
@takes_timm_args
def resnetaa50d_scratch(
    num_classes: int = 10,
    *,
    stem: str = "imagenet",
    zero_init_last: bool = True,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """ResNet-AA-50-D: ResNet-50-D that subsamples through 2x2 average pools, random init."""
    return create_resnet(
        RESNETAA50D, num_classes, stem=stem, zero_init_last=zero_init_last, drop_path_rate=drop_path_rate, **kwargs
    )


@register_model(**scratch_meta("resnet_aa", RESNETBLUR50, "ResNet-Blur-50, random init"))
@takes_timm_args
def resnetblur50_scratch(
    num_classes: int = 10,
    *,
    stem: str = "imagenet",
    zero_init_last: bool = True,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """ResNet-Blur-50: ResNet-50 that subsamples through binomial blur pools, random init."""
    return create_resnet(
        RESNETBLUR50, num_classes, stem=stem, zero_init_last=zero_init_last, drop_path_rate=drop_path_rate, **kwargs
    )


resnetaa50d_timm_pretrained = timm_twin(
    __name__, "resnetaa50d", RESNETAA50D, "sw_in12k_ft_in1k", "resnet_aa", "ResNet-AA-50-D"
)
resnetblur50_timm_pretrained = timm_twin(
    __name__, "resnetblur50", RESNETBLUR50, "bt_in1k", "resnet_aa", "ResNet-Blur-50"
)
