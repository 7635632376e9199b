"""Seeding: one call makes a run's randomness repeatable."""

from __future__ import annotations

import os
import random


def set_seed(seed: int) -> None:
    """Seed Python, NumPy, torch (CPU and every CUDA device).

    Shuffling and augmentation are seeded separately from ``(seed, epoch)`` by
    the data module, so a resumed run sees the same batches as an uninterrupted
    one; this call fixes everything else (weight initialisation, dropout).

    Args:
        seed: The run's seed.
    """
    import numpy as np
    import torch

    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
