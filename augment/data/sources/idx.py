"""idx files (the MNIST format): the reader, idx folders, and Fashion-MNIST's
installed copies."""

from __future__ import annotations

import gzip
import math
import os
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np

from augment.data.sources.configs import IdxSource
from augment.data.sources.raw import RawDataset
from augment.errors import DataError

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

#: Where Debian's ``dataset-fashion-mnist`` and common manual installs put the files.
FASHION_MNIST_DIRS = (
    "/usr/share/datasets/fashion-mnist",
    "/usr/share/fashion-mnist",
    "/usr/local/share/datasets/fashion-mnist",
    "/usr/local/share/fashion-mnist",
)


_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801


def _read_bytes(path: Path) -> bytes:
    """A file's bytes, gunzipped when it is gzip-compressed."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: corrupt gzip data ({exc})") from None
    return data


def read_idx(path: str | os.PathLike[str], magic: int | None = None) -> np.ndarray:
    """Parse an idx file (optionally gzipped) into an array of its header's shape.

    ``magic`` (e.g. 0x00000803 for uint8 images) is checked when given. A file whose length
    does not match its header is a DataError naming the expected and actual byte counts.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: {len(data)} bytes, too short for an idx header")
    found = int.from_bytes(data[:4], "big")
    if data[:2] != b"\x00\x00" or data[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an idx file (magic 0x{found:08x})")
    if magic is not None and found != magic:
        raise DataError(f"{path}: idx magic 0x{found:08x}, expected 0x{magic:08x}")
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    if ndim == 0:
        raise DataError(f"{path}: idx header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated idx header ({len(data)} of {header} bytes)")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(dims) * dtype.itemsize  # Python ints: no overflow
    if len(data) != expected:
        raise DataError(
            f"{path}: idx header says {_shape(dims)} (expected {expected} bytes) "
            f"but the data has {len(data)} bytes"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _shape(dims: tuple[int, ...]) -> str:
    return "x".join(map(str, dims))


def read_idx_pair(
    images_path: str | os.PathLike[str], labels_path: str | os.PathLike[str]
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images ``N x H x W x 1`` and int64 labels from an idx images/labels pair."""
    images = read_idx(images_path, IDX_IMAGES_MAGIC)
    labels = read_idx(labels_path, IDX_LABELS_MAGIC)
    if images.shape[0] == 0 or 0 in images.shape[1:]:
        raise DataError(f"{images_path}: no images (idx shape {_shape(images.shape)})")
    if len(images) != len(labels):
        raise DataError(
            f"{images_path}: {len(images)} images but {labels_path} has {len(labels)} labels"
        )
    return images[..., None], labels.astype(np.int64)


def _idx_file(directory: Path, stem: str) -> Path | None:
    """``directory/stem`` or ``directory/stem.gz``, whichever exists."""
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def find_idx_dir(
    candidates: list[str | os.PathLike[str]] | tuple[str | os.PathLike[str], ...],
) -> Path | None:
    """The first candidate directory that holds the train images and labels idx files."""
    for candidate in candidates:
        directory = Path(candidate)
        if all(_idx_file(directory, IDX_FILES[k]) for k in ("train_images", "train_labels")):
            return directory
    return None


def load_idx_source(config: IdxSource) -> RawDataset:
    """Load an idx source: train (and optional test) images with their labels."""
    files = idx_files(config)
    train_images, train_labels = read_idx_pair(files["train_images"], files["train_labels"])
    parts = [(train_images, train_labels, "train", files["train_labels"])]
    if files.get("test_images") is not None:
        test_images, test_labels = read_idx_pair(files["test_images"], files["test_labels"])
        if test_images.shape[1:] != train_images.shape[1:]:
            raise DataError(
                f"{files['test_images']}: image shape {test_images.shape[1:3]} "
                f"differs from the train images' {train_images.shape[1:3]}"
            )
        parts.append((test_images, test_labels, "test", files["test_labels"]))
    numbers = np.concatenate([p[1] for p in parts])
    if config.class_names is not None:
        classes = tuple(config.class_names)
        for _, labels, _, path in parts:
            if len(labels) and labels.max() >= len(classes):
                raise DataError(
                    f"{path}: label {int(labels.max())} has no entry in "
                    f"class_names ({len(classes)} names)"
                )
        labels = np.asarray(classes, dtype=object)[numbers].astype(str)
    else:
        classes = tuple(str(i) for i in np.unique(numbers))
        labels = numbers.astype(str)
    split = np.concatenate([np.full(len(p[1]), p[2]) for p in parts]) if len(parts) > 1 else None
    images = np.concatenate([p[0] for p in parts])
    return RawDataset(config.name, images, labels, classes, split)


def idx_files(config: IdxSource) -> dict[str, Path | None]:
    """The four idx paths of a config (test ones None when absent)."""
    if config.dir is None:
        return {
            key: None if getattr(config, key) is None else Path(getattr(config, key))
            for key in IDX_FILES
        }
    directory = Path(config.dir)
    if not directory.is_dir():
        raise DataError(f"{directory}: idx directory not found")
    files = {key: _idx_file(directory, stem) for key, stem in IDX_FILES.items()}
    for key in ("train_images", "train_labels"):
        if files[key] is None:
            raise DataError(f"{directory}: no {IDX_FILES[key]}[.gz] in this directory")
    if (files["test_images"] is None) != (files["test_labels"] is None):
        missing = "test_images" if files["test_images"] is None else "test_labels"
        raise DataError(f"{directory}: {IDX_FILES[missing]}[.gz] missing (its pair exists)")
    return files


def fashion_mnist_candidates() -> list[Path]:
    """Directories that may hold Fashion-MNIST: dpkg's record of the Debian package first."""
    found: list[Path] = []
    if shutil.which("dpkg"):
        try:
            listing = subprocess.run(
                ["dpkg", "-L", "dataset-fashion-mnist"],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            listing = ""
        for line in listing.splitlines():
            if Path(line).name.startswith(IDX_FILES["train_images"]):
                found.append(Path(line).parent)
    found += [Path(d) for d in FASHION_MNIST_DIRS if Path(d) not in found]
    return found


def load_fashion_mnist(directory: str | os.PathLike[str] | None = None) -> RawDataset:
    """Fashion-MNIST (60000 train + 10000 test, 28x28 gray) from idx files."""
    if directory is None:
        found = find_idx_dir(fashion_mnist_candidates())
        if found is None:
            raise DataError(
                "fashion-mnist: idx files not found in "
                + ", ".join(map(str, fashion_mnist_candidates()))
                + " (apt-get install dataset-fashion-mnist or set dir)"
            )
        directory = found
    config = IdxSource(
        dir=str(directory), class_names=list(FASHION_MNIST_CLASSES), name="fashion-mnist"
    )
    return load_idx_source(config)
