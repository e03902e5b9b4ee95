"""Fréchet distance between Gaussians fitted to features (Heusel et al. 2017, "GANs Trained
by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium").

The features are OUR OWN: the penultimate layer of the classifier this project trains on the
real data, not Inception-v3 pool features. Values are therefore comparable only between runs
that use the same feature extractor, and are not "FID" as published for ImageNet models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from augment.errors import DataError


@dataclass(frozen=True)
class GaussianStats:
    """Mean [D], covariance [D,D] and sample count of a set of feature vectors."""

    mean: np.ndarray  # [D]
    cov: np.ndarray  # [D,D]
    count: int

    def __post_init__(self) -> None:
        d = self.mean.shape[0] if self.mean.ndim == 1 else -1
        if d < 1 or self.cov.shape != (d, d):
            raise DataError(
                f"GaussianStats needs mean [D] and cov [D,D], got mean {self.mean.shape} "
                f"and cov {self.cov.shape}"
            )


def gaussian_stats(features: np.ndarray, weights: np.ndarray | None = None) -> GaussianStats:
    """Weighted mean and unbiased covariance of features [N,D] (N >= 2).

    Weights [N] (non-negative, normalised to sum 1 here) re-balance a mix of classes, e.g.
    equal total weight per class. The covariance is sum_i w_i (x_i-mu)(x_i-mu)^T / (1 - sum w^2),
    which for uniform weights is exactly np.cov(features, rowvar=False, ddof=1).
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise DataError(f"features must be 2-D [N,D], got shape {x.shape}")
    n = x.shape[0]
    if n < 2 or x.shape[1] < 1:
        raise DataError(f"features need at least 2 samples and 1 dimension, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise DataError("features contain NaN or infinite values")

    if weights is None:
        w = np.full(n, 1.0 / n)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (n,):
            raise DataError(f"weights must have shape ({n},) to match features, got {w.shape}")
        if not np.isfinite(w).all() or (w < 0).any():
            raise DataError("weights must be finite and non-negative")
        if w.sum() <= 0:
            raise DataError("weights are all zero")
        w = w / w.sum()

    mean = w @ x
    centred = x - mean
    dof = 1.0 - float(np.sum(w**2))  # effective "N-1" correction, 0 if one sample has all weight
    if dof <= 1e-12:
        raise DataError("weights put all their mass on a single sample; covariance is undefined")
    cov = (centred * w[:, None]).T @ centred / dof
    return GaussianStats(mean=mean, cov=cov, count=n)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (negative eigenvalues -> 0)."""
    vals, vecs = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def frechet_distance(a: GaussianStats, b: GaussianStats) -> float:
    """||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr sqrt(S_a^1/2 S_b S_a^1/2), clipped at >= 0."""
    if a.mean.shape != b.mean.shape:
        raise DataError(f"feature dimensions differ: {a.mean.shape[0]} vs {b.mean.shape[0]}")
    root_a = _sqrt_psd(a.cov)
    inner = root_a @ b.cov @ root_a  # symmetric PSD, same eigenvalues as S_a S_b
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr_covmean = float(np.sum(np.sqrt(np.clip(eig, 0.0, None))))
    diff = a.mean - b.mean
    value = float(diff @ diff) + float(np.trace(a.cov)) + float(np.trace(b.cov)) - 2 * tr_covmean
    return max(value, 0.0)


def fd(
    features_a: np.ndarray,
    features_b: np.ndarray,
    weights_a: np.ndarray | None = None,
    weights_b: np.ndarray | None = None,
) -> float:
    """Fréchet distance between features_a [N,D] and features_b [M,D] (optionally weighted)."""
    return frechet_distance(
        gaussian_stats(features_a, weights_a), gaussian_stats(features_b, weights_b)
    )
