"""Decode image bytes into uint8 RGB arrays of one size.

JPEGs go through torchvision's libjpeg-turbo decoder (about four times faster
than PIL on small images, and pixel-identical to it); everything else, and any
JPEG that decoder refuses, goes through PIL. Grayscale, RGBA, palette and CMYK
images come out as RGB.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from experiments.data.errors import UnreadableImage

try:
    from torchvision.io import ImageReadMode, decode_jpeg
except ImportError:  # torchvision has deprecated its decoders; PIL serves alone without them
    decode_jpeg = None

DECODER_VERSION = "1"
"""Part of every cache key: bump it when decoding or resizing changes its output."""

_JPEG_MAGIC = b"\xff\xd8\xff"


MAX_PIXELS: int = Image.MAX_IMAGE_PIXELS or 89_478_485  # PIL's own default, should a program have set None
"""Largest image decoded (pixels): PIL's decompression-bomb limit. A 20000 x 20000 image is
a few kilobytes of JPEG and 1.2 GB decoded; such an image is skipped, not decoded."""

_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame: the size is here


def jpeg_pixels(data: bytes) -> int | None:
    """Width x height of a JPEG read from its start-of-frame marker, without decoding.

    Args:
        data: The file's bytes.

    Returns:
        The pixel count, or ``None`` if no frame header is found (PIL then decides).
    """
    position = 2
    while position + 9 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker in _SOF_MARKERS:
            height = int.from_bytes(data[position + 5 : position + 7], "big")
            width = int.from_bytes(data[position + 7 : position + 9], "big")
            return height * width
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    return None


def _check_pixels(pixels: int | None) -> None:
    if pixels is not None and pixels > MAX_PIXELS:
        raise UnreadableImage(f"{pixels:,} pixels, over the limit of {MAX_PIXELS:,} (a decompression bomb?)")


def _decode_pil(data: bytes) -> torch.Tensor:
    with warnings.catch_warnings():
        # PIL warns about palette transparency and EXIF oddities that do not matter here.
        warnings.simplefilter("ignore")
        with Image.open(io.BytesIO(data)) as image:
            _check_pixels(image.width * image.height)
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
        images: list[torch.Tensor] = decode_jpeg(tensors, mode=ImageReadMode.RGB)
        return images


def decode_image(data: bytes) -> torch.Tensor:
    """Decode one image's bytes to RGB.

    Args:
        data: The file's bytes (JPEG, PNG, BMP, GIF, WebP, TIFF, ...).

    Returns:
        A uint8 tensor (3, H, W).

    Raises:
        UnreadableImage: The bytes are truncated, corrupt or not an image.
    """
    if data[:3] == _JPEG_MAGIC:
        _check_pixels(jpeg_pixels(data))
        if decode_jpeg is not None:
            with contextlib.suppress(RuntimeError):  # PIL reads some JPEGs (odd markers) that libjpeg-turbo refuses
                return _decode_jpegs([data])[0]
    try:
        return _decode_pil(data)
    except UnreadableImage:
        raise
    except Exception as exc:
        raise UnreadableImage(str(exc) or type(exc).__name__) from None


def decode_images(datas: Sequence[bytes]) -> list[torch.Tensor | None]:
    """Decode many images' bytes to RGB, JPEGs in one call.

    Args:
        datas: The files' bytes.

    Returns:
        uint8 (3, H, W) tensors, None where the bytes are unreadable.
    """
    if decode_jpeg is not None and all(
        data[:3] == _JPEG_MAGIC and (jpeg_pixels(data) or 0) <= MAX_PIXELS for data in datas
    ):
        with contextlib.suppress(RuntimeError):  # one bad image fails the chunk: decode it image by image
            return list(_decode_jpegs(datas))
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
    cropped: torch.Tensor = TF.center_crop(image, list(size))
    return cropped


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
    except Exception as exc:
        raise UnreadableImage(str(exc) or type(exc).__name__) from None
