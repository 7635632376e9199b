"""Bad data input: each case fails in one line or is handled without stopping.

Each case either fails with a one-line DataError naming the problem and the fix, or is handled
(skipped, converted) without stopping.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments.cli import main
from experiments.data.errors import DataError
from experiments.data.load import load_images
from experiments.data.split import describe_source

from image_factory import CLASSES, image_bytes, isolated_cache, red_of, write_image_folder, zip_folder

pytestmark = pytest.mark.usefixtures("isolated_cache")
_ = isolated_cache

LAYOUT = "train/<class>/<images>"


def one_line_error(source: str, **kwargs) -> str:
    with pytest.raises(DataError) as error:
        describe_source(source, **kwargs)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_missing_path_names_it_and_the_layout(tmp_path: Path) -> None:
    message = one_line_error(str(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere") in message
    assert LAYOUT in message


def test_missing_path_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", str(tmp_path / "nowhere.zip")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zoo: error: data path")
    assert err.count("\n") == 1


def test_zip_that_is_not_an_image_data_set(tmp_path: Path) -> None:
    archive = tmp_path / "code.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("project/src/main.py", "print('hi')\n")
        zf.writestr("project/README.txt", "hello")
    message = one_line_error(str(archive))
    assert "no images found" in message
    assert str(archive) in message
    assert LAYOUT in message


def test_file_that_is_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    message = one_line_error(str(tmp_path / "notes.txt"))
    assert "not a readable zip" in message
    assert LAYOUT in message


def test_empty_class_folder(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "data", "split")
    (root / "train" / "zebra").mkdir()
    (root / "test" / "zebra").mkdir()
    message = one_line_error(str(root))
    assert "train/zebra" in message
    assert "hold no images" in message


def test_empty_class_folder_in_a_zip(tmp_path: Path) -> None:
    archive = zip_folder(write_image_folder(tmp_path / "data", "classes"), tmp_path / "d.zip")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("zebra/", "")
    assert "zebra" in one_line_error(str(archive))


def test_different_classes_in_train_and_test(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "data", "split")
    (root / "test" / "frog").rename(root / "test" / "toad")
    message = one_line_error(str(root))
    assert "different classes" in message
    assert "frog" in message
    assert "toad" in message


def test_non_image_files_are_skipped(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "data", "split", n_train=5, n_test=2)
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "train" / "cat" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "train" / "cat" / "README.txt").write_text("cats")
    (root / "train" / "dog" / "._0000.jpg").write_bytes(b"AppleDouble")  # macOS resource fork
    (root / "README.txt").write_text("my data")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # skipping non-images is silent
        summary = describe_source(str(root))
    assert summary["num_train"] + summary["num_val"] == 15
    assert summary["num_test"] == 6
    assert summary["skipped"] == 0


@pytest.mark.parametrize("as_zip", [False, True])
def test_corrupt_and_truncated_images_are_skipped_in_one_warning(tmp_path: Path, as_zip: bool) -> None:
    root = write_image_folder(tmp_path / "data", "split", n_train=5, n_test=2)
    good = (root / "train" / "cat" / "0000.jpg").read_bytes()
    (root / "train" / "cat" / "0001.jpg").write_bytes(good[: len(good) // 2])  # truncated JPEG
    png = image_bytes(1, 0, fmt="PNG")
    (root / "train" / "dog" / "0001.png").write_bytes(png[: len(png) // 2])  # truncated PNG
    (root / "test" / "frog" / "0000.jpg").write_bytes(b"this is not a jpeg at all")
    source = str(zip_folder(root, tmp_path / "d.zip")) if as_zip else str(root)
    with pytest.warns(UserWarning, match="skipped 3 unreadable") as record:
        images = load_images(source)
    assert len([w for w in record if "unreadable" in str(w.message)]) == 1
    assert len(images.labels) == 3 * 7 + 1 - 3
    assert len(images.skipped) == 3
    assert "train/cat/0001.jpg" in images.skipped


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [
        ("L", "JPEG"),
        ("L", "PNG"),
        ("RGBA", "PNG"),
        ("P", "PNG"),
        ("P", "GIF"),
        ("CMYK", "JPEG"),
        ("RGB", "BMP"),
        ("RGB", "PNG"),
    ],
)
def test_image_modes_become_rgb(tmp_path: Path, mode: str, fmt: str) -> None:
    root = write_image_folder(tmp_path / "data", "classes", n_train=3)
    ext = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "BMP": "bmp"}[fmt]
    (root / "dog" / f"odd.{ext}").write_bytes(image_bytes(1, 5, fmt=fmt, mode=mode))
    images = load_images(str(root))
    assert images.images.shape == (10, 3, 16, 16)
    assert images.images.dtype == np.uint8
    odd = images.images[6]  # sorted keys: cat/0000..0002, dog/0000..0002, dog/odd.*
    if mode in ("L",):
        assert np.array_equal(odd[0], odd[1])  # gray: equal channels
    else:
        assert abs(float(odd[0].mean()) - red_of(CLASSES.index("dog"))) < 12


def test_rgba_png_with_transparency_becomes_rgb(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "data", "classes", n_train=2)
    rgba = Image.new("RGBA", (16, 16), (200, 10, 10, 0))
    buffer = io.BytesIO()
    rgba.save(buffer, "PNG")
    (root / "cat" / "clear.png").write_bytes(buffer.getvalue())
    images = load_images(str(root))
    assert images.images.shape[1] == 3


@pytest.mark.parametrize(
    ("option", "value"),
    [("val_fraction", 1.0), ("val_fraction", -0.1), ("test_fraction", 2), ("limit_per_class", 0), ("decode_size", -3)],
)
def test_bad_options(option: str, value: object) -> None:
    assert option.replace("_", "") in one_line_error("digits", **{option: value}).replace("_", "")
