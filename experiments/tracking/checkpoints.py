"""Read a training state only if it holds data: a pickled payload is refused, never run.

A Lightning checkpoint is a pickle. ``torch.load(weights_only=True)`` unpickles
tensors, containers and a short list of allowed classes, and refuses any other
global (a payload's ``os.system``, say) without calling it. Resume, ``zoo predict
--checkpoint`` and the tests all read checkpoints through `load_checkpoint`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.data import AttributeDict

from registry.errors import WeightsError


@contextlib.contextmanager
def allowed_checkpoint_globals() -> Iterator[None]:
    """Allow the one non-tensor class a Lightning checkpoint holds (its hyperparameter dict).

    Yields:
        Nothing.
    """
    with torch.serialization.safe_globals([AttributeDict]):
        yield


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a training state with ``weights_only=True``.

    Args:
        path: The ``.ckpt`` file.

    Returns:
        The checkpoint dict (``state_dict``, ``hyper_parameters``, loop and optimizer states).

    Raises:
        WeightsError: The file holds code or classes outside the allowed list, or is not a checkpoint.
    """
    try:
        with allowed_checkpoint_globals():
            loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for a payload; others for a damaged file
        raise WeightsError(
            f"refusing checkpoint '{path}': {_reason(exc)}; use a checkpoint written by zoo train"
        ) from None
    if not isinstance(loaded, dict) or not isinstance(loaded.get("state_dict"), dict):
        raise WeightsError(f"'{path}' is not a Lightning checkpoint; use a checkpoint written by zoo train")
    return loaded


def _reason(exc: Exception) -> str:
    """Torch's refusal in a few words (its message is a page long)."""
    found = re.search(r"(?:unsupported|Unsupported global:) GLOBAL ([\w.]+)", str(exc))
    if found:
        return f"it would call {found.group(1)} when read (a pickled payload), so it was not read"
    return f"it is not a readable checkpoint ({type(exc).__name__})"
