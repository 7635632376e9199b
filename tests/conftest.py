"""Shared fixtures: the real CIFAR-10 archive, when it is there."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CIFAR_ZIP = PROJECT_ROOT.parent / "shared" / "data" / "CIFAR-10-images-master.zip"


@pytest.fixture(scope="session")
def cifar_zip() -> Path:
    """The real CIFAR-10 JPEG archive; skips the test where it is absent."""
    if not CIFAR_ZIP.is_file():
        pytest.skip(f"real CIFAR-10 archive not found at {CIFAR_ZIP} (only on the project's machines)")
    return CIFAR_ZIP
