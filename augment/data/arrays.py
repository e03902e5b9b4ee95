"""Labelled images in memory: uint8 arrays with class indices (and which are synthetic)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Images:
    """uint8 ``N x H x W x C`` images, int64 class-index ``labels`` and a ``synthetic`` mask.

    ``synthetic`` (bool[N]) is all False unless given: real images.
    """

    images: np.ndarray
    labels: np.ndarray
    synthetic: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, np.int64)
        if self.synthetic is None:
            self.synthetic = np.zeros(len(self.labels), bool)
        self.synthetic = np.asarray(self.synthetic, bool)

    def __len__(self) -> int:
        return len(self.labels)

    def of_class(self, k: int) -> np.ndarray:
        return self.images[self.labels == k]

    def counts(self, num_classes: int) -> np.ndarray:
        return np.bincount(self.labels, minlength=num_classes)

    def take(self, index: np.ndarray) -> Images:
        """The images at ``index`` (in that order)."""
        return Images(self.images[index], self.labels[index], self.synthetic[index])

    def as_synthetic(self) -> Images:
        """The same images, every one marked synthetic."""
        return Images(self.images, self.labels, np.ones(len(self), bool))

    def digest(self) -> str:
        """sha256 of the pixels, labels, synthetic marks and shape: the set's identity."""
        h = hashlib.sha256()
        h.update(repr(self.images.shape).encode())
        for array in (self.images, self.labels, self.synthetic):
            h.update(np.ascontiguousarray(array).tobytes())
        return h.hexdigest()

    @staticmethod
    def concat(parts: Sequence[Images]) -> Images:
        return Images(
            np.concatenate([p.images for p in parts]),
            np.concatenate([p.labels for p in parts]),
            np.concatenate([p.synthetic for p in parts]),
        )

    @staticmethod
    def from_classes(arrays: Sequence[np.ndarray], synthetic: bool = False) -> Images:
        """Images of class ``k`` from ``arrays[k]``."""
        labels = np.concatenate([np.full(len(a), k, np.int64) for k, a in enumerate(arrays)])
        return Images(np.concatenate(arrays), labels, np.full(len(labels), synthetic))
