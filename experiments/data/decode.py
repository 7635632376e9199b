"""Decode image bytes into uint8 RGB arrays of one size.

JPEGs go through torchvision's libjpeg-turbo decoder (about four times faster
than PIL on small images, and pixel-identical to it); everything else, and any
JPEG that decoder refuses, goes through PIL. Grayscale, RGBA, palette and CMYK
images come out as RGB.
"""

from __future__ import annotations

import io
import warnings
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

try:
    from torchvision.io import ImageReadMode, decode_jpeg
except ImportError:  # torchvision has deprecated its decoders; PIL serves alone without them
    decode_jpeg = None

DECODER_VERSION = "1"
"""Part of every cache key: bump it when decoding or resizing changes its output."""

_JPEG_MAGIC = b"\xff\xd8\xff"


class UnreadableImage(Exception):
    """Raised for bytes that no decoder can turn into an image."""


def _decode_pil(data: bytes) -> torch.Tensor:
    with warnings.catch_warnings():
        # PIL warns about palette transparency and EXIF oddities that do not matter here.
        warnings.simplefilter("ignore")
        with Image.open(io.BytesIO(data)) as image:
            if image.mode in ("P", "PA", "LA") or "transparency" in image.info:
                image = image.convert("RGBA")
            array = np.asarray(image.convert("RGB"))
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def _decode_jpegs(datas: Sequence[bytes]) -> list[torch.Tensor]:
    """libjpeg-turbo through torchvision, one call per chunk; raises RuntimeError if any is bad."""
    with warnings.catch_warnings():
        # torchvision 0.29 deprecates its decoders with a warning on every call; they are still the fastest.
        warnings.filterwarnings("ignore", message="The image decoding and encoding", category=DeprecationWarning)
        tensors = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in datas]
        return decode_jpeg(tensors, mode=ImageReadMode.RGB)


def decode_image(data: bytes) -> torch.Tensor:
    """Decode one image's bytes to RGB.

    Args:
        data: The file's bytes (JPEG, PNG, BMP, GIF, WebP, TIFF, ...).

    Returns:
        A uint8 tensor (3, H, W).

    Raises:
        UnreadableImage: The bytes are truncated, corrupt or not an image.
    """
    if decode_jpeg is not None and data[:3] == _JPEG_MAGIC:
        try:
            return _decode_jpegs([data])[0]
        except RuntimeError:
            pass  # PIL reads some JPEGs (odd markers, arithmetic coding) that libjpeg-turbo refuses
    try:
        return _decode_pil(data)
    except Exception as exc:  # noqa: BLE001 - image decoders raise many types on corrupt data
        raise UnreadableImage(str(exc) or type(exc).__name__) from None


def decode_images(datas: Sequence[bytes]) -> list[torch.Tensor | None]:
    """Decode many images' bytes to RGB, JPEGs in one call.

    Args:
        datas: The files' bytes.

    Returns:
        uint8 (3, H, W) tensors, None where the bytes are unreadable.
    """
    if decode_jpeg is not None and all(data[:3] == _JPEG_MAGIC for data in datas):
        try:
            return list(_decode_jpegs(datas))
        except RuntimeError:
            pass  # one bad image fails the chunk: decode it image by image
    decoded: list[torch.Tensor | None] = []
    for data in datas:
        try:
            decoded.append(decode_image(data))
        except UnreadableImage:
            decoded.append(None)
    return decoded


def fit_to_size(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize an image to cover ``size`` and crop its centre to exactly that size.

    Args:
        image: uint8 (C, H, W) or (N, C, H, W).
        size: Target (height, width).

    Returns:
        uint8 tensor of the target size (the input itself when it already fits).
    """
    height, width = image.shape[-2:]
    if (height, width) == tuple(size):
        return image
    scale = max(size[0] / height, size[1] / width)
    covering = [max(size[0], round(height * scale)), max(size[1], round(width * scale))]
    image = TF.resize(image, covering, antialias=True)
    return TF.center_crop(image, list(size))


def image_size_of(data: bytes) -> tuple[int, int]:
    """Read an image's (height, width) from its header without decoding it.

    Args:
        data: The file's bytes.

    Returns:
        (height, width).

    Raises:
        UnreadableImage: The header cannot be read.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.height, image.width
    except Exception as exc:  # noqa: BLE001 - see decode_image
        raise UnreadableImage(str(exc) or type(exc).__name__) from None
