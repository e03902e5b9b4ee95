"""Translating a labeled domain into another, and measuring what it is worth.

The ``translate@<variant>`` stage turns the source domain's train split into the target
domain with an exported translator; the translated images keep their source labels and
become synthetic training data for the target domain. Whether they help is measured the
only way that matters: the same classifier trained on (a) the source images, (b) their
translations and (c) the target's own labeled train split (the oracle), each tested on
the target's test split. ``gap_closed`` = (b - a) / (c - a). A translation that changes
digits is caught by label preservation: a reference classifier that knows both domains
(trained on their labeled train splits) must still read each translation's source label.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field
from tqdm.auto import tqdm

from augment.classifier import ClassifierConfig, evaluate, train_classifier
from augment.config import StrictModel
from augment.data.batches import TrainingData
from augment.data.domains import DomainsConfig, content_path
from augment.data.images import side_by_side, write_png
from augment.data.manifest import Manifest
from augment.errors import DataError
from augment.io import atomic_path
from augment.runtime import OnnxGenerator, from_uint8, to_uint8
from augment.seeding import derive_seed
from augment.tasks.translate import TranslateVariant

Load = Callable[[Manifest], tuple[np.ndarray, np.ndarray]]  # -> (u8 images, class indices)


class TranslateConfig(StrictModel):
    """params.yaml ``translate``."""

    variants: list[str] = Field(default_factory=list, description="translate@<variant> stages")
    batch_size: int = Field(64, ge=1)
    epochs: int = Field(
        20,
        ge=1,
        description="classifier passes over the source train split (every classifier "
        "of the adaptation table trains for the same number of steps)",
    )
    grid: int = Field(10, ge=1, description="rows of reports/translate/<variant>/grid.png")


def domain_part(manifest: Manifest, domain: str, split: str) -> Manifest:
    """The real rows of one domain and split; DataError when there are none."""
    frame = manifest.frame
    rows = np.flatnonzero(
        (frame["domain"] == domain) & (frame["split"] == split) & (frame["source"] == "real")
    )
    if len(rows) == 0:
        known = ", ".join(sorted(set(frame["domain"])))
        raise DataError(
            f"{manifest.origin or 'manifest'}: no {split} images of domain {domain!r} "
            f"(domains: {known})"
        )
    return manifest.take(rows)


def training_data(
    manifest: Manifest, config: DomainsConfig, variant: type[TranslateVariant], load: Load
) -> TrainingData:
    """The train splits a translator learns from: paired recipes the target's (plain,
    styled) pairs; two-domain ones the source and target; multi-domain ones every domain.
    The target's labels are hidden from every recipe."""
    names = [config.source, config.target]
    if variant.paired:
        part = domain_part(manifest, config.target, "train")
        frame = part.frame.copy()
        frame["path"] = [content_path(p) for p in frame["path"]]
        plain = Manifest(frame, part.root, classes=part.classes)
        missing = next((p for p in plain.absolute_paths() if not p.is_file()), None)
        if missing is not None:
            raise DataError(
                f"{variant.name} needs pairs, but domain {config.target!r} has no plain "
                f"images behind its own ({missing} is missing): give it a style "
                "(domains.sets.<name>.style) so that each image has a known plain original"
            )
        targets, _ = load(part)
        images, _ = load(plain)
        hidden = np.full(len(images), -1)
        domain = np.zeros(len(images), int)
        return TrainingData(images, hidden, domain, targets, domain_names=tuple(names))
    if variant.max_domains is None:
        names = config.ordered()
    parts = [load(domain_part(manifest, name, "train")) for name in names]
    labels = [
        lab if name != config.target else np.full(len(lab), -1)
        for name, (_, lab) in zip(names, parts, strict=True)
    ]
    return TrainingData(
        np.concatenate([images for images, _ in parts]),
        np.concatenate(labels),
        np.concatenate([np.full(len(lab), i) for i, (_, lab) in enumerate(parts)]),
        domain_names=tuple(names),
    )


def translate_images(
    generator: OnnxGenerator, images: np.ndarray, domain: str, batch_size: int = 64, seed: int = 0
) -> np.ndarray:
    """u8 ``N x H x W x C`` images translated into ``domain`` (with a progress bar); a
    stochastic model draws its noise from ``seed``."""
    chunks = []
    steps = range(0, len(images), batch_size)
    for start in tqdm(steps, desc=f"translating into {domain}", unit="batch", disable=None):
        batch = from_uint8(images[start : start + batch_size])
        noise_seed = derive_seed(seed, "translate", start)
        chunks.append(to_uint8(generator.translate(batch, domain, batch_size, noise_seed)))
    return np.concatenate(chunks) if chunks else images[:0].copy()


@dataclass
class AdaptationResult:
    """The adaptation table of one translator (accuracies on the target's test split)."""

    variant: str
    source: str
    target: str
    images: int
    accuracy: dict[str, float]
    gap_closed: float | None
    label_preservation: float
    preservation_per_class: dict[str, float | None]
    reference_accuracy: dict[str, float]
    images_per_second: float
    classes: list[str] = field(default_factory=list)


def adaptation(
    variant: str,
    config: DomainsConfig,
    source: tuple[np.ndarray, np.ndarray],
    translated: np.ndarray,
    target_train: tuple[np.ndarray, np.ndarray],
    target_test: tuple[np.ndarray, np.ndarray],
    classes: list[str],
    epochs: int,
    seed: int,
    source_test: tuple[np.ndarray, np.ndarray] | None = None,
    images_per_second: float = 0.0,
) -> AdaptationResult:
    """Train the source-only, translated and oracle classifiers (the same number of steps
    each) and the two-domain reference; score them on the target's test split."""
    k = len(classes)
    classifier = ClassifierConfig(balance="none")
    steps = epochs * math.ceil(len(source[1]) / classifier.batch_size)

    def trained(images: np.ndarray, labels: np.ndarray, name: str) -> Any:
        return train_classifier(
            images, labels, k, classifier, derive_seed(seed, "adaptation", name), False, steps
        )

    sets = {
        "source_only": source,
        "translated": (translated, source[1]),
        "oracle": target_train,
    }
    accuracy = {
        name: round(float(evaluate(trained(*data, name), *target_test, k)["accuracy"]), 4)
        for name, data in tqdm(sets.items(), desc="adaptation classifiers", disable=None)
    }
    both = (
        np.concatenate([source[0], target_train[0]]),
        np.concatenate([source[1], target_train[1]]),
    )
    reference = trained(*both, "reference")
    preserved = evaluate(reference, translated, source[1], k)
    checks = {"target_test": target_test} | ({"source_test": source_test} if source_test else {})
    gap = accuracy["oracle"] - accuracy["source_only"]
    return AdaptationResult(
        variant=variant,
        source=config.source,
        target=config.target,
        images=len(translated),
        accuracy=accuracy,
        gap_closed=round((accuracy["translated"] - accuracy["source_only"]) / gap, 4)
        if gap > 0
        else None,
        label_preservation=round(float(preserved["accuracy"]), 4),
        preservation_per_class={
            c: None if r is None else round(r, 4)
            for c, r in zip(classes, preserved["per_class_recall"], strict=True)
        },
        reference_accuracy={
            name: round(float(evaluate(reference, *data, k)["accuracy"]), 4)
            for name, data in checks.items()
        },
        images_per_second=round(images_per_second, 1),
        classes=list(classes),
    )


def translate_domain(
    generator: OnnxGenerator,
    manifest: Manifest,
    config: DomainsConfig,
    out_dir: str | Path,
    load: Load,
    batch_size: int = 64,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Translate the source domain's train split into the target; write ``out_dir``
    (``images/<class index>/<n>.png`` and ``manifest.csv``: synthetic train rows of the
    target domain with the source labels, variant and model sha256), atomically.

    Returns (source images, labels, translations, images per second).
    """
    for name in (config.source, config.target):
        generator.domain_index(name)  # a domain the model does not know: ModelError
    part = domain_part(manifest, config.source, "train")
    images, labels = load(part)
    started = time.perf_counter()
    translated = translate_images(generator, images, config.target, batch_size, seed)
    rate = len(images) / max(time.perf_counter() - started, 1e-9)
    rows = []
    counters: dict[int, int] = {}
    with atomic_path(Path(out_dir), is_dir=True) as tmp:
        for image, label in zip(translated, labels, strict=True):
            n = counters[int(label)] = counters.get(int(label), -1) + 1
            path = f"images/{int(label)}/{n}.png"
            (tmp / path).parent.mkdir(parents=True, exist_ok=True)
            write_png(tmp / path, image, atomic=False)
            rows.append(
                {
                    "path": path,
                    "label": manifest.classes[int(label)],
                    "split": "train",
                    "domain": config.target,
                    "source": "synthetic",
                    "variant": generator.info.variant,
                    "model_sha256": generator.sha256,
                    "seed": seed,
                }
            )
        Manifest(Manifest.from_rows(rows, tmp).frame, tmp, classes=manifest.classes).write(
            tmp / "manifest.csv"
        )
    return images, labels, translated, rate


def translation_grid(
    generator: OnnxGenerator,
    images: np.ndarray,
    translated: np.ndarray,
    labels: list[str],
    source: str,
    count: int,
) -> np.ndarray:
    """Rows of source | translated | reconstructed (translated back; multi-domain models
    only), spread over the set and labelled by class."""
    columns = [images, translated]
    if generator.multi_domain:
        rows = np.unique(np.linspace(0, len(images) - 1, min(count, len(images))).astype(int))
        back = np.zeros_like(images)
        back[rows] = to_uint8(generator.translate(from_uint8(translated[rows]), source))
        columns.append(back)
    return side_by_side(columns, count, labels)


def report_markdown(result: AdaptationResult, reconstructed: bool) -> str:
    """reports/translate/<variant>/report.md: the adaptation table and label preservation."""
    a = result.accuracy
    gap = "n/a (the oracle is no better than source-only)"
    if result.gap_closed is not None:
        gap = f"{result.gap_closed:.1%}"
    columns = "source | translated | reconstructed" if reconstructed else "source | translated"
    lines = [
        f"# Translation {result.source} -> {result.target} with {result.variant}",
        "",
        f"{result.images} labeled {result.source} train images translated into "
        f"{result.target} ({result.images_per_second:g} images/s).",
        "",
        f"Columns: {columns}",
        "",
        "![grid](grid.png)",
        "",
        f"## Adaptation (accuracy on the {result.target} test split)",
        "",
        "| classifier trained on | accuracy |",
        "|---|---|",
        f"| {result.source} train (source only) | {a['source_only']:.2%} |",
        f"| {result.source} train translated by {result.variant} | {a['translated']:.2%} |",
        f"| {result.target} train, labeled (oracle) | {a['oracle']:.2%} |",
        "",
        f"Gap closed: **{gap}** of the way from source-only to the oracle.",
        "",
        "## Label preservation",
        "",
        f"A reference classifier trained on both domains' labeled train splits reads the "
        f"source label in **{result.label_preservation:.2%}** of the translations "
        + "(its own accuracy: "
        + ", ".join(f"{k.replace('_', ' ')} {v:.2%}" for k, v in result.reference_accuracy.items())
        + ").",
        "",
        "| class | " + " | ".join(result.preservation_per_class) + " |",
        "|---|" + "---|" * len(result.preservation_per_class),
        "| preserved | "
        + " | ".join(
            "n/a" if v is None else f"{v:.0%}" for v in result.preservation_per_class.values()
        )
        + " |",
    ]
    return "\n".join(lines) + "\n"
