"""The dataset manifest: one CSV row per image, next to the images.

A :class:`Manifest` wraps a pandas DataFrame whose columns are all strings:

``path``          image path, relative to the manifest's ``root`` (or absolute)
``label``         class name
``split``         ``train``, ``val`` or ``test``
``domain``        the image domain (the source dataset's name for real images)
``source``        ``real`` or ``synthetic``
``variant``       the GAN variant that generated a synthetic image ("" for real ones)
``model_sha256``  sha256 of the ONNX model that generated it ("" for real ones)
``seed``          the seed it was generated with ("" when not applicable)

Rows read from a file are named in errors as ``<file> row N``, where N is the line of the
CSV file (the header is row 1), as a spreadsheet shows it.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from augment.errors import DataError
from augment.io import atomic_path, is_file

COLUMNS = ("path", "label", "split", "domain", "source", "variant", "model_sha256", "seed")
SPLITS = ("train", "val", "test")
SOURCES = ("real", "synthetic")
REQUIRED = ("path", "label")
DEFAULTS = {
    "split": "train",
    "domain": "",
    "source": "real",
    "variant": "",
    "model_sha256": "",
    "seed": "",
}

_NATURAL_CHUNKS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[Any, ...]:
    """Sort key that orders embedded numbers numerically ("2" < "10", "c2" < "c10")."""
    parts = []
    for chunk in _NATURAL_CHUNKS.split(text):
        if chunk.isdigit():
            parts.append((0, int(chunk), ""))
        elif chunk:
            parts.append((1, 0, chunk.casefold()))
    return (tuple(parts), text)


def natural_sorted(values: Iterable[str]) -> list[str]:
    """The distinct ``values`` in natural order."""
    return sorted(set(values), key=natural_key)


def _short_list(values: Sequence[str], limit: int = 12) -> str:
    """``a, b, c`` (truncated with a count after ``limit`` items) for one-line messages."""
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def read_csv_frame(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a CSV as all-string columns; any failure is a one-line DataError naming the file.

    The text must be UTF-8 (a BOM is allowed) without NUL bytes; the header must name
    each column once, and every row must have no more fields than the header (missing
    trailing fields are empty).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a CSV file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    text = _decode(data, path)
    try:
        # header=None: a row with more fields than the header is an error, not an index
        table = pd.read_csv(
            io.StringIO(text), header=None, dtype=str, keep_default_na=False, na_filter=False
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file (expected a CSV header)") from None
    except (pd.errors.ParserError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "parse error"
        raise DataError(f"{path}: not a valid CSV file ({detail})") from None
    columns = [str(c).strip() for c in table.iloc[0]]
    named = [c for c in columns if c]
    if len(set(named)) != len(named):
        twice = next(c for c in named if named.count(c) > 1)
        raise DataError(f"{path}: column {twice!r} appears twice in the header")
    frame = table.iloc[1:].reset_index(drop=True)
    frame.columns = [c or f"Unnamed: {i}" for i, c in enumerate(columns)]
    return frame


def _decode(data: bytes, path: Path) -> str:
    """The text of a UTF-8 CSV file (BOM dropped); a DataError naming the line otherwise."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DataError(f"{path}: UTF-16 text, expected UTF-8 (save the CSV as UTF-8)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path}: not UTF-8 text (line {line}, byte {exc.start}: {data[exc.start]:#04x})"
        ) from None
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise DataError(f"{path}: NUL byte on line {line} (a binary file, not a CSV)")
    return text


def outside_root_message(root: str | os.PathLike[str]) -> str:
    """The end of the error for a path outside a dataset root (sources' guard)."""
    return (
        f"is outside the dataset root {os.path.abspath(root)} "
        "(set allow_outside_root: true to allow)"
    )


def outside_root(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (relative to ``root``, or absolute) leads outside ``root``.

    Outside means: after ``..`` are resolved, or once symlinks are followed (the real path
    of ``path`` against the real path of ``root``). A path that cannot exist (a NUL byte,
    a name too long) is judged by its spelling alone.
    """
    base = os.path.abspath(root)
    joined = os.path.normpath(os.path.join(base, path))
    if not _within(joined, base):
        return True
    try:
        return not _within(os.path.realpath(joined), os.path.realpath(base))
    except (OSError, ValueError):
        return False


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class Manifest:
    """A dataset: one row per image with its label, split, domain and provenance.

    ``root`` is the directory relative paths are resolved against (the CSV's folder after
    :meth:`read`). The frame stores paths as given: relative to ``root`` or absolute.

    ``classes`` defaults to the natural-sorted distinct labels; pass it to keep a fixed
    class list (every label must be in it). ``origin`` names the file the rows came from
    and ``row_numbers`` their CSV rows, for error messages.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        root: str | os.PathLike[str],
        *,
        classes: Sequence[str] | None = None,
        origin: str | None = None,
        row_numbers: Sequence[int] | None = None,
    ) -> None:
        self.root = Path(os.path.abspath(root))
        self.origin = origin
        self._where = origin or "manifest"
        frame = frame.reset_index(drop=True)
        self._row_numbers = None if row_numbers is None else np.asarray(row_numbers, np.int64)
        if self._row_numbers is not None and len(self._row_numbers) != len(frame):
            raise ValueError("row_numbers must have one entry per row")
        self.frame = self._normalise(frame)
        self._validate()
        labels = natural_sorted(self.frame["label"]) if classes is None else list(classes)
        self._classes = tuple(labels)
        self._index = {name: i for i, name in enumerate(self._classes)}
        if classes is not None:
            self.check_classes(self._classes)

    # -- construction -------------------------------------------------------------------

    def _normalise(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Check the required columns, fill the optional ones, make every column a string."""
        for column in REQUIRED:
            if column not in frame.columns:
                found = ", ".join(map(str, frame.columns)) or "none"
                raise DataError(f"{self._where}: missing column {column!r} (found: {found})")
        frame = frame.copy()
        for column, default in DEFAULTS.items():
            if column not in frame.columns:
                frame[column] = default
        for column in frame.columns:
            frame[column] = frame[column].map(_as_text).astype(object)
        extras = [c for c in frame.columns if c not in COLUMNS]
        return frame[list(COLUMNS) + extras]

    def _validate(self) -> None:
        """Raise a DataError naming the first row that breaks a manifest invariant."""
        f = self.frame
        checks: list[tuple[pd.Series, str, Any]] = [
            (f["path"].str.strip() == "", "empty path", None),
            (f["label"].str.strip() == "", "empty label", None),
            (~f["split"].isin(SPLITS), "split {!r} is not one of " + ", ".join(SPLITS), "split"),
            (
                ~f["source"].isin(SOURCES),
                "source {!r} is not one of " + ", ".join(SOURCES),
                "source",
            ),
            (
                (f["source"] == "synthetic") & (f["split"] != "train"),
                "synthetic image in split {!r} (synthetic images may only be in train)",
                "split",
            ),
            (~f["seed"].str.fullmatch(r"-?\d*"), "seed {!r} is not an integer", "seed"),
        ]
        for mask, message, column in checks:
            if mask.any():
                pos = int(np.flatnonzero(mask.to_numpy())[0])
                detail = message.format(f.at[pos, column]) if column else message
                raise DataError(f"{self.row_name(pos)}: {detail}")

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Manifest:
        """Read a manifest CSV; relative paths are resolved against the CSV's folder."""
        path = Path(path)
        frame = read_csv_frame(path)
        return cls(frame, path.parent, origin=str(path), row_numbers=np.arange(len(frame)) + 2)

    @classmethod
    def from_rows(cls, rows: Sequence[dict[str, Any]], root: str | os.PathLike[str]) -> Manifest:
        """A manifest from dicts (missing optional keys take their defaults)."""
        frame = (
            pd.DataFrame([{**DEFAULTS, **row} for row in rows])
            if rows
            else pd.DataFrame(columns=list(REQUIRED))
        )
        return cls(frame, root)

    @classmethod
    def concat(cls, manifests: Sequence[Manifest], root: str | os.PathLike[str]) -> Manifest:
        """Stack manifests; every path is rewritten relative to the new ``root``."""
        root = Path(os.path.abspath(root))
        frames = []
        for manifest in manifests:
            frame = manifest.frame.copy()
            frame["path"] = [_relative_posix(p, root) for p in manifest.absolute_paths()]
            frames.append(frame)
        if not frames:
            return cls.from_rows([], root)
        return cls(pd.concat(frames, ignore_index=True).fillna(""), root)

    # -- output -------------------------------------------------------------------------

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the CSV atomically, with paths relative to its folder (posix separators)."""
        path = Path(path)
        base = Path(os.path.abspath(path.parent))
        frame = self.frame.copy()
        frame["path"] = [_relative_posix(p, base) for p in self.absolute_paths()]
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n")

    # -- queries ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        return f"Manifest({len(self)} rows, {len(self.classes)} classes, root={str(self.root)!r})"

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names in index order (natural sort unless given explicitly)."""
        return self._classes

    def class_index(self, label: str) -> int:
        """The index of ``label`` in :attr:`classes`."""
        try:
            return self._index[label]
        except KeyError:
            raise DataError(
                f"{self._where}: unknown class {label!r} (known classes: "
                f"{_short_list(self._classes)})"
            ) from None

    def label_indices(self) -> np.ndarray:
        """The class index of every row, int64."""
        return np.fromiter(
            (self._index[label] for label in self.frame["label"]), np.int64, len(self.frame)
        )

    def counts(self, split: str | None = "train", source: str | None = None) -> pd.Series:
        """Images per class (all of :attr:`classes`, in order; 0 where absent)."""
        frame = self.frame
        if split is not None:
            frame = frame[frame["split"] == split]
        if source is not None:
            frame = frame[frame["source"] == source]
        counts = frame["label"].value_counts().reindex(list(self._classes), fill_value=0)
        counts.index.name = "class"
        return counts.astype(np.int64).rename("count")

    def subset(self, split: str | None = None, source: str | None = None) -> Manifest:
        """The rows of one split and/or source (same root and class list)."""
        mask = np.ones(len(self.frame), bool)
        if split is not None:
            mask &= (self.frame["split"] == split).to_numpy()
        if source is not None:
            mask &= (self.frame["source"] == source).to_numpy()
        return self.take(np.flatnonzero(mask))

    def take(self, positions: Sequence[int] | np.ndarray) -> Manifest:
        """The rows at ``positions`` (same root, class list and row names in errors)."""
        positions = np.asarray(positions, np.int64)
        rows = None if self._row_numbers is None else self._row_numbers[positions]
        return Manifest(
            self.frame.iloc[positions],
            self.root,
            classes=self._classes,
            origin=self.origin,
            row_numbers=rows,
        )

    def absolute_paths(self) -> list[Path]:
        """Every row's image path, absolute."""
        root = str(self.root)
        return [Path(os.path.normpath(os.path.join(root, p))) for p in self.frame["path"]]

    def check_files(self) -> None:
        """Raise a DataError naming the first row whose image file does not exist."""
        for pos, path in enumerate(self.absolute_paths()):
            if not is_file(path):
                raise DataError(f"{self.row_name(pos)}: file not found: {path}")

    def check_inside_root(self) -> None:
        """Raise a DataError naming the first row whose path is absolute or leads outside
        :attr:`root` (through ``..`` or a symlink).

        User-facing sources (``kind: csv``) call this unless ``allow_outside_root``; the
        pipeline's own manifests may point to ``../`` images and do not.
        """
        for pos, path in enumerate(self.frame["path"]):
            if os.path.isabs(path) or outside_root(path, self.root):
                raise DataError(
                    f"{self.row_name(pos)}: path {path} {outside_root_message(self.root)}"
                )

    def check_classes(self, classes: Sequence[str]) -> None:
        """Raise a DataError naming the first row whose label is not in ``classes``."""
        known = set(classes)
        unknown = ~self.frame["label"].isin(known).to_numpy()
        if unknown.any():
            pos = int(np.flatnonzero(unknown)[0])
            raise DataError(
                f"{self.row_name(pos)}: label {self.frame.at[pos, 'label']!r} is not one of "
                f"the classes ({_short_list(list(classes))})"
            )

    def row_name(self, pos: int) -> str:
        """How errors name the row at position ``pos``: ``<file> row N`` or ``manifest row i``."""
        if self._row_numbers is not None:
            return f"{self._where} row {int(self._row_numbers[pos])}"
        return f"{self._where} row {pos} (0-based)"


def _as_text(value: Any) -> str:
    """A cell as a string: None/NaN become "", integral floats lose their ".0"."""
    if value is None:
        return ""
    if isinstance(value, float):
        if np.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    return str(value)


def _relative_posix(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` as a posix string (may start with ``../``)."""
    return Path(os.path.relpath(path, base)).as_posix()
