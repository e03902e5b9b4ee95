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

from augment.classifier import ClassifierConfig, evaluate, predict_proba, train_classifier
from augment.config import StrictModel
from augment.data.batches import TrainingData
from augment.data.domains import DomainsConfig, content_path
from augment.data.images import side_by_side, write_png
from augment.data.manifest import Manifest
from augment.errors import DataError
from augment.io import atomic_path
from augment.runtime import OnnxGenerator, from_uint8, to_uint8
from augment.seeding import derive_seed
from augment.tasks.translate import TranslateParams, TranslateVariant
from augment.variant import Params

Load = Callable[[Manifest], tuple[np.ndarray, np.ndarray]]  # -> (u8 images, class indices)


class LabelFilterConfig(StrictModel):
    """params.yaml ``translate.filter``: keep a translation only where classifiers that
    never saw it read its source label (:func:`label_agreement`)."""

    enabled: bool = False
    folds: int = Field(2, ge=2, le=10, description="class-stratified parts of the translations")
    threshold: float = Field(
        0.5, gt=0, le=1, description="out-of-fold probability of the source label to keep"
    )


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
    filter: LabelFilterConfig = LabelFilterConfig()


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


def plain_originals(part: Manifest, domain: str, who: str) -> Manifest:
    """The plain image behind each row of a styled domain's ``part`` (the domains stage's
    ``content/...``); DataError naming ``who`` needs them when one is missing."""
    frame = part.frame.copy()
    frame["path"] = [content_path(p) for p in frame["path"]]
    plain = Manifest(frame, part.root, classes=part.classes)
    missing = next((p for p in plain.absolute_paths() if not p.is_file()), None)
    if missing is not None:
        raise DataError(
            f"{who} needs pairs, but domain {domain!r} has no plain "
            f"images behind its own ({missing} is missing): give it a style "
            "(domains.sets.<name>.style) so that each image has a known plain original"
        )
    return plain


def reads_layouts(params: Params) -> bool:
    """Whether a recipe's shape consistency (``shape`` > 0) reads each image's layout, so
    its training data needs the plain originals (:func:`training_data`'s ``layouts``)."""
    return isinstance(params, TranslateParams) and params.shape > 0


def training_data(
    manifest: Manifest,
    config: DomainsConfig,
    variant: type[TranslateVariant],
    load: Load,
    layouts: bool = False,
) -> TrainingData:
    """The train splits a translator learns from: paired recipes the target's (plain,
    styled) pairs; two-domain ones the source and target; multi-domain ones every domain.
    The target's labels are hidden from every recipe. With ``layouts``
    (:func:`reads_layouts`) and a domain with a style, an unpaired recipe also gets each
    image's plain original (``plain``: the image itself in a domain without one), whose
    foreground is the layout shape consistency asks it to keep; otherwise none is read."""
    names = [config.source, config.target]
    if variant.paired:
        part = domain_part(manifest, config.target, "train")
        plain = plain_originals(part, config.target, variant.name)
        targets, _ = load(part)
        images, _ = load(plain)
        hidden = np.full(len(images), -1)
        domain = np.zeros(len(images), int)
        return TrainingData(images, hidden, domain, targets, domain_names=tuple(names))
    if variant.max_domains is None:
        names = config.ordered()
    parts = [domain_part(manifest, name, "train") for name in names]
    loaded = [load(part) for part in parts]
    labels = [
        lab if name != config.target else np.full(len(lab), -1)
        for name, (_, lab) in zip(names, loaded, strict=True)
    ]
    styled = [config.sets[name].style != "none" for name in names]
    plain = None
    if layouts and any(styled):
        plain = np.concatenate(
            [
                load(plain_originals(part, name, variant.name))[0] if style else images
                for name, part, (images, _), style in zip(names, parts, loaded, styled, strict=True)
            ]
        )
    return TrainingData(
        np.concatenate([images for images, _ in loaded]),
        np.concatenate(labels),
        np.concatenate([np.full(len(lab), i) for i, (_, lab) in enumerate(loaded)]),
        domain_names=tuple(names),
        plain=plain,
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


def label_agreement(
    translated: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    folds: int,
    steps: int,
    seed: int,
) -> np.ndarray:
    """f32[N]: the out-of-fold probability of each translation's source label.

    The translations are cut into ``folds`` class-stratified parts; each part is read by a
    classifier trained for ``steps`` on the other parts (translations and their source
    labels only: no target label is needed). A translation that changed its digit
    disagrees with what the others of its class taught: the cross-validated check of
    confident learning (Northcutt et al., 2021), which finds label errors from
    out-of-sample predicted probabilities.
    """
    rng = np.random.default_rng(derive_seed(seed, "label-agreement"))
    part = np.zeros(len(labels), np.int64)
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        part[members] = np.arange(len(members)) % folds
    scores = np.zeros(len(labels), np.float32)
    config = ClassifierConfig(balance="none")
    for f in tqdm(range(folds), desc="label agreement", unit="fold", disable=None):
        held = part == f
        judge = train_classifier(
            translated[~held], labels[~held], num_classes, config,
            derive_seed(seed, "label-agreement", f), False, steps,
        )  # fmt: skip
        probabilities = predict_proba(judge, translated[held])
        scores[held] = probabilities[np.arange(held.sum()), labels[held]]
    return scores


def classifier_steps(images: int, epochs: int) -> int:
    """Optimizer steps of ``epochs`` passes over ``images`` (every classifier of the
    adaptation table trains for the same number)."""
    return epochs * math.ceil(images / ClassifierConfig().batch_size)


def per_class_share(
    kept: np.ndarray, labels: np.ndarray, classes: list[str]
) -> dict[str, float | None]:
    """Class name -> share of its translations kept (None: the class has none)."""
    return {
        name: round(float(kept[labels == k].mean()), 4) if (labels == k).any() else None
        for k, name in enumerate(classes)
    }


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
    # with the label filter: translations kept, the share kept per class, and the
    # reference's reading of every translation (the filter's input)
    kept: int | None = None
    acceptance_per_class: dict[str, float | None] | None = None
    label_preservation_unfiltered: float | None = None


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
    kept: np.ndarray | None = None,
) -> AdaptationResult:
    """Train the source-only, translated and oracle classifiers (the same number of steps
    each) and the two-domain reference; score them on the target's test split. With
    ``kept`` (bool[N], the label filter's verdicts) the translated classifier learns the
    kept translations only, and label preservation is measured on them."""
    k = len(classes)
    classifier = ClassifierConfig(balance="none")
    steps = classifier_steps(len(source[1]), epochs)
    chosen = np.ones(len(source[1]), bool) if kept is None else kept

    def trained(images: np.ndarray, labels: np.ndarray, name: str) -> Any:
        return train_classifier(
            images, labels, k, classifier, derive_seed(seed, "adaptation", name), False, steps
        )

    sets = {
        "source_only": source,
        "translated": (translated[chosen], source[1][chosen]),
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
    preserved = evaluate(reference, translated[chosen], source[1][chosen], k)
    unfiltered = None
    if kept is not None:
        unfiltered = round(float(evaluate(reference, translated, source[1], k)["accuracy"]), 4)
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
        kept=None if kept is None else int(kept.sum()),
        acceptance_per_class=None if kept is None else per_class_share(kept, source[1], classes),
        label_preservation_unfiltered=unfiltered,
    )


@dataclass
class Translation:
    """A source domain's train split and its translation (what the stage wrote)."""

    images: np.ndarray  # u8 N x H x W x C, the source train images
    labels: np.ndarray  # their class indices, the translations' labels
    translated: np.ndarray  # u8 N x H x W x C
    images_per_second: float
    kept: np.ndarray | None = None  # bool[N], the label filter's verdicts (None: no filter)
    scores: np.ndarray | None = None  # f32[N], its out-of-fold source-label probabilities


def translate_domain(
    generator: OnnxGenerator,
    manifest: Manifest,
    config: DomainsConfig,
    out_dir: str | Path,
    load: Load,
    batch_size: int = 64,
    seed: int = 0,
    label_filter: LabelFilterConfig | None = None,
    epochs: int = 20,
) -> Translation:
    """Translate the source domain's train split into the target; write ``out_dir``
    (``images/<class index>/<n>.png`` and ``manifest.csv``: synthetic train rows of the
    target domain with the source labels, variant and model sha256), atomically. With an
    enabled ``label_filter`` only the translations that pass :func:`label_agreement`
    (its classifiers train ``epochs`` passes) are written."""
    for name in (config.source, config.target):
        generator.domain_index(name)  # a domain the model does not know: ModelError
    part = domain_part(manifest, config.source, "train")
    images, labels = load(part)
    started = time.perf_counter()
    translated = translate_images(generator, images, config.target, batch_size, seed)
    rate = len(images) / max(time.perf_counter() - started, 1e-9)
    result = Translation(images, labels, translated, rate)
    if label_filter is not None and label_filter.enabled:
        steps = classifier_steps(len(labels), epochs)
        k = len(manifest.classes)
        result.scores = label_agreement(translated, labels, k, label_filter.folds, steps, seed)
        result.kept = result.scores >= label_filter.threshold
        if not result.kept.any():
            raise DataError(
                f"translate.filter: no translation reaches threshold {label_filter.threshold} "
                "(the translator changes its digits, or the threshold is too high)"
            )
    kept = result.kept if result.kept is not None else np.ones(len(labels), bool)
    rows = []
    counters: dict[int, int] = {}
    with atomic_path(Path(out_dir), is_dir=True) as tmp:
        for image, label in zip(translated[kept], labels[kept], strict=True):
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
    return result


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
        _share_row("preserved", result.preservation_per_class),
    ]
    if result.acceptance_per_class is not None:
        lines += [
            _share_row("kept by the filter", result.acceptance_per_class),
            "",
            f"The label filter (`translate.filter`) kept **{result.kept}** of {result.images} "
            "translations: those whose source label classifiers trained on the other "
            "translations (never on them, never on target labels) read with at least the "
            "threshold's probability. Preservation above is of the kept ones; of every "
            f"translation it is {result.label_preservation_unfiltered:.2%}. The translated "
            "classifier learns the kept ones only.",
        ]
    return "\n".join(lines) + "\n"


def _share_row(name: str, shares: dict[str, float | None]) -> str:
    """A table row of per-class shares in percent (n/a for a class without images)."""
    cells = ("n/a" if v is None else f"{v:.0%}" for v in shares.values())
    return f"| {name} | " + " | ".join(cells) + " |"
