"""The distribution: exactly three top-level packages, and the `zoo` command."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_holds_exactly_the_three_packages(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("registry", "zoo", "experiments", "tests"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "dist"), str(source)],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    assert wheel.name.startswith("bottleneck_zoo-")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top_level == {"registry", "zoo", "experiments"}
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "zoo = experiments.cli:main" in entry_points
    assert "[zoo.models]" in entry_points
    # Every sub-package is found, not listed: each one, and the shipped experiment files, is in the wheel.
    packages = {str(p.parent.relative_to(ROOT)) for p in ROOT.glob("experiments/**/__init__.py")}
    assert packages, sorted(packages)
    assert all(f"{p}/__init__.py" in names for p in packages), sorted(packages)
    shipped = sorted(p.name for p in (ROOT / "experiments" / "config" / "shipped").glob("*.yaml"))
    assert shipped
    assert all(f"experiments/config/shipped/{n}" in names for n in shipped)
    # The zoo's package data: the model index and the benchmarks' throughput, which the cards read.
    assert {"zoo/model_index.json", "zoo/throughput.json"} <= set(names)
    # PEP 561 markers: a user's type checker reads the packages' hints.
    assert {"registry/py.typed", "zoo/py.typed", "experiments/py.typed"} <= set(names)
    # Package data: the zoo's model index (the registry reads it) and timm's published top-1 of its tags
    # (the zoo's cards read it), and none left in the registry, which knows nothing about models.
    assert {"zoo/model_index.json", "zoo/timm_imagenet_top1.json"} <= set(names)
    assert [n for n in names if n.startswith("registry/") and n.endswith(".json")] == []
