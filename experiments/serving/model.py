"""The model as it leaves training: raw uint8 images in, logits out, class names inside."""

from __future__ import annotations

import copy
import os

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import nn

from experiments.data.decode import MAX_PIXELS
from experiments.data.sources import MAX_IMAGE_BYTES
from registry.errors import ZooError


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
        return [
            [(names[i], float(v)) for v, i in zip(vs.tolist(), ix.tolist(), strict=True)]
            for vs, ix in zip(values, indices, strict=True)
        ]


def serving_copy(preprocess: nn.Module, model: nn.Module) -> ServingModel:
    """A copy of a trained network with its preprocessing, on the CPU, for logging and prediction.

    Args:
        preprocess: The data's evaluation `Preprocess`.
        model: The trained network (left as it is: the copy is a new module).

    Returns:
        A `ServingModel` in eval mode, fp32 in the default memory format (as a freshly
        built registry model), whatever the training precision and format were.
    """
    network = copy.deepcopy(model).cpu().float().to(memory_format=torch.contiguous_format)
    return ServingModel(copy.deepcopy(preprocess).cpu(), network).eval()


def read_image(path: str) -> torch.Tensor:
    """Read an image file as a uint8 ``(3, H, W)`` tensor.

    Args:
        path: The file (any format Pillow reads).

    Returns:
        The image.

    Raises:
        ZooError: If the file cannot be read as an image, or is larger than the data sets' bounds.
    """
    try:
        if os.path.getsize(path) > MAX_IMAGE_BYTES:
            raise ZooError(f"image '{path}' is larger than {MAX_IMAGE_BYTES // 2**20} MiB; give a smaller image file")
        with Image.open(path) as img:
            if img.width * img.height > MAX_PIXELS:
                raise ZooError(
                    f"image '{path}' has {img.width}x{img.height} pixels, over the limit of {MAX_PIXELS:,} "
                    f"(a decompression bomb?); resize it first"
                )
            array = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ZooError(
            f"cannot read image '{path}' ({type(exc).__name__}); give a JPEG, PNG or other image file"
        ) from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()
