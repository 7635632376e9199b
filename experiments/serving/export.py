"""The served model in a form ``torch.export`` traces for any batch, height and width.

MLflow's ``pt2`` format (``torch.export``) loads without running pickled code, but an
exported graph keeps only the branch its example took: `Preprocess` decides in Python
whether to resize and whether to anti-alias (``size < max(H, W)``), so an export of the
served model as it is takes only images on the same side of the output size as its
example. `ExportablePreprocess` computes the same numbers with no Python branch on the
image size: it always resizes (to the same size a resize is exact for every
interpolation the zoo offers) and chooses anti-aliasing with ``torch.cond``, which the
graph keeps with both branches.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from experiments.data.transforms import Preprocess
from experiments.serving.model import ServingModel


class ExportablePreprocess(nn.Module):
    """`Preprocess` for uint8 ``(N, 3, H, W)`` images, with no Python branch on the image size.

    Args:
        preprocess: The data's evaluation `Preprocess` (its size, interpolation, mean and std).
    """

    # Buffers (registered in __init__, so they follow .to() and live in the state_dict).
    mean: Tensor
    std: Tensor

    def __init__(self, preprocess: Preprocess) -> None:
        super().__init__()
        self.image_size: int | None = preprocess.image_size
        self.interpolation: str = preprocess.interpolation
        self.register_buffer("mean", preprocess.mean.detach().clone())
        self.register_buffer("std", preprocess.std.detach().clone())

    def _resize(self, x: Tensor, antialias: bool) -> Tensor:
        size = self.image_size
        assert size is not None  # only called with a size
        smooth = self.interpolation in ("bilinear", "bicubic")
        return F.interpolate(
            x,
            size=(size, size),
            mode=self.interpolation,
            align_corners=False if smooth else None,
            antialias=antialias,
        )

    def _shrink(self, x: Tensor) -> Tensor:
        return self._resize(x, antialias=True)

    def _grow(self, x: Tensor) -> Tensor:
        return self._resize(x, antialias=False)

    def forward(self, images: Tensor) -> Tensor:
        """Resize and normalise, as `Preprocess` does for uint8 three-channel images.

        Args:
            images: uint8 ``(N, 3, H, W)``.

        Returns:
            float32 ``(N, 3, S, S)``, normalised with mean/std.
        """
        x = images.to(torch.float32)
        size = self.image_size
        if size is not None:
            if self.interpolation in ("bilinear", "bicubic"):
                # A symbolic bool under torch.export (both branches kept), a plain bool when eager.
                larger: Any = torch.sym_max(x.shape[-2], x.shape[-1]) > size
                x = torch.cond(larger, self._shrink, self._grow, (x,))
            else:
                x = self._grow(x)
            if self.interpolation == "bicubic":
                x = x.clamp(0, 255.0)  # bicubic overshoots the pixel range
        return torch.addcmul(-self.mean / self.std, x, 1.0 / (self.std * 255.0))


class ExportableServingModel(nn.Module):
    """A `ServingModel` that ``torch.export`` traces with free batch, height and width.

    Args:
        served: The served model (its network is shared, not copied).
    """

    def __init__(self, served: ServingModel) -> None:
        super().__init__()
        preprocess = served.preprocess
        if not isinstance(preprocess, Preprocess):
            raise TypeError(f"the served model's preprocessing is a {type(preprocess).__name__}, not a Preprocess")
        self.preprocess = ExportablePreprocess(preprocess)
        self.model = served.model

    def forward(self, images: Tensor) -> Tensor:
        """Logits of raw images, equal to the `ServingModel`'s.

        Args:
            images: uint8 ``(N, 3, H, W)``.

        Returns:
            Logits ``(N, num_classes)``.
        """
        return self.model(self.preprocess(images))


def export_example(images: Tensor) -> Tensor:
    """An input example that leaves batch, height and width free in the export.

    ``torch.export`` fixes every size of 1 in its example: the batch is repeated to at
    least two images and each side padded to at least two pixels.

    Args:
        images: uint8 ``(N, 3, H, W)``, N >= 1.

    Returns:
        uint8 ``(max(N, 2), 3, max(H, 2), max(W, 2))``.
    """
    if images.shape[0] < 2:
        images = images.repeat(2, 1, 1, 1)
    pad_h, pad_w = max(0, 2 - images.shape[-2]), max(0, 2 - images.shape[-1])
    if pad_h or pad_w:
        images = F.pad(images, (0, pad_w, 0, pad_h))
    return images.contiguous()
