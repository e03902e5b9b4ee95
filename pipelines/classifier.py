"""DVC stage ``classifier``: train the judge classifier on the real train split.

Reads ``data/prepared/manifest.csv``; writes ``models/classifier.pt`` and
``metrics/classifier.json`` (validation accuracy, balanced accuracy, per-class recall,
seconds). Run from the project root: ``python -m pipelines.classifier``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from augment.classifier import ClassifierConfig, evaluate, save_classifier, train_classifier
from augment.data.images import load_images
from augment.data.manifest import Manifest
from augment.errors import DataError
from augment.io import sha256_file
from pipelines._common import (
    CLASSIFIER,
    PREPARED_MANIFEST,
    load_params,
    load_section,
    read_seed,
    run,
    stage_args,
    write_metrics,
)

log = logging.getLogger("pipelines.classifier")


def main(argv: list[str]) -> None:
    """Run the stage (options only relocate inputs/outputs, e.g. for tests)."""
    args = stage_args(
        argv,
        "pipelines.classifier",
        __doc__,
        manifest=PREPARED_MANIFEST,
        model=CLASSIFIER,
        metrics="metrics/classifier.json",
    )

    params = load_params(args.params)
    seed = read_seed(params)
    config = load_section(params, "classifier", ClassifierConfig)
    manifest = Manifest.read(args.manifest)
    classes = list(manifest.classes)
    train = load_images(manifest.subset(split="train", source="real"))
    if len(train.images) == 0:
        raise DataError(f"{args.manifest}: no real train images")
    log.info("training the classifier on %d images of %d classes", len(train.images), len(classes))

    started = time.perf_counter()
    model = train_classifier(train.images, train.labels, len(classes), config, seed)
    seconds = time.perf_counter() - started
    size, channels = train.images.shape[1], train.images.shape[3]
    meta = {
        "seed": seed,
        "image_size": size,
        "channels": channels,
        "manifest_sha256": sha256_file(args.manifest),
        "config": config.model_dump(),
    }
    save_classifier(model, args.model, classes, meta)

    metrics: dict[str, Any] = {"train_images": len(train.images), "seconds": round(seconds, 2)}
    val = manifest.subset(split="val")
    if len(val):
        loaded = load_images(val)
        scores = evaluate(model, loaded.images, loaded.labels, len(classes))
        metrics |= {
            "val_images": scores["count"],
            "val_accuracy": round(scores["accuracy"], 6),
            "val_balanced_accuracy": round(scores["balanced_accuracy"], 6),
            "val_per_class_recall": {
                c: None if r is None else round(r, 6)
                for c, r in zip(classes, scores["per_class_recall"], strict=True)
            },
        }
        log.info(
            "val accuracy %.4f, balanced accuracy %.4f",
            scores["accuracy"],
            scores["balanced_accuracy"],
        )
    else:
        log.warning("%s: no val images; the classifier is not evaluated", args.manifest)
    details = args.metrics.with_name("classifier_details.json")
    write_metrics(args.metrics, details, metrics, {"val_per_class_recall"})


if __name__ == "__main__":
    run(main)
