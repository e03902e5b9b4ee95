"""GAN quality, per variant and per class, in the features of our own classifier.

The features are the penultimate layer of a downstream classifier trained on the real
train split (the evaluate stage uses its ``reweight`` run 0). That is our own feature
space, *not* Inception FID: figures compare variants and runs of this pipeline, not
papers. The Fréchet distance to the test split sits beside two references in the same
space: the real-vs-real floor (train vs test) and a blurred train set. Class mixes are
re-weighted to the test split's, so a long-tailed train split is not penalised for its
mix. k-NN precision/recall (Kynkäänniemi et al., 2019) use the same features; diversity
is 1 - mean MS-SSIM of random same-class pairs, relative to the real train images; the
memorization check compares nearest-neighbour pixel distances to the train set of
synthetic images and of test images.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from pydantic import Field
from torchvision.transforms.v2.functional import gaussian_blur

from augment.classifier import Classifier, extract_features
from augment.config import StrictModel
from augment.data.arrays import Images
from augment.data.images import to_tensor, to_uint8
from augment.errors import DataError
from augment.metrics import fd, memorization, ms_ssim_diversity, precision_recall
from augment.seeding import derive_seed

log = logging.getLogger(__name__)


class QualityConfig(StrictModel):
    """GAN quality metrics (``evaluate.quality``)."""

    enabled: bool = True
    k: int = Field(3, ge=1, description="neighbours of the k-NN precision/recall")
    max_per_class: int = Field(1000, ge=2, description="images per class and set measured")
    diversity_pairs: int = Field(200, ge=1, description="random same-class pairs per class")
    blur_sigma: float = Field(1.0, gt=0, description="Gaussian blur of the blurred reference")


def blurred(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-blurred copy of uint8 N x H x W x C images (kernel ~ 4 sigma wide, odd)."""
    size = 2 * math.ceil(2 * sigma) + 1
    x = to_tensor(images)
    with torch.no_grad():
        out = gaussian_blur(x, [size, size], [sigma, sigma])
    return to_uint8(out)


def class_weights_like(labels: np.ndarray, reference: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-sample weights giving ``labels`` the class mix of ``reference`` (absent: 0)."""
    have = np.bincount(labels, minlength=num_classes).astype(np.float64)
    want = np.bincount(reference, minlength=num_classes) / len(reference)
    per_class = np.divide(want, have, out=np.zeros_like(want), where=have > 0)
    return per_class[labels]


def capped(data: Images, limit: int, seed: int, name: str) -> Images:
    """At most ``limit`` random images per class (all of a smaller class)."""
    rng = np.random.default_rng(derive_seed(seed, "evaluate", "quality", name))
    keep = []
    for k in np.unique(data.labels):
        members = np.flatnonzero(data.labels == k)
        keep.append(np.sort(rng.choice(members, min(limit, len(members)), replace=False)))
    index = np.concatenate(keep) if keep else np.zeros(0, np.int64)
    return Images(data.images[index], data.labels[index])


def _safe(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(...)``, or None when the sets are too small for it (DataError)."""
    try:
        return fn(*args, **kwargs)
    except DataError as exc:
        log.debug("metric skipped: %s", exc)
        return None


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def quality(
    model: Classifier,
    train: Images,
    test: Images,
    synthetic: Images,
    classes: Sequence[str],
    config: QualityConfig,
    seed: int,
) -> dict[str, Any]:
    """GAN quality of ``synthetic`` (overall and per class) against the real splits."""
    k = config.k
    n = len(classes)
    train = capped(train, config.max_per_class, seed, "train")
    test = capped(test, config.max_per_class, seed, "test")
    synthetic = capped(synthetic, config.max_per_class, seed, "synthetic")
    blur = Images(blurred(train.images, config.blur_sigma), train.labels)
    sets = {"train": train, "test": test, "synthetic": synthetic, "blur": blur}
    feats = {
        name: extract_features(model, data.images).astype(np.float64) for name, data in sets.items()
    }
    labels = {name: data.labels for name, data in sets.items()}

    def distance(name: str, mask: dict[str, np.ndarray] | None = None) -> float | None:
        x, y = feats[name], labels[name]
        t = feats["test"]
        if mask is not None:
            x, y, t = x[mask[name]], y[mask[name]], t[mask["test"]]
        w = class_weights_like(
            y, labels["test"] if mask is None else labels["test"][mask["test"]], n
        )
        return _safe(fd, x, t, weights_a=w)

    def flat(images: np.ndarray) -> np.ndarray:
        return images.reshape(len(images), -1).astype(np.float32)

    def summary(mask: dict[str, np.ndarray] | None, class_index: int | None) -> dict[str, Any]:
        pick = (
            (lambda name: feats[name]) if mask is None else (lambda name: feats[name][mask[name]])
        )
        value: dict[str, Any] = {
            "synthetic_images": int(len(pick("synthetic"))),
            "fd": distance("synthetic", mask),
            "fd_floor": distance("train", mask),
            "fd_blurred": distance("blur", mask),
        }
        value["fd_over_floor"] = _ratio(value["fd"], value["fd_floor"])
        pr = _safe(precision_recall, pick("test"), pick("synthetic"), k=k)
        value["precision"], value["recall"] = pr if pr is not None else (None, None)
        if class_index is not None:
            syn, real = synthetic.of_class(class_index), train.of_class(class_index)
            div_syn = _safe(ms_ssim_diversity, syn, pairs=config.diversity_pairs, seed=seed)
            div_real = _safe(ms_ssim_diversity, real, pairs=config.diversity_pairs, seed=seed)
            value["diversity"], value["diversity_real"] = div_syn, div_real
            value["diversity_ratio"] = _ratio(div_syn, div_real)
            copy = _safe(memorization, flat(syn), flat(real), flat(test.of_class(class_index)))
        else:
            copy = _safe(
                memorization, flat(synthetic.images), flat(train.images), flat(test.images)
            )
        value["nn_ratio"] = None if copy is None else copy["nn_ratio"]
        value["copy_fraction"] = None if copy is None else copy["copy_fraction"]
        return value

    per_class = {}
    for c, name in enumerate(classes):
        mask = {key: labels[key] == c for key in labels}
        per_class[name] = summary(mask, c)
    overall = summary(None, None)
    ratios = [v["diversity_ratio"] for v in per_class.values() if v["diversity_ratio"] is not None]
    overall["diversity_ratio"] = float(np.mean(ratios)) if ratios else None
    return {"overall": overall, "classes": per_class}
