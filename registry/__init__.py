"""The zoo's model registry: names to builders, with metadata.

Importing this package does not import torch. Models arrive through the
``zoo.models`` entry-point group (the zoo's own models included), discovered on
first use, so ``registry.create_model("resnet50_scratch")`` works without
importing ``zoo`` first.

Example:
    >>> import registry
    >>> model = registry.create_model("resnet50_scratch", num_classes=10)
"""

from registry.core import (
    ENTRY_POINT_GROUP,
    create_model,
    discover_plugins,
    get_spec,
    list_models,
    register_model,
    unregister_model,
)
from registry.errors import ModelArgumentError, RegistrationError, UnknownModelError, WeightsError, ZooError
from registry.info import model_info, register_top1_source
from registry.spec import ModelSpec
from registry.weights import ResolvedWeights, register_weights_scheme

__all__ = [
    "ENTRY_POINT_GROUP",
    "ModelArgumentError",
    "ModelSpec",
    "RegistrationError",
    "ResolvedWeights",
    "UnknownModelError",
    "WeightsError",
    "ZooError",
    "create_model",
    "discover_plugins",
    "get_spec",
    "list_models",
    "model_info",
    "register_model",
    "register_top1_source",
    "register_weights_scheme",
    "unregister_model",
]
