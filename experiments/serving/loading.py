"""A trained model back as a `ServingModel`: from a run's best weights or from a local checkpoint.

Both paths read tensors only (safetensors, or ``torch.load(weights_only=True)``),
rebuild the network from the registry with the builder arguments it was trained
with, and put the run's own preprocessing in front of it.
"""

from __future__ import annotations

from typing import Any

import registry
from experiments.data.transforms import Preprocess
from experiments.serving.model import ServingModel
from experiments.tracking.checkpoints import load_checkpoint
from experiments.tracking.readback import best_weights
from registry.errors import WeightsError
from registry.weights import load_state_dict_strict, unwrap_state_dict


def build_serving_model(
    model_name: str, state_dict: dict[str, Any], model_kwargs: dict[str, Any], preprocess: dict[str, Any]
) -> ServingModel:
    """Rebuild a network from the registry, load its weights strictly, and put its preprocessing in front.

    Args:
        model_name: The registered model.
        state_dict: Its trained weights.
        model_kwargs: The builder arguments it was trained with (``num_classes``, ``stem``, ...).
        preprocess: ``Preprocess.config()`` of its run.

    Returns:
        The `ServingModel`, in eval mode.
    """
    spec = registry.get_spec(model_name)
    # A pretrained builder would fetch ImageNet weights only to have them replaced.
    net = registry.create_model(model_name, **({"pretrained": False} if spec.is_pretrained else {}), **model_kwargs)
    load_state_dict_strict(net, state_dict, "checkpoint", model_name)
    return ServingModel(Preprocess(**preprocess), net).eval()


def load_run_model(run_id: str, tracking_uri: str | None = None) -> ServingModel:
    """A run's best weights with its preprocessing, rebuilt from safetensors (no pickle).

    Args:
        run_id: The MLflow run's id.
        tracking_uri: The store.

    Returns:
        The `ServingModel`, in eval mode.
    """
    state, info = best_weights(run_id, tracking_uri)
    return build_serving_model(info["model"], state, info["model_kwargs"], info["preprocess"])


def load_checkpoint_model(path: str) -> ServingModel:
    """The model in a checkpoint that ``zoo train`` wrote (read with ``weights_only=True``).

    Args:
        path: A ``.ckpt`` file from the run's checkpoint folder.

    Returns:
        The `ServingModel`, in eval mode.

    Raises:
        WeightsError: If the file is not such a checkpoint.
    """
    loaded = load_checkpoint(path)
    hparams = dict(loaded.get("hyper_parameters") or {})
    config, preprocess = hparams.get("config") or {}, hparams.get("preprocess") or {}
    if not config.get("model") or not preprocess:
        raise WeightsError(f"'{path}' is not a checkpoint written by zoo train; use --run RUN_ID or such a .ckpt file")
    kwargs = {"num_classes": int(hparams["num_classes"]), **(config.get("model_args") or {})}
    if config.get("stem"):
        kwargs["stem"] = config["stem"]
    return build_serving_model(config["model"], unwrap_state_dict(loaded.get("state_dict"), path), kwargs, preprocess)
