"""ResNet-RS (Bello et al., 2021): ResNet-D with squeeze-excitation (ratio 1/4) and no max-pool.

The stem's max-pool becomes a 3x3/2 convolution with its norm and ReLU (``maxpool.0``,
``maxpool.1``), as timm's ``replace_stem_pool``.

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

from functools import partial
from typing import Any

from torch import nn

from registry import register_model
from zoo.blocks import Bottleneck
from zoo.layers.attention import SEModule
from zoo.models.factory import arch, create_resnet, scratch_meta, takes_timm_args, timm_twin

SE_RS = partial(SEModule, rd_ratio=0.25)
"""ResNet-RS's squeeze-excitation: a hidden layer a quarter as wide as the block's output."""
RESNETRS50 = arch(
    Bottleneck, (3, 4, 6, 3), stem_width=32, stem_type="deep", replace_stem_pool=True, avg_down=True, attn_layer=SE_RS
)
RESNETRS101 = arch(
    Bottleneck, (3, 4, 23, 3), stem_width=32, stem_type="deep", replace_stem_pool=True, avg_down=True, attn_layer=SE_RS
)


@register_model(**scratch_meta("resnet_rs", RESNETRS50, "ResNet-RS-50, random init"))
@takes_timm_args
def resnetrs50_scratch(
    num_classes: int = 10,
    *,
    stem: str = "imagenet",
    zero_init_last: bool = True,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """ResNet-RS-50: ResNet-50-D, squeeze-excitation 1/4 wide and a convolution for the stem's pool, random init."""
    return create_resnet(
        RESNETRS50, num_classes, stem=stem, zero_init_last=zero_init_last, drop_path_rate=drop_path_rate, **kwargs
    )


@register_model(**scratch_meta("resnet_rs", RESNETRS101, "ResNet-RS-101, random init"))
@takes_timm_args
def resnetrs101_scratch(
    num_classes: int = 10,
    *,
    stem: str = "imagenet",
    zero_init_last: bool = True,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """ResNet-RS-101: ResNet-101-D, squeeze-excitation 1/4 wide and a convolution for the stem's pool, random init."""
    return create_resnet(
        RESNETRS101, num_classes, stem=stem, zero_init_last=zero_init_last, drop_path_rate=drop_path_rate, **kwargs
    )


resnetrs50_timm_pretrained = timm_twin(__name__, "resnetrs50", RESNETRS50, "tf_in1k", "resnet_rs", "ResNet-RS-50")
resnetrs101_timm_pretrained = timm_twin(__name__, "resnetrs101", RESNETRS101, "tf_in1k", "resnet_rs", "ResNet-RS-101")
