"""What code trained a run: the git commit (and whether it had uncommitted changes) and library versions."""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import subprocess
import sys
from pathlib import Path

from experiments.tracking.names import GIT_COMMIT_TAG, GIT_DIRTY_TAG, VERSION_TAG_PREFIX

VERSIONED = ("torch", "lightning", "timm", "mlflow", "torchvision", "bottleneck-zoo")
"""Distributions whose versions every run records."""


def source_facts() -> dict[str, str]:
    """Git commit and dirty flag of the code that runs, and library versions.

    Returns:
        Tags: the commit and the dirty flag in MLflow's own tags, ``mlflow.zoo.version.<lib>``.
    """
    facts: dict[str, str] = {}
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if commit.returncode == 0:
            facts[GIT_COMMIT_TAG] = commit.stdout.strip()
            status = subprocess.run(
                ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=5
            )
            facts[GIT_DIRTY_TAG] = str(bool(status.stdout.strip())).lower()
    except (OSError, subprocess.SubprocessError):
        pass  # not a git checkout (an installed wheel): nothing to record
    for lib in VERSIONED:
        with contextlib.suppress(md.PackageNotFoundError):
            facts[f"{VERSION_TAG_PREFIX}{lib}"] = md.version(lib)
    facts[f"{VERSION_TAG_PREFIX}python"] = sys.version.split()[0]
    return facts
