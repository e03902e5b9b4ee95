"""Offline image domains for translation: colour photos and an MNIST-M-like digit domain.

MNIST-M (Ganin & Lempitsky, 2015) blends MNIST digits into crops of colour photos. Ours is
built the same way from what ships with scikit-image and scikit-learn: each pixel is the
absolute difference between a random colour crop and the binarized digit. The photos are
split so that train and test digits never share a background, and every image comes from
a known digit, so the domain also gives pairs (digit, blended) for paired translation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SKIMAGE_PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "rocket",
)


def colour_photos() -> dict[str, np.ndarray]:
    """Natural colour photos (u8 H x W x 3) by name, from scikit-image and scikit-learn."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    photos = {n: getattr(skimage.data, n)() for n in SKIMAGE_PHOTOS if hasattr(skimage.data, n)}
    photos["motorcycle"] = skimage.data.stereo_motorcycle()[0]
    sample = load_sample_images()
    for name, image in zip(sample.filenames, sample.images, strict=True):
        photos[Path(name).name] = image
    return photos


def split_photos(
    names: Sequence[str], test_fraction: float = 0.3, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Disjoint (train, test) photo names, each non-empty; the same for the same seed."""
    if len(names) < 2:
        raise ValueError("split_photos needs at least two photos")
    order = np.random.default_rng(seed).permutation(sorted(names))
    n_test = min(len(order) - 1, max(1, round(test_fraction * len(order))))
    return sorted(order[n_test:].tolist()), sorted(order[:n_test].tolist())


def blend(
    digits: np.ndarray, photos: Sequence[np.ndarray], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Digits (u8 N x H x W[x1]) on random crops of ``photos``: |crop - 255 * (digit > 127)|.

    Returns the u8 N x H x W x 3 images and the index of the photo behind each one.
    """
    digits = digits.reshape(digits.shape[0], digits.shape[1], digits.shape[2])
    n, h, w = digits.shape
    if any(p.shape[0] < h or p.shape[1] < w for p in photos):
        raise ValueError(f"every photo must be at least {h}x{w}")
    which = rng.integers(len(photos), size=n)
    out = np.empty((n, h, w, 3), np.uint8)
    for i, k in enumerate(which):
        photo = photos[k]
        y = rng.integers(photo.shape[0] - h + 1)
        x = rng.integers(photo.shape[1] - w + 1)
        crop = photo[y : y + h, x : x + w].astype(np.int16)
        ink = np.where(digits[i] > 127, 255, 0).astype(np.int16)[..., None]
        out[i] = np.abs(crop - ink).astype(np.uint8)
    return out, which


@dataclass(frozen=True)
class BlendedDigits:
    """An MNIST-M-like set: the images, the photo behind each, and the photo split."""

    images: np.ndarray  # u8 N x H x W x 3
    photos: tuple[str, ...]  # per image
    train_photos: tuple[str, ...]
    test_photos: tuple[str, ...]


def mnistm_like(
    digits: np.ndarray, is_test: np.ndarray, seed: int = 0, test_fraction: float = 0.3
) -> BlendedDigits:
    """Blend ``digits``; those marked ``is_test`` take backgrounds from test photos only.

    Deterministic for a seed: the same digits and seed give the same bytes.
    """
    is_test = np.asarray(is_test, bool)
    if is_test.shape != (len(digits),):
        raise ValueError(f"is_test must have one flag per digit ({len(digits)})")
    library = colour_photos()
    train_names, test_names = split_photos(list(library), test_fraction, seed)
    rng = np.random.default_rng(seed)
    images = np.empty((len(digits), digits.shape[1], digits.shape[2], 3), np.uint8)
    names = np.empty(len(digits), object)
    for flag, pool in ((False, train_names), (True, test_names)):
        rows = np.flatnonzero(is_test == flag)
        blended, which = blend(digits[rows], [library[n] for n in pool], rng)
        images[rows] = blended
        names[rows] = np.asarray(pool, object)[which]
    return BlendedDigits(images, tuple(names), tuple(train_names), tuple(test_names))
