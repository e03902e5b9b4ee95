"""Tiny training runs shared by the loop and conformance tests: a 2-step config, the
output folders, and each task's training data made from the small MNIST sample."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from augment.data.batches import TrainingData
from augment.registry import VariantEntry
from augment.train import TrainConfig, TrainOutputs, TrainResult, fit
from augment.variant import DataSpec

CLASSES = tuple("0123456789")
DOMAINS = ("plain", "inverted")
SPEC = DataSpec(image_size=28, channels=1, classes=CLASSES)
TINY = TrainConfig(steps=2, batch_size=16, checkpoint_every=1, sample_every=1, log_every=1)


def outputs(root: Path) -> TrainOutputs:
    return TrainOutputs(root / "checkpoint.pt", root / "samples", root / "losses.csv")


def train_tiny(
    registry, mnist_small, root: Path, params: dict | None = None, config: TrainConfig = TINY
) -> TrainResult:
    """A cgan trained on the small MNIST sample with ``config`` into ``root``."""
    variant = registry.create("cgan", params or {}, SPEC)
    return fit(variant, TrainingData(*mnist_small), config, outputs(root), 0, progress=False)


def task_data(entry: VariantEntry, mnist_small) -> tuple[DataSpec, TrainingData]:
    """The spec and ``fit`` data of a variant's task: translators get the digits as domain
    'plain' and their negatives as 'inverted' (and 'flipped' where more are allowed), the
    paired ones as (plain, inverted) pairs; the other domains' labels are hidden."""
    images, labels = mnist_small
    if entry.task != "translate":
        return SPEC, TrainingData(images, labels)
    hidden = -np.ones_like(labels)
    if entry.cls.paired:
        data = TrainingData(images, hidden, np.zeros_like(labels), 255 - images)
        return replace(SPEC, domains=DOMAINS), data
    styles = [images, 255 - images, images[:, ::-1]]
    count = 3 if entry.cls.max_domains is None else 2
    data = TrainingData(
        np.concatenate(styles[:count]),
        np.concatenate([labels, *[hidden] * (count - 1)]),
        np.repeat(np.arange(count), len(labels)),
    )
    return replace(SPEC, domains=(*DOMAINS, "flipped")[:count]), data
