"""Scores of a downstream classifier from integer labels in [0, K).

Class-averaged scores (balanced accuracy, macro-F1, G-mean) average over the classes present
in y_true, so a class missing from the evaluation set neither helps nor hurts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from augment.errors import DataError


def _as_labels(labels: np.ndarray, name: str, num_classes: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0:
        raise DataError(f"{name} must be a non-empty 1-D label array, got shape {y.shape}")
    if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all():
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise DataError(f"{name} must hold integer labels, got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= num_classes:
        raise DataError(
            f"{name} has labels outside [0, {num_classes}): min {y.min()}, max {y.max()}"
        )
    return y.astype(np.int64)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts int64 [K,K]: row = true class, column = predicted class."""
    if num_classes < 1:
        raise DataError(f"num_classes must be >= 1, got {num_classes}")
    t = _as_labels(y_true, "y_true", num_classes)
    p = _as_labels(y_pred, "y_pred", num_classes)
    if t.shape != p.shape:
        raise DataError(f"y_true and y_pred lengths differ: {t.size} vs {p.size}")
    counts = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def classification_scores(
    y_true: np.ndarray, y_pred: np.ndarray, num_classes: int
) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro-F1, G-mean and per-class recall/F1 (plain floats).

    Per-class lists have length K with None for classes absent from y_true. The precision of a
    class never predicted is 0, and F1 is 0 when precision + recall = 0.
    """
    cm = confusion_matrix(y_true, y_pred, num_classes)
    hits = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)  # true counts per class
    predicted = cm.sum(axis=0)
    present = support > 0

    recall = np.divide(hits, support, out=np.zeros(num_classes), where=present)
    precision = np.divide(hits, predicted, out=np.zeros(num_classes), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(num_classes), where=denom > 0)

    def per_class(values: np.ndarray) -> list[float | None]:
        return [float(v) if ok else None for v, ok in zip(values, present, strict=True)]

    present_recall = recall[present]
    gmean = 0.0 if (present_recall == 0).any() else math.exp(np.mean(np.log(present_recall)))
    return {
        "count": int(cm.sum()),
        "accuracy": float(hits.sum() / cm.sum()),
        "balanced_accuracy": float(present_recall.mean()),
        "macro_f1": float(f1[present].mean()),
        "gmean": float(gmean),
        "per_class_recall": per_class(recall),
        "per_class_f1": per_class(f1),
    }
