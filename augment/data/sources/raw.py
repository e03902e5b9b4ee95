"""What every source loads into: :class:`RawDataset` (images, labels, classes, splits)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from augment.errors import DataError

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
