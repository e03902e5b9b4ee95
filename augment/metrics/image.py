"""Full-reference image metrics: PSNR, SSIM (Wang et al. 2004), MS-SSIM (Wang, Simoncelli &
Bovik 2003) and an MS-SSIM diversity score.

Images are uint8 (or float) arrays shaped [H,W] (one single-channel image), [H,W,C] (one image)
or [N,H,W,C] (a batch). Single images give a float, batches an array [N]. Computation is float64.
"""

from __future__ import annotations

import numpy as np

from augment.errors import DataError

K1, K2 = 0.01, 0.03  # SSIM stabilisers, Wang et al. 2004
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, finest first
MIN_COARSE_SIDE = 7  # scales=None keeps the coarsest scale at least this many pixels per side


def _as_batches(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Both images as float64 [N,H,W,C] and whether the input was a single image."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise DataError(f"images have different shapes: {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3, 4) or 0 in a.shape:
        raise DataError(f"images must be [H,W], [H,W,C] or [N,H,W,C], got shape {a.shape}")
    single = a.ndim < 4
    lead = (1,) + a.shape[:2] + (a.shape[2] if a.ndim == 3 else 1,)
    if single:
        a, b = a.reshape(lead), b.reshape(lead)
    return a.astype(np.float64), b.astype(np.float64), single


def _result(values: np.ndarray, single: bool) -> np.ndarray | float:
    return float(values[0]) if single else values


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> np.ndarray | float:
    """Peak signal-to-noise ratio in dB per image; identical images give inf."""
    x, y, single = _as_batches(a, b)
    mse = np.mean((x - y) ** 2, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        values = 10.0 * np.log10(data_range**2 / mse)
    return _result(values, single)


def _gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    t = np.arange(size) - (size - 1) / 2
    g = np.exp(-(t**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering of x [N,H,W,C] along H then W with a 1-D kernel."""
    n = len(kernel)
    h_out, w_out = x.shape[1] - n + 1, x.shape[2] - n + 1
    rows = sum(kernel[i] * x[:, i : i + h_out] for i in range(n))
    return sum(kernel[i] * rows[:, :, i : i + w_out] for i in range(n))


def _window_for(height: int, width: int, window: int, sigma: float) -> tuple[int, float]:
    """The window (odd, <= smaller side) and its sigma, shrunk proportionally if needed."""
    side = min(height, width)
    if side < 3:
        raise DataError(f"images of {height}x{width} are too small for SSIM (need >= 3x3)")
    if window < 3 or window % 2 == 0:
        raise DataError(f"SSIM window must be an odd size >= 3, got {window}")
    if side >= window:
        return window, sigma
    size = side if side % 2 else side - 1
    return size, sigma * size / window


def _ssim_and_cs(
    x: np.ndarray, y: np.ndarray, data_range: float, window: int, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-image mean SSIM and mean contrast-structure term [N] of float batches [N,H,W,C]."""
    size, sig = _window_for(x.shape[1], x.shape[2], window, sigma)
    kernel = _gaussian_kernel(size, sig)
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    mu_x = _filter_valid(x, kernel)
    mu_y = _filter_valid(y, kernel)
    var_x = _filter_valid(x * x, kernel) - mu_x**2
    var_y = _filter_valid(y * y, kernel) - mu_y**2
    cov = _filter_valid(x * y, kernel) - mu_x * mu_y
    cs_map = (2 * cov + c2) / (var_x + var_y + c2)
    lum_map = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    axes = (1, 2, 3)  # mean over the valid region and the channels
    return np.mean(lum_map * cs_map, axis=axes), np.mean(cs_map, axis=axes)


def ssim(
    a: np.ndarray,
    b: np.ndarray,
    data_range: float = 255.0,
    window: int = 11,
    sigma: float = 1.5,
) -> np.ndarray | float:
    """Mean SSIM per image (Gaussian window, per channel, over the 'valid' region).

    Images smaller than the window use the largest odd window that fits, with sigma scaled by
    the same factor; at least 3x3 pixels are required.
    """
    x, y, single = _as_batches(a, b)
    values, _ = _ssim_and_cs(x, y, data_range, window, sigma)
    return _result(values, single)


def ms_ssim_scales(height: int, width: int) -> int:
    """Most scales (<= 5) whose coarsest 2x-downsampled side is still >= 7 (28x28 -> 3)."""
    side, scales = min(height, width), 1
    while scales < len(MS_SSIM_WEIGHTS) and side // 2 >= MIN_COARSE_SIDE:
        side //= 2
        scales += 1
    return scales


def _downsample(x: np.ndarray) -> np.ndarray:
    """2x2 average pooling of [N,H,W,C] (an odd last row/column is dropped)."""
    n, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def ms_ssim(
    a: np.ndarray, b: np.ndarray, data_range: float = 255.0, scales: int | None = None
) -> np.ndarray | float:
    """Multi-scale SSIM per image: cs at every scale, luminance only at the coarsest.

    Weights are the first ``scales`` of (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), renormalised
    to sum 1. Negative cs (and coarsest SSIM) values are clipped to 0 before the fractional
    power, so anti-correlated images score 0 instead of NaN.
    """
    x, y, single = _as_batches(a, b)
    if scales is None:
        scales = ms_ssim_scales(x.shape[1], x.shape[2])
    if not 1 <= scales <= len(MS_SSIM_WEIGHTS):
        raise DataError(f"scales must be in 1..{len(MS_SSIM_WEIGHTS)}, got {scales}")
    if min(x.shape[1], x.shape[2]) >> (scales - 1) < 3:
        raise DataError(
            f"images of {x.shape[1]}x{x.shape[2]} are too small for {scales} MS-SSIM scales"
        )
    weights = np.asarray(MS_SSIM_WEIGHTS[:scales])
    weights = weights / weights.sum()

    result = np.ones(x.shape[0])
    for level in range(scales):
        full, cs = _ssim_and_cs(x, y, data_range, window=11, sigma=1.5)
        if level == scales - 1:
            result *= np.clip(full, 0.0, None) ** weights[level]
        else:
            result *= np.clip(cs, 0.0, None) ** weights[level]
            x, y = _downsample(x), _downsample(y)
    return _result(result, single)


def rgb_to_luma(images: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B as float64 [..., 1], same value range.

    [..., 1] and 2-D [H,W] inputs are already single-channel and are returned as float64.
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 2 or (x.ndim >= 3 and x.shape[-1] == 1):
        return x
    if x.ndim < 3 or x.shape[-1] != 3:
        raise DataError(f"rgb_to_luma needs [..., 3] or [..., 1] images, got shape {x.shape}")
    return (x @ np.array([0.299, 0.587, 0.114]))[..., None]


def ms_ssim_diversity(
    images: np.ndarray, pairs: int = 500, seed: int = 0, data_range: float = 255.0
) -> float:
    """1 - mean MS-SSIM over random pairs of different images [N,H,W,C]; higher = more diverse.

    Pairs are drawn with np.random.default_rng(seed); if N(N-1)/2 <= pairs, every pair is used.
    """
    x = np.asarray(images)
    if x.ndim != 4:
        raise DataError(f"images must be [N,H,W,C], got shape {x.shape}")
    n = x.shape[0]
    if n < 2:
        raise DataError(f"MS-SSIM diversity needs at least 2 images, got {n}")
    if pairs < 1:
        raise DataError(f"pairs must be >= 1, got {pairs}")

    if n * (n - 1) // 2 <= pairs:
        first, second = np.triu_indices(n, k=1)
    else:
        rng = np.random.default_rng(seed)
        first = rng.integers(0, n, size=pairs)
        second = rng.integers(0, n - 1, size=pairs)
        second = second + (second >= first)  # skip the first index: always a different image

    batch = 64  # bounds memory for large images
    scores = [
        np.atleast_1d(ms_ssim(x[first[i : i + batch]], x[second[i : i + batch]], data_range))
        for i in range(0, len(first), batch)
    ]
    return float(1.0 - np.mean(np.concatenate(scores)))
