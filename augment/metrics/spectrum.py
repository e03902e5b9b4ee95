"""Power spectra of image sets, and where a generator's differs from the real images'.

GAN generators are known to get the high frequencies wrong: up-sampling layers leave
periodic peaks (checkerboards, lattices) and the rest of the high band short of power
(Durall, Keuper & Keuper, 2020, "Watch your up-convolution"). A picture shows the lattice;
these numbers say where it is and how strong, so runs can be compared.

For uint8 images [N,H,W,C]: the luma of each image minus its mean, ``P(f) = |FFT2(x)|^2``
averaged over the set (f64[H,W], zero frequency in the middle, frequencies in cycles per
pixel in [-0.5, 0.5)). Two sets of the same size are compared by the ratio of their mean
spectra, frequency by frequency.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from augment.errors import DataError
from augment.metrics.image import rgb_to_luma

#: Radial bands of the spectrum, in cycles per pixel (0.5: the Nyquist frequency of an axis).
BANDS = {"low": (0.0, 0.125), "mid": (0.125, 0.25), "high": (0.25, 0.5), "corner": (0.5, 0.75)}


def power_spectrum(images: np.ndarray) -> np.ndarray:
    """Mean power spectrum f64[H,W] of uint8 or float images [N,H,W,C] (luma, each image's
    mean removed), ``fftshift``-ed: zero frequency at ``[H // 2, W // 2]``."""
    x = rgb_to_luma(images)[..., 0]
    if x.ndim != 3 or len(x) == 0:
        raise DataError(f"power_spectrum needs a batch [N,H,W,C] of images, got {images.shape}")
    x = x - x.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(x)) ** 2  # [N, H, W]
    return np.fft.fftshift(power.mean(axis=0))


def frequencies(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(fy [H,W], fx [H,W]): cycles per pixel of each entry of a shifted spectrum."""
    fy = np.fft.fftshift(np.fft.fftfreq(height))
    fx = np.fft.fftshift(np.fft.fftfreq(width))
    return np.meshgrid(fy, fx, indexing="ij")


def spectrum_ratio(samples: np.ndarray, real: np.ndarray) -> np.ndarray:
    """``samples``' mean power spectrum over ``real``'s (same H and W), frequency by
    frequency: f64[H,W], shifted as :func:`power_spectrum`."""
    if samples.shape[1:3] != real.shape[1:3]:
        raise DataError(
            f"spectral_excess needs images of one size, got {samples.shape[1:3]} and "
            f"{real.shape[1:3]}"
        )
    return power_spectrum(samples) / np.maximum(power_spectrum(real), 1e-12)


def spectral_excess(samples: np.ndarray, real: np.ndarray) -> dict[str, Any]:
    """Where ``samples``' mean power spectrum differs most from ``real``'s (same H and W):
    :func:`ratio_excess` of their :func:`spectrum_ratio`."""
    return ratio_excess(spectrum_ratio(samples, real))


def ratio_excess(ratio: np.ndarray) -> dict[str, Any]:
    """The largest departures of a :func:`spectrum_ratio` from 1.

    Returns ``peak_ratio`` (the largest ratio samples / real over all non-zero frequencies)
    at ``peak_frequency`` ([fy, fx] cycles per pixel, fy >= 0 of the symmetric pair), and
    ``bands``: the mean ratio over each radial band of :data:`BANDS` (1: the real images'
    power; below 1: too smooth; ``corner``: the diagonal beyond the axes' Nyquist).
    """
    fy, fx = frequencies(*ratio.shape)
    radius = np.hypot(fy, fx)
    candidates = np.where((radius > 0) & (fy >= 0), ratio, -np.inf)
    peak = np.unravel_index(int(np.argmax(candidates)), ratio.shape)
    bands = {}
    for name, (lo, hi) in BANDS.items():
        inside = (radius > 0) & (radius >= lo) & (radius < hi)
        if inside.any():
            bands[name] = float(ratio[inside].mean())
    return {
        "peak_ratio": float(ratio[peak]),
        "peak_frequency": [float(fy[peak]), float(fx[peak])],
        "bands": bands,
    }
