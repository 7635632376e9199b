"""Inputs that would exhaust memory are refused or skipped: YAML alias bombs, huge grids, image bombs, zip members.

Each case once cost a MemoryError, a silent hang, a traceback or gigabytes of
memory. Image "bombs" here are tiny files whose headers claim 20000 x 20000
pixels: what a decoder would allocate is 1.2 GB, what the file holds is a few
hundred bytes.
"""

from __future__ import annotations

import io
import struct
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image

from experiments.cli import main
from experiments.config.schema import load_config
from experiments.data.split import describe_source

from cli_errors import one_error_line
from image_factory import image_bytes, isolated_cache, write_image_folder

_ = isolated_cache  # a fixture, used by name below

BOMB = "\n".join(
    [
        "model: resnet_tiny_scratch",
        "data: digits",
        "{key}:",
        '  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
    ]
    + [f"  {b}: &{b} [" + ", ".join([f"*{a}"] * 9) + "]" for a, b in zip("abcdefgh", "bcdefghi", strict=True)]
)


def jpeg_claiming(height: int, width: int) -> bytes:
    """A small valid JPEG whose frame header claims another size."""
    data = bytearray(image_bytes(0, 0, (16, 16), "JPEG"))
    position = 2
    while data[position + 1] not in (0xC0, 0xC1, 0xC2):
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    data[position + 5 : position + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def png_claiming(height: int, width: int) -> bytes:
    """A small PNG whose header (with a valid CRC) claims another size."""
    data = bytearray(image_bytes(0, 0, (16, 16), "PNG"))
    ihdr = bytearray(data[12:29])  # b"IHDR" + 13 bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


@pytest.mark.parametrize("key", ["tags", "mean"])
def test_a_yaml_alias_bomb_in_a_config_file_is_refused_at_once(
    key: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB.format(key=key))  # 9**9 = 387 million strings once expanded
    started = time.monotonic()
    assert main(["train", "--config", str(path)]) == 2
    assert time.monotonic() - started < 5
    assert "expands to more than 100,000 values through its aliases" in one_error_line(capsys.readouterr().err)


def test_a_yaml_alias_bomb_in_an_experiment_file_or_a_flag_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(
        BOMB.format(key="defaults").replace("model: resnet_tiny_scratch\ndata: digits\n", "")
        + "\nruns: [{model: resnet_tiny_scratch}]\n"
    )
    assert main(["run", str(path), "--dry-run"]) == 2
    assert "through its aliases" in one_error_line(capsys.readouterr().err)
    levels = ["&a [" + ", ".join(["1"] * 9) + "]"]
    levels += [f"&{b} [" + ", ".join([f"*{a}"] * 9) + "]" for a, b in zip("abcdefgh", "bcdefghi", strict=True)]
    flag = "x=[" + ", ".join(levels) + "]"  # the same bomb in one KEY=VALUE flag, read as YAML
    started = time.monotonic()
    assert main(["train", "resnet_tiny_scratch", "--data", "digits", "--tags", flag]) == 2
    assert time.monotonic() - started < 5
    assert "the value of x expands to more than 100,000 values" in one_error_line(capsys.readouterr().err)


def test_anchors_that_stay_small_still_work(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("model: resnet_tiny_scratch\ndata: digits\nmean: &m [0.5, 0.5, 0.5]\nstd: *m\n")
    config = load_config(path)
    assert config.mean == config.std == [0.5, 0.5, 0.5]


def test_a_grid_too_large_is_refused_with_its_count_before_it_is_expanded(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    fields = [
        "lr",
        "weight_decay",
        "momentum",
        "label_smoothing",
        "min_delta",
        "warmup_epochs",
        "batch_size",
        "epochs",
        "patience",
        "limit_per_class",
    ]
    values = {
        "batch_size": range(1, 11),
        "epochs": range(1, 11),
        "patience": range(1, 11),
        "limit_per_class": range(1, 11),
    }
    grid = "\n".join(f"  {f}: {list(values.get(f, [round(0.01 * i, 2) for i in range(10)]))}" for f in fields)
    path = tmp_path / "huge.yaml"
    path.write_text(f"defaults: {{model: resnet_tiny_scratch, data: digits}}\ngrid:\n{grid}\n")
    started = time.monotonic()
    assert main(["run", str(path), "--dry-run"]) == 2
    assert time.monotonic() - started < 5
    line = one_error_line(capsys.readouterr().err)
    assert "expands to 10,000,000,000 runs; at most 1,000 are allowed" in line


def test_image_bombs_in_a_data_set_are_skipped_with_one_warning(tmp_path: Path, isolated_cache: Path) -> None:
    root = write_image_folder(tmp_path / "data", layout="classes", n_train=6)
    (root / "cat" / "bomb.jpg").write_bytes(jpeg_claiming(20000, 20000))
    (root / "dog" / "bomb.png").write_bytes(png_claiming(20000, 20000))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = describe_source(str(root))
    skipped = [str(w.message) for w in caught if "skipped" in str(w.message)]
    assert len(skipped) == 1, skipped
    assert "skipped 2 unreadable image(s)" in skipped[0], skipped
    assert summary["num_train"] + summary["num_val"] + summary["num_test"] == 18  # the 18 real images


def test_zip_members_too_large_or_with_unsafe_names_are_skipped_with_a_warning(
    tmp_path: Path, isolated_cache: Path
) -> None:
    path = tmp_path / "data.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for label, name in enumerate(("cat", "dog")):
            for index in range(6):
                archive.writestr(f"{name}/{index}.jpg", image_bytes(label, index))
        archive.writestr("cat/huge.jpg", b"\xff\xd8\xff" + b"\x00" * (65 * 2**20))  # 65 MiB, deflated to kilobytes
        archive.writestr(zipfile.ZipInfo("/etc/evil.jpg"), image_bytes(0, 1))
        archive.writestr(zipfile.ZipInfo("cat/../../evil.jpg"), image_bytes(0, 2))
    assert path.stat().st_size < 2**20
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = describe_source(str(path))
    messages = [str(w.message) for w in caught]
    assert any("skipped 2 file(s) with absolute or '..' names" in m for m in messages), messages
    assert any("skipped 1 file(s) with over 64 MiB" in m and "huge.jpg" in m for m in messages), messages
    assert summary["classes"] == ["cat", "dog"]
    assert summary["num_train"] + summary["num_val"] + summary["num_test"] == 12


@pytest.mark.parametrize("kind", ["jpeg", "png"])
def test_predict_refuses_an_image_bomb_in_one_line(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from experiments.serving.model import read_image
    from registry.errors import ZooError  # the CLI prints this as one line, exit code 2

    path = tmp_path / f"bomb.{kind}"
    path.write_bytes(jpeg_claiming(20000, 20000) if kind == "jpeg" else png_claiming(20000, 20000))
    with pytest.raises(ZooError) as refused:
        read_image(str(path))
    message = str(refused.value)
    assert "\n" not in message
    assert "20000x20000 pixels, over the limit" in message or "DecompressionBombError" in message
    small = tmp_path / "small.png"
    Image.open(io.BytesIO(image_bytes(1, 1, (16, 16), "PNG"))).save(small)
    assert read_image(str(small)).shape == (3, 16, 16)


@pytest.mark.parametrize("size", ["100000", "4294967296"])
def test_a_decode_size_beyond_the_image_bound_is_one_line(size: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "digits", "--decode-size", size])
    assert exit_info.value.code == 2
    assert "give at most 8192 pixels" in one_error_line(capsys.readouterr().err)


def test_a_decode_size_whose_cache_would_not_fit_is_refused_before_any_allocation(
    isolated_cache: Path, capsys: pytest.CaptureFixture
) -> None:
    started = time.monotonic()
    assert main(["data", "digits", "--decode-size", "8192"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "1,797 images" in line
    assert "lower decode_size" in line
    assert time.monotonic() - started < 10  # refused from the count, not after trying
    assert not list(isolated_cache.rglob("images.npy"))  # nothing written


def test_the_library_bounds_decode_size_too() -> None:
    from experiments.data.errors import DataError
    from experiments.data.load import load_images

    for size in (0, 100_000, True, 2.5):
        with pytest.raises(DataError, match="from 1 to 8192"):
            load_images("digits", decode_size=size)  # type: ignore[arg-type]
