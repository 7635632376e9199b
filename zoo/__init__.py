"""The zoo's models. Importing this package registers them with `registry`.

The registry imports it through the ``zoo.models`` entry point, so users
rarely import it themselves. The parts are public for building new
architectures from them: `zoo.layers` (attention, blur pool, drop path, norm,
stems), `zoo.blocks` (the one `Bottleneck` and `BasicBlock`), `zoo.resnet`
(`ResNet`), `zoo.pretrained` (timm's weights), and `zoo.models` (the registered
builders, one module per family). What is known about the models besides their
code lives here too: `zoo.cards` (the published top-1 of timm's weights, with
`zoo.published`, the rows of timm's results table), `zoo.throughput` (the benchmark's
figures) and `zoo.indexer`, which writes ``zoo/model_index.json``.
"""

import registry
from zoo import cards, models  # noqa: F401  (importing `models` registers the builders)

registry.register_top1_source("timm", cards.timm_top1_of)
