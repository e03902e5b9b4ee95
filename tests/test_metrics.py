"""Metrics against hand-computed and independently computed values; bad input -> DataError."""

from __future__ import annotations

import math

import numpy as np
import pytest

from augment.errors import DataError
from augment.metrics import (
    GaussianStats,
    classification_scores,
    confusion_matrix,
    fd,
    frechet_distance,
    gaussian_stats,
    knn_radii,
    memorization,
    ms_ssim,
    ms_ssim_diversity,
    ms_ssim_scales,
    nearest_distances,
    pairwise_sq_distances,
    power_spectrum,
    precision_recall,
    psnr,
    rgb_to_luma,
    spectral_excess,
    ssim,
)


def rotation(theta: float) -> np.ndarray:
    return np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])


# --- Fréchet distance -------------------------------------------------------------------------


def test_fd_diagonal_gaussians_closed_form() -> None:
    a = GaussianStats(np.array([1.0, 2.0, 3.0]), np.diag([1.0, 4.0, 9.0]), 10)
    b = GaussianStats(np.array([0.0, 0.0, 1.0]), np.diag([4.0, 1.0, 1.0]), 10)
    # sum (mu diff)^2 = 1 + 4 + 4; sum (sqrt a - sqrt b)^2 = 1 + 1 + 4
    assert frechet_distance(a, b) == pytest.approx(15.0, abs=1e-12)
    assert frechet_distance(b, a) == pytest.approx(15.0, abs=1e-12)


def test_fd_one_dimension() -> None:
    a = GaussianStats(np.array([0.5]), np.array([[4.0]]), 5)
    b = GaussianStats(np.array([-1.0]), np.array([[0.25]]), 5)
    assert frechet_distance(a, b) == pytest.approx(1.5**2 + (2.0 - 0.5) ** 2, abs=1e-12)


def test_fd_commuting_non_diagonal_covariances() -> None:
    r = rotation(0.7)  # same eigenvectors, so tr sqrt(Sa Sb) = sum sqrt(a_i b_i)
    a = GaussianStats(np.array([1.0, -1.0]), r @ np.diag([9.0, 1.0]) @ r.T, 3)
    b = GaussianStats(np.array([0.0, 1.0]), r @ np.diag([1.0, 4.0]) @ r.T, 3)
    expected = (1 + 4) + (3 - 1) ** 2 + (1 - 2) ** 2
    assert frechet_distance(a, b) == pytest.approx(expected, abs=1e-10)


def test_fd_general_case_matches_eigenvalues_of_product() -> None:
    rng = np.random.default_rng(1)
    m1, m2 = rng.normal(size=(2, 4, 4))
    cov_a, cov_b = m1 @ m1.T + 0.1 * np.eye(4), m2 @ m2.T + 0.1 * np.eye(4)
    mu_a, mu_b = rng.normal(size=(2, 4))
    # independent route: eigenvalues of the non-symmetric product Sa Sb are real and >= 0
    tr_sqrt = np.sum(np.sqrt(np.linalg.eigvals(cov_a @ cov_b).real))
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_sqrt
    got = frechet_distance(GaussianStats(mu_a, cov_a, 9), GaussianStats(mu_b, cov_b, 9))
    assert got == pytest.approx(expected, rel=1e-9)
    assert got == pytest.approx(
        frechet_distance(GaussianStats(mu_b, cov_b, 9), GaussianStats(mu_a, cov_a, 9)), rel=1e-9
    )


def test_fd_of_samples() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 6))
    assert fd(x, x) == pytest.approx(0.0, abs=1e-9)
    a = rng.normal(size=(20000, 2))
    b = rng.normal(size=(20000, 2)) + 1.0  # N(0,I) vs N(1,I): FD = 2
    assert fd(a, b) == pytest.approx(2.0, abs=0.1)


def test_gaussian_stats_uniform_weights_match_np_cov() -> None:
    x = np.random.default_rng(2).normal(size=(50, 3))
    plain = gaussian_stats(x)
    weighted = gaussian_stats(x, np.full(50, 7.0))
    for s in (plain, weighted):
        np.testing.assert_allclose(s.mean, x.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(s.cov, np.cov(x, rowvar=False, ddof=1), rtol=1e-12)
        assert s.count == 50


def test_gaussian_stats_weights_rebalance_and_drop() -> None:
    # three samples of class A around 0, one of class B at 4; equal class weight -> mean 2
    x = np.array([[-1.0], [0.0], [1.0], [4.0]])
    s = gaussian_stats(x, np.array([1 / 3, 1 / 3, 1 / 3, 1.0]))
    assert s.mean[0] == pytest.approx(2.0)
    # zero weight drops a sample: exactly the unbiased stats of the rest
    s = gaussian_stats(x, np.array([1.0, 1.0, 1.0, 0.0]))
    assert s.mean[0] == pytest.approx(0.0, abs=1e-15)
    assert s.cov[0, 0] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("features", "weights", "message"),
    [
        (np.zeros((1, 3)), None, "at least 2 samples"),
        (np.zeros(5), None, "2-D"),
        (np.array([[0.0, np.nan], [1.0, 2.0]]), None, "NaN"),
        (np.zeros((3, 2)), np.array([1.0, -1.0, 1.0]), "non-negative"),
        (np.zeros((3, 2)), np.zeros(3), "all zero"),
        (np.zeros((3, 2)), np.ones(4), "shape"),
        (np.zeros((3, 2)), np.array([0.0, 5.0, 0.0]), "single sample"),
    ],
)
def test_gaussian_stats_bad_input(features, weights, message: str) -> None:
    with pytest.raises(DataError, match=message):
        gaussian_stats(features, weights)


def test_fd_dimension_mismatch() -> None:
    with pytest.raises(DataError, match="dimensions differ"):
        fd(np.zeros((4, 2)), np.zeros((4, 3)))


# --- manifold precision / recall, nearest neighbours ----------------------------------------

LINE = np.arange(10.0)[:, None]  # real points 0..9 on a line: k=1 radii are all 1


def test_pairwise_and_nearest_distances() -> None:
    a = np.array([[0.0, 0.0], [3.0, 4.0]])
    b = np.array([[0.0, 0.0], [6.0, 8.0], [3.0, 0.0]])
    np.testing.assert_allclose(pairwise_sq_distances(a, b), [[0, 100, 9], [25, 25, 16]])
    np.testing.assert_allclose(nearest_distances(a, b), [0.0, 4.0])
    np.testing.assert_allclose(nearest_distances(a, b, k=2), [3.0, 5.0])
    pts = np.array([[0.0], [1.0], [3.0], [7.0]])
    np.testing.assert_allclose(knn_radii(pts, 1), [1, 1, 2, 4])
    np.testing.assert_allclose(knn_radii(pts, 2), [3, 2, 3, 6])
    # chunking does not change the result
    np.testing.assert_allclose(knn_radii(pts, 2, chunk=1), knn_radii(pts, 2))


def test_precision_recall_fake_covers_part_of_real() -> None:
    fake = np.array([[0.0], [1.0], [2.0], [3.0]])  # fake radii (k=1) all 1: covers 0..4
    assert precision_recall(LINE, fake, k=1) == (1.0, 0.5)
    assert precision_recall(LINE, fake, k=1, chunk=3) == (1.0, 0.5)


def test_precision_recall_outlier() -> None:
    # 0.5 and 2 lie in real balls, 20 does not -> precision 2/3. Fake radii: 1.5, 1.5, 18, and
    # the ball of 20 (radius 18) reaches down to 2, so every real point is covered -> recall 1.
    fake = np.array([[0.5], [2.0], [20.0]])
    precision, recall = precision_recall(LINE, fake, k=1)
    assert precision == pytest.approx(2 / 3)
    assert recall == 1.0


def test_precision_recall_bad_input() -> None:
    with pytest.raises(DataError, match="more than k"):
        precision_recall(LINE, LINE[:3], k=3)
    with pytest.raises(DataError, match="different dimensions"):
        precision_recall(LINE, np.zeros((10, 2)), k=3)


def test_memorization_copies_and_fresh_samples() -> None:
    rng = np.random.default_rng(3)
    train = rng.normal(size=(300, 4, 2, 1))  # any [N,...] shape is flattened
    test = rng.normal(size=(200, 4, 2, 1))
    copies = memorization(train[:60] + 0.0, train, test)
    assert copies["nn_ratio"] == 0.0
    assert copies["median_nn_synthetic"] == 0.0
    assert copies["copy_fraction"] == 1.0
    fresh = memorization(rng.normal(size=(200, 4, 2, 1)), train, test, chunk=7)
    assert 0.7 < fresh["nn_ratio"] < 1.4
    assert fresh["copy_fraction"] < 0.15
    assert fresh["median_nn_test"] == copies["median_nn_test"] > 0


def test_memorization_bad_input() -> None:
    with pytest.raises(DataError, match="synthetic set is empty"):
        memorization(np.zeros((0, 3)), np.zeros((4, 3)), np.ones((4, 3)))
    with pytest.raises(DataError, match="shapes differ"):
        memorization(np.zeros((2, 3)), np.zeros((4, 3)), np.ones((4, 2, 2)))


# --- image metrics ------------------------------------------------------------------------------


def test_psnr_known_values() -> None:
    a = np.random.default_rng(4).integers(0, 255, size=(3, 8, 8, 3), dtype=np.uint8)
    values = psnr(a, a + 1)  # uint8 + 1 stays in range: every pixel differs by exactly 1
    assert values.shape == (3,)
    np.testing.assert_allclose(values, 20 * math.log10(255), rtol=1e-12)
    assert 20 * math.log10(255) == pytest.approx(48.13, abs=0.01)
    assert psnr(a[0], a[0]) == math.inf
    assert isinstance(psnr(a[0, :, :, 0], a[0, :, :, 0] + 2), float)


def gaussian_window(size: int, sigma: float) -> np.ndarray:
    t = np.arange(size) - (size - 1) / 2
    g = np.exp(-(t**2) / (2 * sigma**2))
    w = np.outer(g, g)
    return w / w.sum()


def ssim_brute_force(x: np.ndarray, y: np.ndarray, size: int = 11, sigma: float = 1.5) -> float:
    """SSIM of two single-channel images with an explicit 2-D window at every valid position."""
    w = gaussian_window(size, sigma)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for i in range(x.shape[0] - size + 1):
        for j in range(x.shape[1] - size + 1):
            px, py = x[i : i + size, j : j + size], y[i : i + size, j : j + size]
            mx, my = np.sum(w * px), np.sum(w * py)
            vx, vy = np.sum(w * (px - mx) ** 2), np.sum(w * (py - my) ** 2)
            cxy = np.sum(w * (px - mx) * (py - my))
            values.append(
                (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
            )
    return float(np.mean(values))


def test_ssim_matches_brute_force() -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, size=(13, 14)).astype(np.float64)
    y = np.clip(x + rng.normal(0, 30, size=x.shape), 0, 255)
    assert ssim(x, y) == pytest.approx(ssim_brute_force(x, y), rel=1e-10)
    # 7x9 image: window shrinks to 7 with sigma 1.5 * 7 / 11
    assert ssim(x[:7, :9], y[:7, :9]) == pytest.approx(
        ssim_brute_force(x[:7, :9], y[:7, :9], 7, 1.5 * 7 / 11), rel=1e-10
    )


def test_ssim_identity_noise_and_constant_images() -> None:
    rng = np.random.default_rng(6)
    img = rng.integers(0, 256, size=(2, 16, 16, 3), dtype=np.uint8)
    np.testing.assert_allclose(ssim(img, img), 1.0, rtol=1e-12)
    low = np.clip(img + rng.normal(0, 10, img.shape), 0, 255)
    high = np.clip(img + rng.normal(0, 60, img.shape), 0, 255)
    assert (ssim(img, high) < ssim(img, low)).all()
    assert (ssim(img, low) < 1.0).all()
    # constant images: only the luminance term differs from 1
    c1, c2, k = 100.0, 150.0, (0.01 * 255) ** 2
    const = ssim(np.full((16, 16), c1), np.full((16, 16), c2))
    assert const == pytest.approx((2 * c1 * c2 + k) / (c1**2 + c2**2 + k), rel=1e-9)


def test_ssim_bad_input() -> None:
    with pytest.raises(DataError, match="different shapes"):
        ssim(np.zeros((8, 8)), np.zeros((8, 9)))
    with pytest.raises(DataError, match="too small"):
        ssim(np.zeros((2, 8)), np.zeros((2, 8)))
    with pytest.raises(DataError, match=r"\[N,H,W,C\]"):
        psnr(np.zeros((1, 2, 3, 4, 5)), np.zeros((1, 2, 3, 4, 5)))


def test_ms_ssim() -> None:
    sides, expected = (6, 7, 13, 14, 28, 56, 112, 256), (1, 1, 1, 2, 3, 4, 5, 5)
    assert tuple(ms_ssim_scales(s, s) for s in sides) == expected
    assert ms_ssim_scales(28, 100) == 3
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, size=(3, 28, 28, 1), dtype=np.uint8)
    np.testing.assert_allclose(ms_ssim(img, img), 1.0, rtol=1e-12)
    noisy = np.clip(img + rng.normal(0, 40, img.shape), 0, 255)
    scores = ms_ssim(img, noisy)
    assert scores.shape == (3,)
    assert ((scores > 0) & (scores < 1)).all()
    # one scale is plain SSIM; three scales combine cs at 28 and 14 with SSIM at 7
    np.testing.assert_allclose(ms_ssim(img, noisy, scales=1), ssim(img, noisy), rtol=1e-12)
    with pytest.raises(DataError, match="too small for 5"):
        ms_ssim(img, noisy, scales=5)


def test_rgb_to_luma() -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 10, 10]]], dtype=np.uint8)
    y = rgb_to_luma(rgb)
    assert y.shape == (1, 4, 1) and y.dtype == np.float64
    np.testing.assert_allclose(y[0, :, 0], [76.245, 149.685, 29.07, 10.0], rtol=1e-12)
    gray = np.arange(6, dtype=np.uint8).reshape(1, 2, 3, 1)
    np.testing.assert_array_equal(rgb_to_luma(gray), gray.astype(np.float64))
    with pytest.raises(DataError, match="rgb_to_luma"):
        rgb_to_luma(np.zeros((4, 4, 2)))


def test_ms_ssim_diversity() -> None:
    rng = np.random.default_rng(8)
    one = rng.integers(0, 256, size=(1, 28, 28, 1), dtype=np.uint8)
    assert ms_ssim_diversity(np.repeat(one, 5, axis=0)) == pytest.approx(0.0, abs=1e-12)
    noise = rng.integers(0, 256, size=(12, 28, 28, 1), dtype=np.uint8)
    assert ms_ssim_diversity(noise, pairs=20) > 0.5
    assert ms_ssim_diversity(noise, pairs=20, seed=1) == ms_ssim_diversity(noise, pairs=20, seed=1)
    assert ms_ssim_diversity(noise[:2]) > 0.5  # only one pair exists
    with pytest.raises(DataError, match="at least 2 images"):
        ms_ssim_diversity(one)


# --- classification ----------------------------------------------------------------------------

Y_TRUE = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
Y_PRED = np.array([0, 0, 1, 3, 1, 1, 0, 2, 2, 1])  # class 3 predicted once, never true


def test_confusion_matrix() -> None:
    expected = [[2, 1, 0, 1], [1, 2, 0, 0], [0, 1, 2, 0], [0, 0, 0, 0]]
    cm = confusion_matrix(Y_TRUE, Y_PRED, 4)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, expected)


def test_classification_scores_by_hand() -> None:
    s = classification_scores(Y_TRUE, Y_PRED, 4)
    # recall 2/4, 2/3, 2/3; precision 2/3, 2/4, 2/2 -> F1 4/7, 4/7, 4/5
    assert s["count"] == 10
    assert s["accuracy"] == pytest.approx(0.6)
    assert s["balanced_accuracy"] == pytest.approx((1 / 2 + 2 / 3 + 2 / 3) / 3)
    assert s["macro_f1"] == pytest.approx((4 / 7 + 4 / 7 + 4 / 5) / 3)
    assert s["gmean"] == pytest.approx((1 / 2 * 2 / 3 * 2 / 3) ** (1 / 3))
    assert s["per_class_recall"] == pytest.approx([1 / 2, 2 / 3, 2 / 3, None])
    assert s["per_class_f1"][3] is None
    assert s["per_class_f1"][:3] == pytest.approx([4 / 7, 4 / 7, 4 / 5])
    assert all(type(v) is float for v in s["per_class_recall"][:3])


def test_classification_scores_zero_recall_class() -> None:
    s = classification_scores(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 0]), 2)
    assert s["gmean"] == 0.0
    assert s["per_class_f1"] == pytest.approx([2 * (1 / 2) / (1 / 2 + 1), 0.0])
    assert s["balanced_accuracy"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "message"),
    [
        (np.array([0, 3]), np.array([0, 1]), r"y_true has labels outside \[0, 3\)"),
        (np.array([0, 1]), np.array([0, -1]), "y_pred has labels outside"),
        (np.array([0, 1]), np.array([0, 1, 2]), "lengths differ"),
        (np.array([], dtype=int), np.array([], dtype=int), "non-empty"),
        (np.array([0.5, 1.0]), np.array([0, 1]), "integer labels"),
    ],
)
def test_classification_bad_input(y_true, y_pred, message: str) -> None:
    with pytest.raises(DataError, match=message):
        classification_scores(y_true, y_pred, 3)


# -- our hand-written metrics against the libraries that have them ----------------------
# (docs/architecture.md, "Libraries and hand-written code": why each is kept)


def test_psnr_and_ssim_equal_scikit_image() -> None:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from augment.metrics import psnr, ssim

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255).astype(np.uint8)
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), rel=1e-12)
    theirs = structural_similarity(
        a, b, data_range=255, channel_axis=-1, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False,
    )  # fmt: skip
    assert ssim(a, b) == pytest.approx(theirs, abs=1e-9)


def test_classification_scores_equal_scikit_learn() -> None:
    from sklearn import metrics as sk

    from augment.metrics import classification_scores

    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 6, 500)
    y_pred = np.where(rng.random(500) < 0.7, y_true, rng.integers(0, 6, 500))
    ours = classification_scores(y_true, y_pred, 6)
    assert ours["accuracy"] == pytest.approx(sk.accuracy_score(y_true, y_pred))
    assert ours["balanced_accuracy"] == pytest.approx(sk.balanced_accuracy_score(y_true, y_pred))
    assert ours["macro_f1"] == pytest.approx(sk.f1_score(y_true, y_pred, average="macro"))
    recall = sk.recall_score(y_true, y_pred, average=None)
    assert ours["per_class_recall"] == pytest.approx(list(recall))
    assert ours["gmean"] == pytest.approx(float(np.prod(recall) ** (1 / 6)))


def test_frechet_distance_equals_scipy_sqrtm() -> None:
    """FD with scipy's general matrix square root (the formula torchmetrics and pytorch-fid
    use) against ours (symmetric eigen-decompositions)."""
    from scipy import linalg

    from augment.metrics import fd

    rng = np.random.default_rng(2)
    a = rng.normal(size=(400, 8)) @ rng.normal(size=(8, 8))
    b = rng.normal(0.5, 1.0, size=(300, 8)) @ rng.normal(size=(8, 8))
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)  # ddof 1, as ours
    covmean = linalg.sqrtm(cov_a @ cov_b).real
    theirs = ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean)
    assert fd(a, b) == pytest.approx(theirs, rel=1e-6)


def smooth_noise(n: int, side: int, seed: int) -> np.ndarray:
    """uint8 [n, side, side, 3]: white noise blurred by a 3x3 box, a 1/f-ish spectrum."""
    x = np.random.default_rng(seed).normal(size=(n, side + 2, side + 2))
    box = sum(x[:, i : i + side, j : j + side] for i in range(3) for j in range(3)) / 9
    grey = np.clip(128 + 120 * box, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def test_power_spectrum_finds_a_lattice_added_to_images() -> None:
    real = smooth_noise(64, 32, seed=0)
    yy, xx = np.mgrid[:32, :32]
    lattice = 30 * np.cos(2 * np.pi * 0.25 * (yy + xx))  # diagonal stripes: (0.25, 0.25) c/px
    striped = np.clip(smooth_noise(64, 32, seed=1) + lattice[..., None], 0, 255).astype(np.uint8)
    spectrum = power_spectrum(striped)
    assert spectrum.shape == (32, 32)
    assert np.unravel_index(np.argmax(spectrum), spectrum.shape) in {(24, 24), (8, 8)}
    found = spectral_excess(striped, real)
    assert found["peak_frequency"] == [0.25, 0.25] and found["peak_ratio"] > 10
    same = spectral_excess(smooth_noise(64, 32, seed=2), real)
    assert same["peak_ratio"] < 3 and all(0.7 < v < 1.4 for v in same["bands"].values())
    blurred = real.astype(np.float64)
    for axis in (1, 2):  # a 3-tap box along each axis: the high band loses most of its power
        blurred = (blurred + np.roll(blurred, 1, axis) + np.roll(blurred, -1, axis)) / 3
    smooth = spectral_excess(blurred, real)
    assert smooth["bands"]["high"] < 0.5 * smooth["bands"]["low"]
    with pytest.raises(DataError, match="one size"):
        spectral_excess(real[:, :16], real)
