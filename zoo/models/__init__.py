"""The registered builders, one module per family, as timm's ``timm/models/`` has them.

Importing this package registers every builder (`zoo` imports it, and the registry imports
`zoo` through the ``zoo.models`` entry point). Each family module holds its architectures as
data (`zoo.models.factory.arch`), a few-line scratch builder per architecture, and its
``*_timm_pretrained`` twins (`zoo.models.factory.timm_twin`).
"""

from zoo.models import antialiased, preresnet, resnet, resnet_d, resnet_rs, resnext, senet  # noqa: F401  (registers them)
