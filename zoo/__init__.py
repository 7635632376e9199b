"""The zoo's models. Importing this package registers them with `registry`.

The registry imports it through the ``zoo.models`` entry point, so users
rarely import it themselves. The parts are public for building new
architectures from them: `zoo.layers` (attention, blur pool, drop path, norm,
stems), `zoo.blocks` (the one `Bottleneck` and `BasicBlock`), `zoo.resnet`
(`ResNet`), `zoo.pretrained` (timm's weights), and `zoo.models` (the registered
builders, one module per family).
"""

from zoo import models, pretrained  # noqa: F401  (registers the builders)
from zoo.blocks import BasicBlock, Bottleneck
from zoo.resnet import ResNet

__all__ = ["BasicBlock", "Bottleneck", "ResNet"]
