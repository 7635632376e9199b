"""The layers the zoo's blocks and stems are assembled from, one job per module.

Module names inside them (``fc1``, ``fc2``, ``conv``, ``filt``) follow timm's, so that
timm's weights load key for key.
"""

from zoo.layers.attention import EcaModule, SEModule, create_attn, make_divisible
from zoo.layers.blur_pool import BlurPool2d, create_aa
from zoo.layers.drop_path import DropPath
from zoo.layers.norm import NORM_LAYERS, NormLayer, get_norm_layer
from zoo.layers.stems import make_stem

__all__ = [
    "NORM_LAYERS",
    "BlurPool2d",
    "DropPath",
    "EcaModule",
    "NormLayer",
    "SEModule",
    "create_aa",
    "create_attn",
    "get_norm_layer",
    "make_divisible",
    "make_stem",
]
