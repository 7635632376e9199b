"""Pre-activation ResNets for CIFAR (He et al. 2016, "Identity mappings in deep residual networks").

The paper's bottleneck ResNets for 32x32 input, which neither timm nor torchvision ships:
a 16-channel 3x3 stem, three stages of `Bottleneck` blocks of 16, 32 and 64 planes
(outputs 64, 128 and 256; the second and third stages start with stride 2), each block in
the pre-activation order (norm, ReLU, convolution, three times, then the sum), and a final
norm and ReLU before the average pool. ``9n + 2`` layers for ``n`` blocks per stage:

- ResNet-164, 18 blocks per stage: 1.7M parameters, CIFAR-10 test error 5.46% in the paper;
- ResNet-1001, 111 blocks per stage: 10.2M parameters, CIFAR-10 test error 4.92% in the paper.

The zoo measures 1.70M and 10.33M parameters with a 10-class head (see tests/test_preresnet.py).

Builder arguments:
    num_classes: Classes of the head; 0 returns the pooled features.
    stem: ``"cifar"`` (the paper's: every stride 1, for 32x32) or ``"imagenet"``
        (a 7x7/2 convolution and max-pool of the same 16 channels).
    zero_init_last: Zero every block's last convolution, so each block starts as an
        identity. Off by default: the paper initialises as He et al. 2015, and a
        pre-activation block's identity path already carries the signal unchanged.
    drop_path_rate: Stochastic depth of the last block (earlier blocks get less); 0 is off.
    pretrained: ``False`` builds a ``*_timm_pretrained`` architecture without weights; a
        ``*_scratch`` model takes only ``False`` (timm's builders take it).
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
from zoo.models.factory import arch, create_resnet, scratch_meta, takes_timm_args

_CIFAR = {"stem_width": 16, "channels": (16, 32, 64), "preact": True}
PRERESNET164 = arch(Bottleneck, (18, 18, 18), **_CIFAR)
PRERESNET1001 = arch(Bottleneck, (111, 111, 111), **_CIFAR)
_INPUT = (3, 32, 32)


@register_model(
    input_size=_INPUT,
    **scratch_meta(
        "preresnet", PRERESNET164, "Pre-activation ResNet-164 for CIFAR (Bottleneck, 18-18-18), random init"
    ),
)
@takes_timm_args
def preresnet164_scratch(
    num_classes: int = 10,
    *,
    stem: str = "cifar",
    zero_init_last: bool = False,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """Pre-activation ResNet-164 (He et al. 2016): 18 bottlenecks per stage at 16/32/64 planes, 1.7M parameters."""
    return create_resnet(
        PRERESNET164, num_classes, stem=stem, zero_init_last=zero_init_last, drop_path_rate=drop_path_rate, **kwargs
    )


@register_model(
    input_size=_INPUT,
    **scratch_meta(
        "preresnet", PRERESNET1001, "Pre-activation ResNet-1001 for CIFAR (Bottleneck, 111-111-111), random init"
    ),
)
@takes_timm_args
def preresnet1001_scratch(
    num_classes: int = 10,
    *,
    stem: str = "cifar",
    zero_init_last: bool = False,
    drop_path_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """Pre-activation ResNet-1001 (He et al. 2016): 111 bottlenecks per stage at 16/32/64 planes, 10.2M parameters."""
    return create_resnet(
        PRERESNET1001, num_classes, stem=stem, zero_init_last=zero_init_last, drop_path_rate=drop_path_rate, **kwargs
    )
