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
