"""The trained model as it leaves training: the served model, ``runs:/`` and ``models:/`` weights, the Model Registry.

- `model`: `ServingModel` (uint8 images in, logits out) and `serving_copy`.
- `loading`: a run's best weights or a local checkpoint back as a `ServingModel`.
- `weights_uri`: the ``runs:/`` and ``models:/`` schemes of `registry.create_model`.
- `model_registry`: a run into MLflow's Model Registry (``zoo register``).

Loaded on first use: the modules import torch and MLflow.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ServingModel": "model",
    "serving_copy": "model",
    "read_image": "model",
    "load_run_model": "loading",
    "load_checkpoint_model": "loading",
    "register_run": "model_registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # Lazy: the package is named by the zoo.weights entry points, read before torch is needed.
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"experiments.serving.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
