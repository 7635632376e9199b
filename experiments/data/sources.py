"""Image-file sources: a folder or a zip in one of two layouts, listed without decoding.

Layouts (after unwrapping single top-level folders such as ``CIFAR-10-images-master/``):

- split: ``train/<class>/<image>`` and ``test/<class>/<image>``;
- classes: ``<class>/<image>`` (a test part is drawn from it later).

Non-image files (``README.txt``, ``.DS_Store``, ``__MACOSX/``) are skipped. Every
image is keyed by its path relative to the layout's root, so a zip and the same
folder extracted list the same keys in the same (sorted) order.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.data.errors import DataError, UnreadableImage

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
)
"""File name endings taken as images (case-insensitive); other files are skipped."""

LAYOUT_HELP = "expected train/<class>/<images> and test/<class>/<images>, or <class>/<images>"

_MAX_UNWRAP = 4

MAX_IMAGE_BYTES = 64 * 2**20
"""Largest image file read (bytes); a larger one is skipped with a warning, never read whole."""


@dataclass(frozen=True)
class ImageFile:
    """One image file of a source.

    Attributes:
        key: Path relative to the layout's root, ``/``-separated (``train/cat/0001.jpg``).
        label: Index of its class in the sorted class names.
        is_test: Whether it belongs to the test part.
        location: The zip member name, or the file's absolute path.
    """

    key: str
    label: int
    is_test: bool
    location: str


@dataclass
class FileSource:
    """The image files of a folder or zip, with their classes.

    Attributes:
        path: The folder or zip file.
        kind: ``"zip"`` or ``"folder"``.
        layout: ``"split"`` (train/ and test/) or ``"classes"`` (one folder of class folders).
        classes: Sorted class names.
        files: Images sorted by key.
        signature: Lines that identify the content cheaply (path, size, CRC or mtime).
    """

    path: Path
    kind: str
    layout: str
    classes: list[str]
    files: list[ImageFile]
    signature: list[str] = field(repr=False)

    @property
    def description(self) -> str:
        """Where the images come from, in words."""
        layout = "train/ + test/" if self.layout == "split" else "class folders"
        return f"{self.kind} {self.path} ({layout})"

    # The listing's open zip, reused: reading a 60,000-member directory again costs most of a second.
    archive: zipfile.ZipFile | None = field(default=None, repr=False, compare=False)
    _pid: int = field(default_factory=os.getpid, init=False, repr=False, compare=False)  # the process that opened it

    def read(self, location: str) -> bytes:
        """Return the bytes of one image (a zip is opened once per process, lazily).

        Args:
            location: A zip member name or a file path.

        Returns:
            The file's bytes.

        Raises:
            UnreadableImage: If the file is larger than `MAX_IMAGE_BYTES`.
        """
        if self.kind == "folder":
            with open(location, "rb") as handle:
                data = handle.read(MAX_IMAGE_BYTES + 1)
        else:
            if self.archive is None or self._pid != os.getpid():
                # A zip handle must not be shared across forked DataLoader workers.
                self.archive, self._pid = zipfile.ZipFile(self.path), os.getpid()
            with self.archive.open(location) as member:  # at most the bound: a member's stated size may lie
                data = member.read(MAX_IMAGE_BYTES + 1)
        if len(data) > MAX_IMAGE_BYTES:
            raise UnreadableImage(f"larger than {MAX_IMAGE_BYTES // 2**20} MiB")
        return data

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "archive": None}  # an open zip does not travel to worker processes


def _is_image(name: str) -> bool:
    """Whether a file's name ends as an image's does; hidden files (.DS_Store, ._x) are not data."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _unsafe_member(name: str) -> bool:
    """An absolute name, a drive letter, a backslash or a ``..`` part: nothing a data set needs."""
    return name.startswith("/") or "\\" in name or ":" in name.split("/", 1)[0] or ".." in name.split("/")


def _warn_listing(unsafe: list[str], large: list[str], where: str) -> None:
    for names, why in ((unsafe, "absolute or '..' names"), (large, f"over {MAX_IMAGE_BYTES // 2**20} MiB")):
        if names:
            shown = ", ".join(repr(n) for n in names[:3]) + (", ..." if len(names) > 3 else "")
            warnings.warn(f"skipped {len(names)} file(s) with {why} in {where}: {shown}", stacklevel=3)


def _list_zip(archive: zipfile.ZipFile) -> tuple[dict[str, tuple[str, str]], set[str]]:
    """Map relative key -> (member, signature) for image members, and the directory names."""
    infos = archive.infolist()
    files: dict[str, tuple[str, str]] = {}
    dirs: set[str] = set()
    unsafe: list[str] = []
    large: list[str] = []
    for info in infos:
        if _unsafe_member(info.filename):
            unsafe.append(info.filename)
            continue
        name = info.filename.rstrip("/")
        parts = tuple(p for p in name.split("/") if p)
        if any(p.startswith(".") or p == "__MACOSX" for p in parts):
            continue  # macOS metadata (__MACOSX/, ._*, .DS_Store) is neither a class nor a wrapper
        if info.is_dir():
            dirs.add(name)
            continue
        folder = name.rpartition("/")[0]
        if folder not in dirs:
            dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
        if not _is_image(parts[-1]):
            continue
        if info.file_size > MAX_IMAGE_BYTES:
            large.append(info.filename)
            continue
        files[name] = (info.filename, f"{info.file_size} {info.CRC:08x}")
    _warn_listing(unsafe, large, str(archive.filename))
    return files, dirs


def _list_folder(path: Path) -> tuple[dict[str, tuple[str, str]], set[str]]:
    """Map relative key -> (absolute path, signature) for image files, and the directory names."""
    files: dict[str, tuple[str, str]] = {}
    dirs: set[str] = set()
    large: list[str] = []
    for folder, subdirs, names in os.walk(path):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and d != "__MACOSX")
        rel = Path(folder).relative_to(path).as_posix()
        prefix = "" if rel == "." else rel + "/"
        dirs.update(prefix + d for d in subdirs)
        for name in names:
            if not _is_image(name):
                continue
            key = prefix + name
            full = os.path.join(folder, name)
            stat = os.stat(full)
            if stat.st_size > MAX_IMAGE_BYTES:
                large.append(key)
                continue
            files[key] = (full, f"{stat.st_size} {stat.st_mtime_ns}")
    _warn_listing([], large, str(path))
    return files, dirs


def _children(dirs: set[str], prefix: str) -> list[str]:
    """Names of the folders directly under ``prefix`` ('' for the top)."""
    depth = prefix.count("/")
    return sorted(d[len(prefix) :] for d in dirs if d.startswith(prefix) and d.count("/") == depth)


def _find_root(files: dict[str, tuple[str, str]], dirs: set[str]) -> str:
    """Descend through single wrapping folders (``CIFAR-10-images-master/``) to the layout's root."""
    prefix = ""
    for _ in range(_MAX_UNWRAP):
        children = _children(dirs, prefix)
        loose = [k for k in files if k.startswith(prefix) and "/" not in k[len(prefix) :]]
        if "train" in children or len(children) != 1 or loose:
            break
        prefix = f"{prefix}{children[0]}/"
    return prefix


def _classes_under(files: dict[str, tuple[str, str]], dirs: set[str], prefix: str, where: Path) -> dict[str, list[str]]:
    """Class name -> keys of its images under ``prefix``; an empty class folder is an error."""
    classes: dict[str, list[str]] = {c: [] for c in _children(dirs, prefix)}
    for key in files:
        if key.startswith(prefix) and "/" in key[len(prefix) :]:
            classes[key[len(prefix) :].split("/", 1)[0]].append(key)
    empty = sorted(c for c, keys in classes.items() if not keys)
    if empty:
        raise DataError(
            f"class folder(s) {', '.join(prefix + c for c in empty)} in {where} hold no images; "
            "add images or remove the empty folders"
        )
    return classes


def _check_same_classes(train: dict[str, list[str]], test: dict[str, list[str]], where: Path) -> None:
    only_train, only_test = sorted(set(train) - set(test)), sorted(set(test) - set(train))
    if only_train or only_test:
        raise DataError(
            f"train and test in {where} hold different classes (only in train: {only_train or 'none'}; "
            f"only in test: {only_test or 'none'}); give both parts the same class folders"
        )


def list_image_files(path: str | os.PathLike[str]) -> FileSource:
    """List the images of a folder or zip in either layout.

    Args:
        path: A folder or ``.zip`` file.

    Returns:
        The source, with sorted classes and files.

    Raises:
        DataError: The path is missing, holds no images in a known layout,
            has empty class folders, or train and test with different classes.
    """
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise DataError(f"data path {path} does not exist; {LAYOUT_HELP} (a folder or a .zip of one)")
    kind, archive = "folder" if path.is_dir() else "zip", None
    if kind == "zip":
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise DataError(f"{path} is not a readable zip file ({exc}); {LAYOUT_HELP}") from None
    files, dirs = _list_folder(path) if archive is None else _list_zip(archive)
    root = _find_root(files, dirs)
    files = {k[len(root) :]: v for k, v in files.items() if k.startswith(root)}
    dirs = {d[len(root) :] for d in dirs if d.startswith(root) and d != root.rstrip("/")}
    if not files:
        raise DataError(f"no images found in {path}; {LAYOUT_HELP}")
    top = _children(dirs, "")
    parts = {False: _classes_under(files, dirs, "train/" if "train" in top else "", path)}
    if "train" in top and "test" in top:
        parts[True] = _classes_under(files, dirs, "test/", path)
        _check_same_classes(parts[False], parts[True], path)
    if not parts[False]:
        raise DataError(f"no images found in {path}; {LAYOUT_HELP}")
    layout = "split" if True in parts else "classes"  # train/ alone: a test part is drawn, as from class folders
    classes = sorted(parts[False])
    label = {c: i for i, c in enumerate(classes)}
    images = [
        ImageFile(key, label[c], is_test, files[key][0])
        for is_test, by_class in parts.items()
        for c, keys in by_class.items()
        for key in keys
    ]
    images.sort(key=lambda f: f.key)
    signature = [f"{kind} {layout}"] + [f"{f.key} {files[f.key][1]}" for f in images]
    return FileSource(path, kind, layout, classes, images, signature, archive)
