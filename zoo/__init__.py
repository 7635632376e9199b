"""The zoo's models. Importing this package registers them with `registry`.

The registry imports it through the ``zoo.models`` entry point, so users
rarely import it themselves; `zoo.blocks` and `zoo.resnet` are public for
building new architectures from the same blocks.
"""

from zoo import pretrained, resnet  # noqa: F401  (registers the builders)
from zoo.blocks import BasicBlock, Bottleneck
from zoo.resnet import ResNet

__all__ = ["BasicBlock", "Bottleneck", "ResNet"]
