"""k-NN manifold precision/recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall
Metric for Assessing Generative Models") and nearest-neighbour copy checks.

Distances are computed in chunks of query rows, so at most ``chunk x M`` distances exist at
once whatever the sizes of the two sets.
"""

from __future__ import annotations

import numpy as np

from augment.errors import DataError


def _as_points(points: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise DataError(f"{name} must be a non-empty 2-D array [N,D], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise DataError(f"{name} has NaN or infinite values")
    return x


def _check_same_dim(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise DataError(f"{names} have different dimensions: {a.shape[1]} vs {b.shape[1]}")


def pairwise_sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances [N,M] between a [N,D] and b [M,D], clipped at >= 0."""
    a = _as_points(a, "a")
    b = _as_points(b, "b")
    _check_same_dim(a, b, "a and b")
    return _sq_distances(a, b, np.einsum("ij,ij->i", b, b))


def _sq_distances(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """||a||^2 + ||b||^2 - 2 a.b for validated float64 arrays (b_sq precomputed once)."""
    d2 = np.einsum("ij,ij->i", a, a)[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d2, 0.0, out=d2)


def _kth_sq_distances(
    queries: np.ndarray, references: np.ndarray, k: int, chunk: int, exclude_self: bool
) -> np.ndarray:
    """Squared distance from each query to its k-th nearest reference (validated inputs)."""
    available = references.shape[0] - (1 if exclude_self else 0)
    if k < 1 or k > available:
        raise DataError(f"k={k} needs 1 <= k <= {available} (number of candidate neighbours)")
    if chunk < 1:
        raise DataError(f"chunk must be >= 1, got {chunk}")
    if exclude_self and queries.shape != references.shape:
        raise DataError("exclude_self=True needs queries and references to be the same set")
    ref_sq = np.einsum("ij,ij->i", references, references)
    out = np.empty(queries.shape[0])
    for start in range(0, queries.shape[0], chunk):
        q = queries[start : start + chunk]
        d2 = _sq_distances(q, references, ref_sq)
        if exclude_self:
            rows = np.arange(q.shape[0])
            d2[rows, start + rows] = np.inf
        idx = np.argpartition(d2, k - 1, axis=1)[:, k - 1]
        # recompute the chosen distance directly: exact 0 for copies, no cancellation error
        out[start : start + q.shape[0]] = np.sum((q - references[idx]) ** 2, axis=1)
    return out


def nearest_distances(
    queries: np.ndarray,
    references: np.ndarray,
    k: int = 1,
    chunk: int = 1024,
    exclude_self: bool = False,
) -> np.ndarray:
    """Distance [N] from each query [N,D] to its k-th nearest reference [M,D].

    ``exclude_self=True`` is for queries == references: the row's own point is skipped, so the
    result is the distance to the k-th nearest OTHER point.
    """
    q = _as_points(queries, "queries")
    r = _as_points(references, "references")
    _check_same_dim(q, r, "queries and references")
    return np.sqrt(_kth_sq_distances(q, r, k, chunk, exclude_self))


def knn_radii(points: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """Distance [N] of each point [N,D] to its k-th nearest other point of the same set."""
    return nearest_distances(points, points, k=k, chunk=chunk, exclude_self=True)


def _fraction_covered(
    queries: np.ndarray, centres: np.ndarray, radii_sq: np.ndarray, chunk: int
) -> float:
    """Fraction of queries within distance radius_j of at least one centre j."""
    centre_sq = np.einsum("ij,ij->i", centres, centres)
    covered = 0
    for start in range(0, queries.shape[0], chunk):
        d2 = _sq_distances(queries[start : start + chunk], centres, centre_sq)
        covered += int(np.count_nonzero((d2 <= radii_sq[None, :]).any(axis=1)))
    return covered / queries.shape[0]


def precision_recall(
    real: np.ndarray, fake: np.ndarray, k: int = 3, chunk: int = 1024
) -> tuple[float, float]:
    """k-NN precision and recall of fake [M,D] against real [N,D] (Kynkäänniemi et al. 2019).

    Precision: fraction of fake samples inside at least one real sample's k-NN ball.
    Recall: fraction of real samples inside at least one fake sample's k-NN ball.
    """
    real = _as_points(real, "real")
    fake = _as_points(fake, "fake")
    _check_same_dim(real, fake, "real and fake")
    for name, x in (("real", real), ("fake", fake)):
        if x.shape[0] <= k:
            raise DataError(f"{name} has {x.shape[0]} samples; k={k} needs more than k")
    real_r2 = _kth_sq_distances(real, real, k, chunk, exclude_self=True)
    fake_r2 = _kth_sq_distances(fake, fake, k, chunk, exclude_self=True)
    precision = _fraction_covered(fake, real, real_r2, chunk)
    recall = _fraction_covered(real, fake, fake_r2, chunk)
    return precision, recall


def memorization(
    synthetic: np.ndarray, train: np.ndarray, test: np.ndarray, chunk: int = 1024
) -> dict[str, float]:
    """Copy check of synthetic samples against the training set, in the space given.

    Inputs are [N,...] arrays (flattened pixels or features), flattened to [N,-1]. d_syn is the
    nearest distance synthetic->train, d_test the nearest distance test->train (fresh real
    samples). ``nn_ratio`` = median(d_syn)/median(d_test) is ~1 without memorisation and << 1
    for copies; ``copy_fraction`` = fraction of d_syn below the 5% quantile of d_test (~0.05
    expected without memorisation).
    """
    sets = {"synthetic": synthetic, "train": train, "test": test}
    flat: dict[str, np.ndarray] = {}
    for name, x in sets.items():
        arr = np.asarray(x)
        if arr.ndim < 1 or arr.shape[0] == 0:
            raise DataError(f"{name} set is empty")
        flat[name] = _as_points(arr.reshape(arr.shape[0], -1), name)
    shapes = {name: np.shape(x)[1:] for name, x in sets.items()}
    if len(set(shapes.values())) != 1:
        raise DataError(f"sample shapes differ: {shapes}")

    d_syn = np.sqrt(_kth_sq_distances(flat["synthetic"], flat["train"], 1, chunk, False))
    d_test = np.sqrt(_kth_sq_distances(flat["test"], flat["train"], 1, chunk, False))
    median_syn = float(np.median(d_syn))
    median_test = float(np.median(d_test))
    if median_test == 0.0:
        raise DataError("most test samples are exact copies of train samples (median distance 0)")
    threshold = float(np.quantile(d_test, 0.05))
    return {
        "nn_ratio": median_syn / median_test,
        "copy_fraction": float(np.mean(d_syn < threshold)),
        "median_nn_synthetic": median_syn,
        "median_nn_test": median_test,
    }
