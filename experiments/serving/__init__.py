"""The trained model as it leaves training: the served model, ``runs:/`` and ``models:/`` weights, the Model Registry.

- `model`: `ServingModel` (uint8 images in, logits out) and `serving_copy`.
- `loading`: a run's best weights or a local checkpoint back as a `ServingModel`.
- `weights_uri`: the ``runs:/`` and ``models:/`` schemes of `registry.create_model`.
- `model_registry`: a run into MLflow's Model Registry (``zoo register``).

This package re-exports nothing: it is named by the ``zoo.weights`` entry points, read before
torch is needed.
"""
