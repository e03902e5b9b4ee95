"""Which synthetic samples the synthesize stage keeps: the rejection filter, per-class
thresholds and near copies.

**The rejection filter** (:func:`filter_class`). Rounds of generation keep the samples
the judge classifier scores >= the class's threshold until the class's quota is met;
each round is sized ``oversample * remaining / acceptance so far``; once ``budget *
quota`` images are generated, the class stops, so the cost is bounded whatever the
acceptance rate. ``fill`` (the default) completes its shortfall with the best-scored
rejects, samples the judge did not recognise as their label; without it the class gets
fewer samples (on Fashion-MNIST, 59 shirts instead of 1425 of them rejects: the same
accuracy within the seed noise, docs/findings.md).

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

import heapq
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from augment.classifier import Classifier, predict_proba
from augment.config import StrictModel
from augment.data.images import load_images
from augment.data.manifest import Manifest
from augment.runtime import OnnxGenerator
from augment.samples import ClassStats, ImageSink, round_chunks, round_seed

log = logging.getLogger(__name__)

MIN_ACCEPTANCE = 0.05  # the acceptance estimate never drops below this when sizing rounds


class FilterConfig(StrictModel):
    """The quality filter: keep a sample if the judge gives its label >= ``threshold``.

    ``calibrate``: per-class thresholds instead, each the score that ``real_pass_rate`` of
    the class's real val images reach; ``reject_copies``: also reject near copies of train
    images (:mod:`augment.filtering`).
    """

    enabled: bool = True
    threshold: float = Field(0.9, gt=0, lt=1)
    calibrate: bool = Field(False, description="per-class thresholds from the val split")
    real_pass_rate: float = Field(
        0.8, gt=0, le=1, description="share of real val images a calibrated threshold passes"
    )
    reject_copies: bool = Field(False, description="reject samples nearer than fresh data")
    copy_quantile: float = Field(
        0.05, ge=0, lt=1, description="near copy: closer than this share of val images come"
    )
    budget: float = Field(
        10, ge=1, description="generate at most budget * quota images per class, then stop"
    )
    fill: bool = Field(
        True, description="complete a class's shortfall with its best-scored rejects"
    )
    oversample: float = Field(
        1.5, ge=1, description="a round generates oversample * remaining / acceptance so far"
    )
    min_judge_accuracy: float = Field(
        0.6,
        ge=0,
        le=1,
        description="a judge below this balanced accuracy on the val split filters "
        "unreliably: a warning, and the stage's metrics say so",
    )


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


@dataclass
class ClassJob:
    """Everything needed to synthesize one class."""

    name: str
    model_label: int
    quota: int
    judge_label: int | None
    threshold: float | None = None  # None: the filter's common threshold
    copies: CopyCheck | None = None
    # an encoder's codes f32[M, latent] of the class's real train images: z interpolated
    # between them (None: z from the prior)
    anchors: np.ndarray | None = None


# -- the rejection filter ---------------------------------------------------------------


def filter_class(
    job: ClassJob,
    generator: OnnxGenerator,
    writer: ImageSink,
    config: FilterConfig,
    batch_size: int,
    seed: int,
    judge: Classifier,
    judge_label: int,
) -> ClassStats:
    """Rounds of generation keeping samples the judge scores >= threshold, until the quota.

    Once ``budget * quota`` images are generated the class stops, so the cost is bounded
    whatever the acceptance rate; ``config.fill`` completes a shortfall with the
    best-scored rejected samples.
    """
    stats = ClassStats(planned=job.quota)
    threshold = config.threshold if job.threshold is None else job.threshold
    limit = math.ceil(config.budget * job.quota)
    rejected: list[tuple[float, int, int]] = []  # min-heap (score, -round, -offset)
    sizes: dict[int, int] = {}
    r = -1
    while stats.accepted < job.quota and stats.generated < limit:
        r += 1
        sizes[r] = round_size(job.quota - stats.accepted, stats, config, limit)
        sub = round_seed(seed, generator.info.variant, job.name, r)
        chunks = round_chunks(
            generator, job.model_label, sub, sizes[r], batch_size, anchors=job.anchors
        )
        for offset, images in chunks:
            scores = predict_proba(judge, images)[:, judge_label]
            good = scores >= threshold
            if job.copies is not None:  # near copies pass never, and fill a quota last
                original = job.copies.keep(images)
                good &= original
                scores = np.where(original, scores, -1.0)
            passed = np.flatnonzero(good)
            keep = passed[: job.quota - stats.accepted]
            writer.write(images[keep], sub)
            stats.generated += len(images)
            stats.passed += len(passed)
            stats.accepted += len(keep)
            if config.fill:
                _remember_rejected(
                    rejected, scores, np.flatnonzero(~good), offset, r, job.quota - stats.accepted
                )
            if stats.accepted >= job.quota:
                break
    shortfall = job.quota - stats.accepted
    if shortfall > 0:
        if config.fill:
            stats.filled = _fill(
                job, generator, writer, batch_size, seed, rejected, sizes, shortfall
            )
        log.warning(
            "class %r: %d of %d samples met threshold %.2f within %d generated; %s",
            job.name,
            stats.accepted,
            job.quota,
            threshold,
            stats.generated,
            f"filled {stats.filled} with the best-scored rejected samples"
            if config.fill
            else f"{shortfall} short (synthesize.filter.fill: true fills them with rejects)",
        )
    return stats


def round_size(remaining: int, stats: ClassStats, config: FilterConfig, limit: int) -> int:
    """oversample * remaining / acceptance so far (>= 5%), within the class's budget."""
    rate = stats.passed / stats.generated if stats.generated else 1.0
    wanted = math.ceil(config.oversample * remaining / max(rate, MIN_ACCEPTANCE))
    return max(1, min(wanted, limit - stats.generated))


def _remember_rejected(
    heap: list[tuple[float, int, int]],
    scores: np.ndarray,
    rejected: np.ndarray,
    offset: int,
    r: int,
    keep: int,
) -> None:
    """Push this chunk's ``rejected`` samples; keep only the ``keep`` best (ties: earliest)."""
    for i in rejected:
        item = (float(scores[i]), -r, -(offset + int(i)))
        if len(heap) < keep:
            heapq.heappush(heap, item)
        elif keep > 0 and item > heap[0]:
            heapq.heapreplace(heap, item)
    while len(heap) > keep:
        heapq.heappop(heap)


def _fill(
    job: ClassJob,
    generator: OnnxGenerator,
    writer: ImageSink,
    batch_size: int,
    seed: int,
    heap: list[tuple[float, int, int]],
    sizes: dict[int, int],
    shortfall: int,
) -> int:
    """Regenerate and write the ``shortfall`` best rejected samples, in (round, offset) order."""
    best = sorted(heap, reverse=True)[:shortfall]
    by_round: dict[int, set[int]] = {}
    for _, neg_r, neg_offset in best:
        by_round.setdefault(-neg_r, set()).add(-neg_offset)
    written = 0
    for r in sorted(by_round):
        wanted, sub = by_round[r], round_seed(seed, generator.info.variant, job.name, r)
        for offset, images in round_chunks(
            generator, job.model_label, sub, sizes[r], batch_size, wanted, anchors=job.anchors
        ):
            picks = [i for i in range(len(images)) if offset + i in wanted]
            writer.write(images[picks], sub)
            written += len(picks)
    return written


def calibrate(
    jobs: Sequence[ClassJob],
    judge: Classifier,
    judge_index: dict[str, int],
    generator: OnnxGenerator,
    real: Manifest,
    config: FilterConfig,
) -> None:
    """Set each job's calibrated threshold and near-copy check from the real splits."""
    info = generator.info

    def images_of(split: str) -> tuple[np.ndarray, np.ndarray]:
        part = real.subset(split=split, source="real")
        loaded = load_images(part, info.channels, info.image_size, progress=False)
        return loaded.images, np.asarray(part.classes, str)[loaded.labels]

    val_images, val_labels = images_of("val")
    if config.calibrate:
        thresholds = calibrated_thresholds(
            judge, val_images, val_labels, judge_index, config.real_pass_rate, config.threshold
        )
        for job in jobs:
            job.threshold = thresholds[job.name]
    if config.reject_copies:
        train_images, train_labels = images_of("train")
        for job in jobs:
            job.copies = CopyCheck(
                train_images[train_labels == job.name],
                val_images[val_labels == job.name],
                config.copy_quantile,
            )
