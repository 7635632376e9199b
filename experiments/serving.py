"""The model as it leaves training: raw uint8 images in, logits out, class names inside."""

from __future__ import annotations

import torch
from torch import nn


class ServingModel(nn.Module):
    """A trained network with its `Preprocess` in front.

    This is what the run logs with ``mlflow.pytorch.log_model`` and what
    ``zoo predict`` calls: give it the images as they are stored (uint8,
    ``(N, 3, H, W)`` or ``(N, 1, H, W)``, any size) and it resizes and
    normalises them exactly as during evaluation.

    Args:
        preprocess: The data's evaluation `Preprocess` (it carries the class names).
        model: The trained network, taking preprocessed float input.
    """

    def __init__(self, preprocess: nn.Module, model: nn.Module) -> None:
        super().__init__()
        self.preprocess = preprocess
        self.model = model
        self.class_names = list(getattr(preprocess, "class_names", []) or [])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of raw images.

        Args:
            images: uint8 ``(N, C, H, W)``.

        Returns:
            Logits ``(N, num_classes)``.
        """
        return self.model(self.preprocess(images))

    @torch.no_grad()
    def predict(self, images: torch.Tensor, top_k: int = 5) -> list[list[tuple[str, float]]]:
        """Top classes with probabilities for each image.

        Args:
            images: uint8 ``(N, C, H, W)``.
            top_k: How many classes per image.

        Returns:
            For each image, ``[(class name, probability), ...]`` best first.
        """
        was_training = self.training
        self.eval()
        probs = self(images).softmax(dim=1)
        self.train(was_training)
        k = min(top_k, probs.shape[1])
        values, indices = probs.topk(k, dim=1)
        names = self.class_names or [str(i) for i in range(probs.shape[1])]
        return [[(names[i], float(v)) for v, i in zip(vs.tolist(), ix.tolist())] for vs, ix in zip(values, indices)]


def read_image(path: str) -> torch.Tensor:
    """Read an image file as a uint8 ``(3, H, W)`` tensor.

    Args:
        path: The file (any format Pillow reads).

    Returns:
        The image.

    Raises:
        ZooError: If the file cannot be read as an image.
    """
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from registry.errors import ZooError

    try:
        with Image.open(path) as img:
            array = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as exc:
        raise ZooError(f"cannot read image '{path}' ({type(exc).__name__}); give a JPEG, PNG or other image file") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def _build(model_name: str, state_dict: dict, model_kwargs: dict, preprocess: dict) -> ServingModel:
    import registry
    from experiments.transforms import Preprocess
    from registry.weights import load_state_dict_strict

    model = registry.get_spec(model_name)
    net = registry.create_model(model_name, **({"pretrained": False} if model.is_pretrained else {}), **model_kwargs)
    load_state_dict_strict(net, state_dict, "checkpoint", model_name)
    return ServingModel(Preprocess(**preprocess), net).eval()


def load_run_model(run_id: str, tracking_uri: str | None = None) -> ServingModel:
    """A run's best weights with its preprocessing, rebuilt from safetensors (no pickle).

    Args:
        run_id: The run.
        tracking_uri: The store.

    Returns:
        The `ServingModel`, in eval mode.
    """
    import json

    from experiments import tracking
    from registry.weights import read_weights_file

    info = json.loads(tracking.download_artifact(run_id, tracking.WEIGHTS_INFO_ARTIFACT, tracking_uri).read_text())
    state = read_weights_file(tracking.download_artifact(run_id, tracking.BEST_WEIGHTS_ARTIFACT, tracking_uri))
    return _build(info["model"], state, info["model_kwargs"], info["preprocess"])


def load_checkpoint_model(path: str) -> ServingModel:
    """The model in a checkpoint that ``zoo train`` wrote (read with ``weights_only=True``).

    Args:
        path: A ``.ckpt`` file from the run's checkpoint folder.

    Returns:
        The `ServingModel`, in eval mode.

    Raises:
        WeightsError: If the file is not such a checkpoint.
    """
    from registry.errors import WeightsError
    from registry.weights import unwrap_state_dict

    loaded = _load_checkpoint(path)
    hparams = dict(loaded.get("hyper_parameters") or {})
    config, preprocess = hparams.get("config") or {}, hparams.get("preprocess") or {}
    if not config.get("model") or not preprocess:
        raise WeightsError(f"'{path}' is not a checkpoint written by zoo train; use --run RUN_ID or such a .ckpt file")
    kwargs = {"num_classes": int(hparams["num_classes"]), **(config.get("model_args") or {})}
    if config.get("stem"):
        kwargs["stem"] = config["stem"]
    return _build(config["model"], unwrap_state_dict(loaded.get("state_dict"), path), kwargs, preprocess)


def _load_checkpoint(path: str) -> dict:
    from lightning.fabric.utilities.data import AttributeDict

    from registry.errors import WeightsError

    try:
        with torch.serialization.safe_globals([AttributeDict]):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"cannot read checkpoint '{path}' safely ({type(exc).__name__}); give a .ckpt from zoo train") from None
    if not isinstance(loaded, dict) or not isinstance(loaded.get("state_dict"), dict):
        raise WeightsError(f"'{path}' is not a Lightning checkpoint; give a .ckpt from zoo train")
    return loaded
