"""Atomic file writes: a temporary file in the same folder, then `os.replace`.

A process killed in the middle of a write, or a disk that fills up, leaves the
previous file whole (`os.replace` is atomic on POSIX and Windows within one
file system). Lightning's own checkpoint writer goes through a temporary file
in the system's temp folder and *moves* it, which is a copy, not atomic, when
the checkpoint folder is on another file system; `AtomicCheckpointIO` puts the
temporary file beside its target instead.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from safetensors.torch import save_file


def write_atomically(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary_path)``, then move the result onto ``path`` in one step.

    Args:
        path: The file to (re)write.
        write: Writes the complete file at the path it is given.

    Returns:
        The path written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        with open(temporary, "rb") as file:  # on disk before the rename, so a power cut cannot leave it empty
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return target


def save_safetensors(state: dict, path: str | Path) -> Path:
    """Write a safetensors file atomically.

    Args:
        state: Name to tensor (contiguous, on the CPU).
        path: The file.

    Returns:
        The path written.
    """
    return write_atomically(path, lambda tmp: save_file(state, str(tmp)))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, writing each checkpoint beside its target and renaming it into place."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None) -> None:
        """Write a checkpoint atomically (``torch.save`` to a temporary file in the same folder)."""
        write_atomically(path, lambda tmp: torch.save(checkpoint, tmp))
