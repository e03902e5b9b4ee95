"""Tiny training runs shared by the loop and conformance tests: a 2-step config, the
output folders, and each task's training data made from the small MNIST sample."""

from __future__ import annotations

from pathlib import Path

from augment import testing
from augment.data.batches import TrainingData
from augment.registry import VariantEntry
from augment.train import TrainConfig, TrainResult, fit
from augment.variant import DataSpec

CLASSES = tuple("0123456789")
SPEC = DataSpec(image_size=28, channels=1, classes=CLASSES)
TINY = testing.TWO_STEPS


outputs = testing.outputs


def train_tiny(
    registry, mnist_small, root: Path, params: dict | None = None, config: TrainConfig = TINY
) -> TrainResult:
    """A cgan trained on the small MNIST sample with ``config`` into ``root``."""
    variant = registry.create("cgan", params or {}, SPEC)
    return fit(variant, TrainingData(*mnist_small), config, outputs(root), 0, progress=False)


def task_data(entry: VariantEntry, mnist_small) -> tuple[DataSpec, TrainingData]:
    """The spec and ``fit`` data of a variant's task from the small MNIST sample
    (:func:`augment.testing.task_data`: translators get domains made from it)."""
    return testing.task_data(entry, *mnist_small)
