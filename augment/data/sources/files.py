"""Image files: a folder of class folders, or a CSV of paths and labels."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from augment.data.images import load_images
from augment.data.manifest import (
    Manifest,
    natural_sorted,
    outside_root,
    outside_root_message,
    read_csv_frame,
)
from augment.data.sources.configs import CsvSource, FolderSource
from augment.data.sources.raw import IMAGE_SUFFIXES, PREDEFINED_SPLITS, RawDataset
from augment.errors import DataError


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
