"""Which synthetic samples the synthesize stage keeps: per-class thresholds and near copies.

**Calibrated thresholds.** A single threshold on the judge's probability (0.9) asks more
of a tail class than of the head: the judge itself learnt that class from a few images,
so even real images of it score low, and most of its samples are rejected (and the quota
is then filled with rejects). Calibrated on the validation split, class ``k``'s threshold
is the score that a fraction ``real_pass_rate`` of its *real* val images reach:
``t_k = quantile_{1 - pass_rate}({p_judge(k | x) : x in val_k})``. A sample is then held
to the standard of real data of its own class (DiffuLT, NeurIPS 2024, filters with a
feature extractor in the same spirit).

**Near copies.** A generator trained on 15 images may reproduce them. A sample is a near
copy when its nearest real train image of its class (Euclidean distance in pixels) is
closer than the ``copy_quantile`` quantile of the same distance for real val images of
that class (fresh real data), i.e. closer than almost any unseen real image comes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from augment.classifier import Classifier, predict_proba

log = logging.getLogger(__name__)


def calibrated_thresholds(
    judge: Classifier,
    val_images: np.ndarray,
    val_labels: Sequence[str],
    judge_index: dict[str, int],
    pass_rate: float,
    fallback: float,
) -> dict[str, float]:
    """Per class: the judge's score that ``pass_rate`` of its real val images reach.

    ``judge_index`` maps each class name to the judge's output; a class without val images
    keeps ``fallback`` (with a warning).
    """
    labels = np.asarray(val_labels, str)
    probabilities = predict_proba(judge, val_images) if len(val_images) else None
    thresholds: dict[str, float] = {}
    for name, index in judge_index.items():
        rows = np.flatnonzero(labels == name)
        if probabilities is None or len(rows) == 0:
            log.warning(
                "class %r has no val images: its filter threshold stays %.2f", name, fallback
            )
            thresholds[name] = fallback
            continue
        scores = probabilities[rows, index].astype(np.float64)
        thresholds[name] = float(np.quantile(scores, 1.0 - pass_rate))
    return thresholds


def _flat(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float32)


def nearest_distances(
    images: np.ndarray, reference: np.ndarray, exclude_self: bool = False
) -> np.ndarray:
    """Euclidean pixel distance f64[N] of each image to its nearest ``reference`` image.

    Uses ``|a - b|^2 = |a|^2 + |b|^2 - 2 a.b`` in chunks; ``exclude_self`` skips the
    diagonal (``images`` is ``reference``: leave-one-out distances).
    """
    a, b = _flat(images), _flat(reference)
    b_norms = (b.astype(np.float64) ** 2).sum(1)
    out = np.empty(len(a), np.float64)
    for start in range(0, len(a), 512):
        chunk = a[start : start + 512]
        squared = (chunk.astype(np.float64) ** 2).sum(1)[:, None] + b_norms[None, :]
        squared -= 2.0 * (chunk @ b.T).astype(np.float64)
        if exclude_self:
            rows = np.arange(len(chunk))
            squared[rows, start + rows] = np.inf
        out[start : start + len(chunk)] = np.sqrt(np.clip(squared.min(1), 0, None))
    return out


class CopyCheck:
    """Flags samples nearer to a real train image of their class than fresh real data.

    ``radius`` is the ``quantile`` of the val images' nearest-train distances (of
    leave-one-out train distances when the class has no val images).
    """

    def __init__(self, train: np.ndarray, val: np.ndarray, quantile: float) -> None:
        self.train = train
        if len(val):
            distances = nearest_distances(val, train)
        elif len(train) > 1:
            distances = nearest_distances(train, train, exclude_self=True)
        else:
            distances = np.zeros(1)
        self.radius = float(np.quantile(distances, quantile))

    def keep(self, images: np.ndarray) -> np.ndarray:
        """bool[N]: True where the sample is no near copy of a train image."""
        if len(images) == 0 or len(self.train) == 0:
            return np.ones(len(images), bool)
        return nearest_distances(images, self.train) >= self.radius
