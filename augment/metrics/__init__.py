"""Evaluation metrics for generated data, in pure numpy (float64).

- frechet: Fréchet distance between Gaussians fitted to our classifier's features
  (Heusel et al. 2017; not Inception FID), optionally class-reweighted.
- manifold: k-NN precision/recall (Kynkäänniemi et al. 2019) and a nearest-neighbour
  memorisation check, chunked to bound memory.
- image: PSNR, SSIM (Wang et al. 2004), MS-SSIM (Wang et al. 2003) and MS-SSIM diversity.
- classification: confusion matrix, accuracy, balanced accuracy, macro-F1 and G-mean.
- spectrum: mean power spectra of image sets and where a generator's differs from the
  real images' (a lattice's peak; a band short of power).

Bad input raises `augment.errors.DataError`.
"""

from __future__ import annotations

from augment.metrics.classification import classification_scores, confusion_matrix
from augment.metrics.frechet import GaussianStats, fd, frechet_distance, gaussian_stats
from augment.metrics.image import (
    ms_ssim,
    ms_ssim_diversity,
    ms_ssim_scales,
    psnr,
    rgb_to_luma,
    ssim,
)
from augment.metrics.manifold import (
    knn_radii,
    memorization,
    nearest_distances,
    pairwise_sq_distances,
    precision_recall,
)
from augment.metrics.spectrum import power_spectrum, spectral_excess

__all__ = [
    "GaussianStats",
    "classification_scores",
    "confusion_matrix",
    "fd",
    "frechet_distance",
    "gaussian_stats",
    "knn_radii",
    "memorization",
    "ms_ssim",
    "ms_ssim_diversity",
    "ms_ssim_scales",
    "nearest_distances",
    "pairwise_sq_distances",
    "power_spectrum",
    "precision_recall",
    "psnr",
    "rgb_to_luma",
    "spectral_excess",
    "ssim",
]
