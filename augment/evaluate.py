"""Does synthetic data help? Downstream experiments and GAN quality metrics.

**Downstream.** The same small CNN (:mod:`augment.classifier`), optimizer and number of
optimizer steps, trained under each condition on the long-tailed train split and scored
on the balanced real test split:

==============  ==========================================================================
baseline        the real train images only
oversample      real images; every class re-drawn at random up to the largest class
reweight        real images; class-weighted cross-entropy
gan             real + synthetic images that balance the classes (one per variant)
gan+filter      the same, keeping only samples the judge classifier recognises
synthetic-only  class-balanced synthetic images only: classification accuracy score (CAS)
full            the untouched train split before the long tail: the ceiling
==============  ==========================================================================

Every condition gets ``ceil(epochs * K * n_max / batch_size)`` steps (``K`` classes,
``n_max`` the largest real class), so none wins by seeing more batches. Run ``r`` of every
condition uses the same seed, so conditions differ only in their data.

**Quality** (per variant, overall and per class) is measured in the penultimate features
of the ``reweight`` classifier of run 0, trained on the real train split. That is our own
feature space, *not* Inception FID: figures compare variants and runs of this pipeline,
not papers. The Fréchet distance to the test split sits beside two references in the same
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
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torchvision.transforms.v2.functional import gaussian_blur

from augment.classifier import (
    Classifier,
    ClassifierConfig,
    extract_features,
    predict_proba,
    train_classifier,
)
from augment.config import StrictModel
from augment.data.images import to_tensor, to_uint8
from augment.errors import DataError
from augment.metrics import (
    classification_scores,
    fd,
    memorization,
    ms_ssim_diversity,
    precision_recall,
)
from augment.seeding import derive_seed

log = logging.getLogger(__name__)

REAL_CONDITIONS = ("baseline", "oversample", "reweight")
GAN_CONDITIONS = ("gan", "gan+filter", "synthetic-only")
CONDITIONS = (*REAL_CONDITIONS, *GAN_CONDITIONS, "full")
ConditionName = Literal[
    "baseline", "oversample", "reweight", "gan", "gan+filter", "synthetic-only", "full"
]
SCORES = ("balanced_accuracy", "macro_f1", "gmean", "accuracy")
FEATURE_CONDITION = "reweight"  # its run 0 is the feature network of the quality metrics


# -- configuration -------------------------------------------------------------------------


class DownstreamModel(StrictModel):
    """The downstream classifier: :class:`augment.classifier.Classifier`, same for all."""

    width: int = Field(32, ge=4)
    batch_size: int = Field(128, ge=2)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(5e-4, ge=0)
    augment: bool = Field(True, description="random 1-2 pixel shifts while training")
    device: Literal["auto", "cpu", "cuda"] = "auto"

    def classifier_config(self, balance: str) -> ClassifierConfig:
        return ClassifierConfig(balance=balance, **self.model_dump())


class QualityConfig(StrictModel):
    """GAN quality metrics (``evaluate.quality``)."""

    enabled: bool = True
    k: int = Field(3, ge=1, description="neighbours of the k-NN precision/recall")
    max_per_class: int = Field(1000, ge=2, description="images per class and set measured")
    diversity_pairs: int = Field(200, ge=1, description="random same-class pairs per class")
    blur_sigma: float = Field(1.0, gt=0, description="Gaussian blur of the blurred reference")


class EvaluateConfig(StrictModel):
    """params.yaml ``evaluate``."""

    conditions: list[ConditionName] = Field(default_factory=lambda: list(CONDITIONS))
    seeds: int = Field(1, ge=1, description="runs per condition (mean and std reported)")
    epochs: float = Field(
        8, gt=0, description="passes over a class-balanced train set; same steps for all"
    )
    model: DownstreamModel = Field(default_factory=DownstreamModel)
    quality: QualityConfig = Field(default_factory=QualityConfig)


# -- data of the conditions ----------------------------------------------------------------


@dataclass
class Images:
    """uint8 N x H x W x C images with class-index labels."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def of_class(self, k: int) -> np.ndarray:
        return self.images[self.labels == k]

    def counts(self, num_classes: int) -> np.ndarray:
        return np.bincount(self.labels, minlength=num_classes)

    @staticmethod
    def concat(parts: Sequence[Images]) -> Images:
        return Images(
            np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts])
        )

    @staticmethod
    def from_classes(arrays: Sequence[np.ndarray]) -> Images:
        """Images of class ``k`` from ``arrays[k]``."""
        labels = np.concatenate([np.full(len(a), k, np.int64) for k, a in enumerate(arrays)])
        return Images(np.concatenate(arrays), labels)


@dataclass
class TrainingSet:
    """The data of one condition (and variant, for the GAN conditions)."""

    condition: str
    data: Images
    balance: Literal["none", "reweight"] = "none"
    variant: str | None = None

    @property
    def key(self) -> str:
        return self.condition if self.variant is None else f"{self.condition}@{self.variant}"


def oversampled(real: Images, num_classes: int, seed: int) -> Images:
    """Every real image once, plus random repeats of each class up to the largest class."""
    counts = real.counts(num_classes)
    rng = np.random.default_rng(derive_seed(seed, "evaluate", "oversample"))
    picks = [np.arange(len(real))]
    for k in range(num_classes):
        members = np.flatnonzero(real.labels == k)
        if len(members):
            picks.append(rng.choice(members, counts.max() - len(members), replace=True))
    index = np.concatenate(picks)
    return Images(real.images[index], real.labels[index])


def real_sets(
    real: Images, full: Images | None, conditions: Sequence[str], num_classes: int, seed: int
) -> list[TrainingSet]:
    """The conditions that need no generator, in the order of ``conditions``."""
    sets = []
    for name in conditions:
        if name == "baseline":
            sets.append(TrainingSet(name, real))
        elif name == "oversample":
            sets.append(TrainingSet(name, oversampled(real, num_classes, seed)))
        elif name == "reweight":
            sets.append(TrainingSet(name, real, balance="reweight"))
        elif name == "full" and full is not None:
            sets.append(TrainingSet(name, full))
        elif name == "full":
            log.warning("no untouched train split (prepare.keep_full): 'full' is skipped")
    return sets


def gan_sets(
    real: Images,
    variant: str,
    synthetic: dict[str, Images],
    conditions: Sequence[str],
) -> list[TrainingSet]:
    """``gan``, ``gan+filter`` and ``synthetic-only`` sets of one variant.

    ``synthetic`` maps ``"gan"``/``"gan+filter"`` to the balancing synthetic images (without
    and with the quality filter) and ``"synthetic-only"`` to a class-balanced set.
    """
    sets = []
    for name in conditions:
        if name in ("gan", "gan+filter"):
            data = Images.concat([real, synthetic[name]])
            sets.append(TrainingSet(name, data, variant=variant))
        elif name == "synthetic-only":
            sets.append(TrainingSet(name, synthetic[name], variant=variant))
    return sets


# -- downstream runs -----------------------------------------------------------------------


def training_steps(real: Images, num_classes: int, config: EvaluateConfig) -> int:
    """``ceil(epochs * K * n_max / batch_size)``: the steps every condition trains for."""
    balanced = num_classes * int(real.counts(num_classes).max())
    return max(1, math.ceil(config.epochs * balanced / config.model.batch_size))


@dataclass
class Downstream:
    """Scores of every run of every condition, and the feature network."""

    classes: list[str]
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    sets: dict[str, TrainingSet] = field(default_factory=dict)
    feature_model: Classifier | None = None

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per condition: mean/std of each score, mean per-class recall, gap closed."""
        out: dict[str, dict[str, Any]] = {}
        for key, runs in self.runs.items():
            ts = self.sets[key]
            entry: dict[str, Any] = {
                "condition": ts.condition,
                "variant": ts.variant,
                "train_images": len(ts.data),
                "runs": len(runs),
            }
            for score in SCORES:
                values = np.array([r[score] for r in runs], np.float64)
                entry[score] = {"mean": float(values.mean()), "std": float(values.std())}
            entry["per_class_recall"] = {
                c: _mean_or_none([r["per_class_recall"][k] for r in runs])
                for k, c in enumerate(self.classes)
            }
            out[key] = entry
        low = out.get("baseline", {}).get("balanced_accuracy", {}).get("mean")
        high = out.get("full", {}).get("balanced_accuracy", {}).get("mean")
        for entry in out.values():
            mean = entry["balanced_accuracy"]["mean"]
            gap = (
                None if low is None or high is None or high <= low else (mean - low) / (high - low)
            )
            entry["gap_closed"] = gap
        return out


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    """The mean of the values that are not None (None if there are none)."""
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def run_downstream(
    sets: Sequence[TrainingSet],
    test: Images,
    classes: Sequence[str],
    steps: int,
    config: EvaluateConfig,
    seed: int,
    progress: bool = True,
) -> Downstream:
    """Train and score ``config.seeds`` classifiers per set; keep the feature network."""
    result = Downstream(list(classes))
    for ts in sets:
        result.sets[ts.key] = ts
        result.runs[ts.key] = []
        for run in range(config.seeds):
            log.info("%s, run %d/%d: %d train images", ts.key, run + 1, config.seeds, len(ts.data))
            model = train_classifier(
                ts.data.images,
                ts.data.labels,
                len(classes),
                config.model.classifier_config(ts.balance),
                seed=derive_seed(seed, "evaluate", "run", run),
                progress=progress,
                steps=steps,
            )
            predicted = predict_proba(model, test.images).argmax(axis=1)
            scores = classification_scores(test.labels, predicted, len(classes))
            scores["run"] = run
            result.runs[ts.key].append(scores)
            log.info(
                "%s, run %d: balanced accuracy %.4f, macro-F1 %.4f",
                ts.key,
                run + 1,
                scores["balanced_accuracy"],
                scores["macro_f1"],
            )
            if ts.condition == FEATURE_CONDITION and run == 0:
                result.feature_model = model
    return result


def feature_network(
    real: Images, num_classes: int, steps: int, config: EvaluateConfig, seed: int
) -> Classifier:
    """The ``reweight`` classifier of run 0 (trained here when that condition is not run)."""
    return train_classifier(
        real.images,
        real.labels,
        num_classes,
        config.model.classifier_config("reweight"),
        seed=derive_seed(seed, "evaluate", "run", 0),
        progress=False,
        steps=steps,
    )


# -- quality -------------------------------------------------------------------------------


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


# -- the verdict ---------------------------------------------------------------------------


def verdicts(summary: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per variant: its best GAN condition against the best classic fix of the long tail.

    ``helps`` is true only when the GAN condition's mean balanced accuracy beats both
    ``oversample`` and ``reweight`` (those that ran) by more than their combined standard
    deviation; ``delta`` is the difference in balanced accuracy.
    """
    classic = {c: summary[c] for c in ("oversample", "reweight") if c in summary}
    if not classic:
        classic = {c: summary[c] for c in ("baseline",) if c in summary}
    out: dict[str, dict[str, Any]] = {}
    variants = sorted({e["variant"] for e in summary.values() if e["variant"] is not None})
    for variant in variants:
        candidates = {
            key: e
            for key, e in summary.items()
            if e["variant"] == variant and e["condition"] in ("gan", "gan+filter")
        }
        if not candidates or not classic:
            continue
        best_key = max(candidates, key=lambda key: candidates[key]["balanced_accuracy"]["mean"])
        rival_key = max(classic, key=lambda key: classic[key]["balanced_accuracy"]["mean"])
        best, rival = (
            candidates[best_key]["balanced_accuracy"],
            classic[rival_key]["balanced_accuracy"],
        )
        delta = best["mean"] - rival["mean"]
        noise = math.hypot(best["std"], rival["std"])
        out[variant] = {
            "best": best_key,
            "rival": rival_key,
            "delta": delta,
            "noise": noise,
            "helps": bool(delta > noise and delta > 0),
        }
    return out
