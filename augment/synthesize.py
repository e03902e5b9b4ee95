"""Balance a long-tailed dataset with images from an exported conditional generator.

1. :func:`augment.planning.plan` turns the real train counts and a policy (``balance``,
   ``target:N``, ``ratio:R``) into an exact number of synthetic images per class.
2. :func:`synthesize` generates them in batches (memory stays flat in the number of
   images), optionally keeps only samples a judge classifier recognises with probability
   >= ``threshold``, writes PNGs and an augmented manifest (every real row + one row per
   synthetic image) into one atomically written folder, and a report folder.

Every image is reproducible: class ``c``, round ``r`` draws its latent noise from
``derive_seed(seed, "synthesize", variant, c, r)``, the row's ``seed``; the image at
position ``i`` of that round is ``generator.generate([k] * (i + 1), seed)[i]``.
"""

from __future__ import annotations

import contextlib
import csv
import heapq
import json
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from pydantic import Field, field_validator
from tqdm.auto import tqdm

from augment.classifier import Classifier, predict_proba
from augment.config import StrictModel
from augment.data.images import image_grid, load_images, read_image, write_png
from augment.data.manifest import Manifest
from augment.data.prepare import class_count_table, write_count_report
from augment.errors import ConfigError, DataError, ModelError
from augment.filtering import CopyCheck, calibrated_thresholds
from augment.io import atomic_path
from augment.planning import parse_policy, plan
from augment.runtime import OnnxGenerator, to_uint8
from augment.seeding import derive_seed

log = logging.getLogger(__name__)

MIN_ACCEPTANCE = 0.05  # the acceptance estimate never drops below this when sizing rounds

#: A judge: the classifier and its class names (as :func:`augment.classifier.load_classifier`).
Judge = tuple[Classifier, Sequence[str]]


# -- configuration -------------------------------------------------------------------------


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
        10, ge=1, description="generate at most budget * quota images per class, then fill"
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


class SynthesisConfig(StrictModel):
    """params.yaml ``synthesize``."""

    variants: list[str] = Field(
        default_factory=list, description="synthesize@<variant> stages, compared by evaluate"
    )
    policy: str = "balance"
    batch_size: int = Field(256, ge=1)
    filter: FilterConfig = FilterConfig()
    grid_per_class: int = Field(10, ge=1, description="columns of reports' samples.png")

    @field_validator("policy")
    @classmethod
    def _valid_policy(cls, value: str) -> str:
        try:
            parse_policy(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    def with_filter(self, enabled: bool) -> SynthesisConfig:
        """The same config with the quality filter switched on or off."""
        switched = self.filter.model_copy(update={"enabled": enabled})
        return self.model_copy(update={"filter": switched})


# -- results -------------------------------------------------------------------------------


@dataclass
class ClassStats:
    """What happened to one class.

    ``accepted`` samples met the threshold (all of them without a filter); ``filled`` were
    below it but completed the quota within the budget; ``passed / generated`` is the
    acceptance rate (None when nothing was generated).
    """

    planned: int
    generated: int = 0
    passed: int = 0
    accepted: int = 0
    filled: int = 0

    @property
    def acceptance_rate(self) -> float | None:
        return self.passed / self.generated if self.generated else None


@dataclass(frozen=True)
class SynthesisResult:
    """Per-class numbers (class name -> value) and throughput of one :func:`synthesize`."""

    before: dict[str, int]
    plan: dict[str, int]
    generated: dict[str, int]
    accepted: dict[str, int]
    acceptance_rate: dict[str, float | None]
    filled_below_threshold: dict[str, int]
    filtered: bool
    seconds: float
    images_per_second: float
    policy: str = ""
    threshold: float | None = None
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def after(self) -> dict[str, int]:
        """Train images per class after augmentation (real + synthetic)."""
        return {name: self.before[name] + self.plan[name] for name in self.plan}

    def acceptance(self) -> dict[str, Any]:
        """The content of ``acceptance.json``."""
        return {
            "policy": self.policy,
            "filter": self.filtered,
            "threshold": self.threshold,
            "classes": {
                name: {
                    **self._threshold_of(name),
                    "planned": self.plan[name],
                    "generated": self.generated[name],
                    "accepted": self.accepted[name],
                    "acceptance_rate": _round(self.acceptance_rate[name]),
                    "filled_below_threshold": self.filled_below_threshold[name],
                }
                for name in self.plan
            },
        }

    def _threshold_of(self, name: str) -> dict[str, float | None]:
        """``{"threshold": t}``: the class's own (calibrated) or the common one, if filtered."""
        if not self.filtered:
            return {}
        return {"threshold": _round(self.thresholds.get(name, self.threshold))}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of every field."""
        data = asdict(self)
        data["after"] = self.after
        return data


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


# -- checks --------------------------------------------------------------------------------


def check_model(generator: OnnxGenerator, real: Manifest) -> None:
    """ModelError unless ``generator`` is a synthesize model knowing every class of ``real``."""
    info = generator.info
    if info.task != "synthesize":
        raise ModelError(
            f"{generator.path}: is a {info.task!r} model ({info.variant}), but synthesis "
            "needs a 'synthesize' model"
        )
    missing = [c for c in real.classes if c not in info.classes]
    if missing:
        raise ModelError(
            f"{generator.path}: dataset class(es) {', '.join(map(repr, missing))} missing "
            f"from the model's classes ({', '.join(info.classes)})"
        )
    first = real.subset(split="train", source="real").absolute_paths()[:1]
    if first:
        height, width, channels = read_image(first[0]).shape
        size = info.image_size
        if (height, width, channels) != (size, size, info.channels):
            raise ModelError(
                f"{generator.path}: makes {size}x{size}x{info.channels} images but the "
                f"dataset's are {height}x{width}x{channels} ({first[0]})"
            )


def judge_labels(
    judge: Judge, classes: Sequence[str], channels: int, image_size: int
) -> dict[str, int]:
    """The judge's output index of every dataset class; ModelError naming a missing one.

    Also checks the judge sees images like the model's (channels; size when recorded).
    """
    model, judge_classes = judge
    judge_classes = list(judge_classes)
    missing = [c for c in classes if c not in judge_classes]
    if missing:
        raise ModelError(
            f"classifier: dataset class(es) {', '.join(map(repr, missing))} missing from the "
            f"judge's classes ({', '.join(judge_classes)})"
        )
    if model.channels != channels:
        raise ModelError(
            f"classifier: judges {model.channels}-channel images, the model makes {channels}"
        )
    trained_size = model.meta.get("image_size")
    if trained_size is not None and int(trained_size) != image_size:
        raise ModelError(
            f"classifier: trained on {trained_size}x{trained_size} images, the model makes "
            f"{image_size}x{image_size}"
        )
    return {c: judge_classes.index(c) for c in classes}


def class_domains(real: Manifest) -> dict[str, str]:
    """Each class's most common domain among its real train rows ("" if none)."""
    frame = real.frame
    train = frame[(frame["split"] == "train") & (frame["source"] == "real")]
    domains: dict[str, str] = {}
    for name, group in train.groupby("label", sort=False):
        counts = group["domain"].value_counts()
        best = counts[counts == counts.max()].index
        domains[str(name)] = sorted(best)[0]
    return {c: domains.get(c, "") for c in real.classes}


# -- generation ----------------------------------------------------------------------------


def round_chunks(
    generator: OnnxGenerator,
    label: int,
    seed: int,
    count: int,
    batch_size: int,
    wanted: set[int] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """``(offset, u8 N x H x W x C)`` chunks of ``count`` images of class index ``label``.

    The noise is drawn chunk by chunk from one stream seeded with ``seed`` (identical to
    ``generator.generate``); with ``wanted``, chunks holding none of those offsets are
    skipped (their noise is still drawn, so the others are reproduced exactly).
    """
    rng = np.random.default_rng(seed)
    latent = generator.info.latent_dim
    for start in range(0, count, batch_size):
        n = min(batch_size, count - start)
        z = rng.standard_normal((n, latent)).astype(np.float32)
        if wanted is not None and not any(start <= i < start + n for i in wanted):
            continue
        images = generator.run(z=z, label=np.full(n, label, np.int64))
        yield start, to_uint8(images)


class SampleWriter:
    """Writes one class's PNGs and appends their manifest rows; keeps a few for the grid."""

    def __init__(
        self,
        root: Path,
        name: str,
        index: int,
        domain: str,
        generator: OnnxGenerator,
        grid: int,
        bar: tqdm,
        manifest: csv.DictWriter,
    ) -> None:
        self.folder = Path("synthetic") / str(index)
        self.root, self.name, self.domain, self.grid, self.bar = root, name, domain, grid, bar
        self.variant, self.sha256 = generator.info.variant, generator.sha256
        self.manifest = manifest
        self.count = 0
        self.samples: list[np.ndarray] = []

    def write(self, images: np.ndarray, seed: int) -> None:
        if len(images) and not self.count:
            (self.root / self.folder).mkdir(parents=True, exist_ok=True)
        for image in images:
            rel = (self.folder / f"{self.count:06d}.png").as_posix()
            write_png(self.root / rel, image, atomic=False)
            self.manifest.writerow(
                {
                    "path": rel,
                    "label": self.name,
                    "split": "train",
                    "domain": self.domain,
                    "source": "synthetic",
                    "variant": self.variant,
                    "model_sha256": self.sha256,
                    "seed": str(seed),
                }
            )
            self.count += 1
            if len(self.samples) < self.grid:
                self.samples.append(image)
        self.bar.update(len(images))


class ImageSink(Protocol):
    """Where :func:`synthesize_class` puts accepted images (files or memory)."""

    def write(self, images: np.ndarray, seed: int) -> None: ...


class ArraySink:
    """Keeps one class's images in memory: the in-memory twin of :class:`SampleWriter`."""

    def __init__(self, tile: tuple[int, int, int], bar: tqdm) -> None:
        self.tile, self.bar = tile, bar
        self.chunks: list[np.ndarray] = []

    def write(self, images: np.ndarray, seed: int) -> None:
        self.chunks.append(images)
        self.bar.update(len(images))

    def array(self) -> np.ndarray:
        """Every image written, u8 N x H x W x C."""
        return np.concatenate(self.chunks) if self.chunks else np.zeros((0, *self.tile), np.uint8)


@dataclass
class ClassJob:
    """Everything needed to synthesize one class."""

    name: str
    model_label: int
    quota: int
    judge_label: int | None
    threshold: float | None = None  # None: the filter's common threshold
    copies: CopyCheck | None = None


def synthesize_class(
    job: ClassJob,
    generator: OnnxGenerator,
    writer: ImageSink,
    config: SynthesisConfig,
    seed: int,
    judge: Classifier | None,
) -> ClassStats:
    """Write ``job.quota`` images of one class (filtered when there is a judge)."""
    if judge is None or job.judge_label is None or job.quota == 0:
        stats = ClassStats(planned=job.quota)
        sub = round_seed(seed, generator, job.name, 0)
        for _, images in round_chunks(
            generator, job.model_label, sub, job.quota, config.batch_size
        ):
            writer.write(images, sub)
            stats.generated += len(images)
        stats.passed = stats.accepted = stats.generated
        return stats
    return filter_class(job, generator, writer, config, seed, judge, job.judge_label)


def filter_class(
    job: ClassJob,
    generator: OnnxGenerator,
    writer: ImageSink,
    config: SynthesisConfig,
    seed: int,
    judge: Classifier,
    judge_label: int,
) -> ClassStats:
    """Rounds of generation keeping samples the judge scores >= threshold, until the quota.

    Once ``budget * quota`` images are generated, a shortfall is completed with the
    best-scored rejected samples, so the cost is bounded whatever the acceptance rate.
    """
    stats = ClassStats(planned=job.quota)
    threshold = config.filter.threshold if job.threshold is None else job.threshold
    limit = math.ceil(config.filter.budget * job.quota)
    rejected: list[tuple[float, int, int]] = []  # min-heap (score, -round, -offset)
    sizes: dict[int, int] = {}
    r = -1
    while stats.accepted < job.quota and stats.generated < limit:
        r += 1
        sizes[r] = round_size(job.quota - stats.accepted, stats, config, limit)
        sub = round_seed(seed, generator, job.name, r)
        for offset, images in round_chunks(
            generator, job.model_label, sub, sizes[r], config.batch_size
        ):
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
            _remember_rejected(
                rejected,
                scores,
                np.flatnonzero(~good),
                offset,
                r,
                job.quota - stats.accepted,
            )
            if stats.accepted >= job.quota:
                break
    shortfall = job.quota - stats.accepted
    if shortfall > 0:
        stats.filled = _fill(job, generator, writer, config, seed, rejected, sizes, shortfall)
        log.warning(
            "class %r: %d of %d samples met threshold %.2f within %d generated; filled %d "
            "with the best-scored rejected samples",
            job.name,
            stats.accepted,
            job.quota,
            threshold,
            stats.generated,
            stats.filled,
        )
    return stats


def round_seed(seed: int, generator: OnnxGenerator, name: str, r: int) -> int:
    """The seed of class ``name``'s round ``r`` (stored in each row's ``seed``)."""
    return derive_seed(seed, "synthesize", generator.info.variant, name, r)


def round_size(remaining: int, stats: ClassStats, config: SynthesisConfig, limit: int) -> int:
    """oversample * remaining / acceptance so far (>= 5%), within the class's budget."""
    rate = stats.passed / stats.generated if stats.generated else 1.0
    wanted = math.ceil(config.filter.oversample * remaining / max(rate, MIN_ACCEPTANCE))
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
    config: SynthesisConfig,
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
        wanted, sub = by_round[r], round_seed(seed, generator, job.name, r)
        for offset, images in round_chunks(
            generator, job.model_label, sub, sizes[r], config.batch_size, wanted
        ):
            picks = [i for i in range(len(images)) if offset + i in wanted]
            writer.write(images[picks], sub)
            written += len(picks)
    return written


# -- the whole run -------------------------------------------------------------------------


def synthesize(
    generator: OnnxGenerator,
    real: Manifest,
    config: SynthesisConfig,
    out_dir: str | Path,
    seed: int,
    judge: Judge | None = None,
    report_dir: str | Path | None = None,
    progress: bool = True,
) -> SynthesisResult:
    """Augment the real train split of ``real`` with images from ``generator``.

    Writes ``out_dir/manifest.csv`` (every real row, paths relative to ``out_dir``, plus
    one ``synthetic`` train row per image) and ``out_dir/synthetic/<class_index>/*.png``;
    with ``report_dir``, also class_counts.{csv,json,png}, acceptance.json and samples.png
    there. Both folders are written atomically: on any error earlier outputs stay intact.
    Rows are appended to the manifest as images are written, so memory does not grow
    with the number of images. The quality filter runs when ``config.filter.enabled``
    and a ``judge`` (model, class names) is given.
    """
    started = time.perf_counter()
    jobs, judge_model = class_jobs(generator, real, config, judge)
    before = real_train_counts(real)
    domains = class_domains(real)
    stats: dict[str, ClassStats] = {}
    samples: dict[str, list[np.ndarray]] = {}
    with atomic_path(out_dir, is_dir=True) as out_tmp, _atomic_dir_or_none(report_dir) as rep_tmp:
        manifest_path = out_tmp / "manifest.csv"
        Manifest.concat([real], out_tmp).write(manifest_path)  # real rows, then appended
        with (
            manifest_path.open("a", encoding="utf-8", newline="") as stream,
            progress_bar(jobs, f"synthesize {generator.info.variant}", progress) as bar,
        ):
            rows = csv.DictWriter(stream, list(real.frame.columns), restval="", lineterminator="\n")
            for index, job in enumerate(jobs):
                name = job.name
                writer = SampleWriter(
                    out_tmp, name, index, domains[name], generator, config.grid_per_class, bar, rows
                )
                stats[name] = synthesize_class(job, generator, writer, config, seed, judge_model)
                samples[name] = writer.samples
        seconds = time.perf_counter() - started
        result = make_result(before, stats, judge_model is not None, seconds, config, jobs)
        if rep_tmp is not None:
            counts = class_count_table(real)
            counts["train_synthetic"] = pd.Series(result.plan).reindex(counts.index).fillna(0)
            counts = counts.astype(np.int64)
            write_reports(rep_tmp, counts, result, samples, generator, config.grid_per_class)
    log.info(
        "wrote %d synthetic images to %s in %.1f s", sum(result.plan.values()), out_dir, seconds
    )
    return result


def synthesize_arrays(
    generator: OnnxGenerator,
    real: Manifest,
    config: SynthesisConfig,
    seed: int,
    judge: Judge | None = None,
    quotas: dict[str, int] | None = None,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Like :func:`synthesize`, but returns the images (class name -> u8 N x H x W x C).

    ``quotas`` (class name -> count) replaces the policy's plan. The same seed, config and
    judge give exactly the images :func:`synthesize` writes.
    """
    jobs, judge_model = class_jobs(generator, real, config, judge, quotas)
    info = generator.info
    tile = (info.image_size, info.image_size, info.channels)
    arrays: dict[str, np.ndarray] = {}
    with progress_bar(jobs, f"synthesize {info.variant} (in memory)", progress) as bar:
        for job in jobs:
            sink = ArraySink(tile, bar)
            synthesize_class(job, generator, sink, config, seed, judge_model)
            arrays[job.name] = sink.array()
    return arrays


def real_train_counts(real: Manifest) -> dict[str, int]:
    """Real train images per class (class name -> count)."""
    return {str(c): int(v) for c, v in real.counts("train", source="real").items()}


def class_jobs(
    generator: OnnxGenerator,
    real: Manifest,
    config: SynthesisConfig,
    judge: Judge | None,
    quotas: dict[str, int] | None = None,
) -> tuple[list[ClassJob], Classifier | None]:
    """Check the inputs; one job per class of ``real`` and the judge (None: no filter).

    Each job's quota comes from ``quotas``, else from the policy's plan.
    """
    check_input(generator, real)
    if quotas is None:
        quotas = plan(real_train_counts(real), config.policy)
    judge_model, judge_index = filter_judge(generator, real, config, judge)
    jobs = [
        ClassJob(name, generator.class_index(name), quotas.get(name, 0), judge_index.get(name))
        for name in real.classes
    ]
    if judge_model is not None and (config.filter.calibrate or config.filter.reject_copies):
        calibrate(jobs, judge_model, judge_index, generator, real, config.filter)
    return jobs, judge_model


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


def progress_bar(jobs: Sequence[ClassJob], desc: str, progress: bool) -> tqdm:
    """A bar over every image the jobs will write."""
    return tqdm(
        total=sum(job.quota for job in jobs),
        desc=desc,
        unit="img",
        disable=not progress,
        dynamic_ncols=True,
    )


def filter_judge(
    generator: OnnxGenerator, real: Manifest, config: SynthesisConfig, judge: Judge | None
) -> tuple[Classifier | None, dict[str, int]]:
    """The judge model and its output index per class, or (None, {}) when not filtering."""
    if not config.filter.enabled:
        return None, {}
    if judge is None:
        log.info("no judge classifier given: the quality filter is off")
        return None, {}
    info = generator.info
    return judge[0], judge_labels(judge, real.classes, info.channels, info.image_size)


def check_input(generator: OnnxGenerator, real: Manifest) -> None:
    """Errors for a manifest that already holds synthetic rows or a model that cannot serve it."""
    synthetic = int((real.frame["source"] == "synthetic").sum())
    if synthetic:
        where = real.origin or "manifest"
        raise DataError(
            f"{where}: already has {synthetic} synthetic rows; synthesize from "
            "the real (prepared) manifest"
        )
    check_model(generator, real)


def make_result(
    before: dict[str, int],
    stats: dict[str, ClassStats],
    filtering: bool,
    seconds: float,
    config: SynthesisConfig,
    jobs: Sequence[ClassJob] = (),
) -> SynthesisResult:
    written = sum(s.planned for s in stats.values())
    return SynthesisResult(
        before=before,
        plan={c: s.planned for c, s in stats.items()},
        generated={c: s.generated for c, s in stats.items()},
        accepted={c: s.accepted for c, s in stats.items()},
        acceptance_rate={c: s.acceptance_rate for c, s in stats.items()},
        filled_below_threshold={c: s.filled for c, s in stats.items()},
        filtered=filtering,
        seconds=round(seconds, 3),
        images_per_second=round(written / seconds, 2) if seconds > 0 else 0.0,
        policy=str(parse_policy(config.policy)),
        threshold=config.filter.threshold if filtering else None,
        thresholds={j.name: j.threshold for j in jobs if filtering and j.threshold is not None},
    )


def write_reports(
    folder: Path,
    counts: pd.DataFrame,
    result: SynthesisResult,
    samples: dict[str, list[np.ndarray]],
    generator: OnnxGenerator,
    columns: int,
) -> None:
    """class_counts.{csv,json,png}, acceptance.json and samples.png into ``folder``."""
    write_count_report(counts, folder, f"{generator.info.variant}: augmented class counts")
    (folder / "acceptance.json").write_text(json.dumps(result.acceptance(), indent=2) + "\n")
    info = generator.info
    tile = (info.image_size, info.image_size, info.channels)
    write_png(folder / "samples.png", sample_grid(samples, tile, columns), atomic=False)


def sample_grid(
    samples: dict[str, list[np.ndarray]], tile: tuple[int, int, int], columns: int
) -> np.ndarray:
    """One row per class, ``columns`` tiles each (black where a class has fewer samples)."""
    tiles = np.zeros((max(len(samples), 1) * columns, *tile), np.uint8)
    for row, images in enumerate(samples.values()):
        for col, image in enumerate(images[:columns]):
            tiles[row * columns + col] = image
    return image_grid(tiles, nrow=columns, row_labels=list(samples) or None)


@contextlib.contextmanager
def _atomic_dir_or_none(path: str | Path | None) -> Iterator[Path | None]:
    """``atomic_path(path, is_dir=True)``, or nothing when ``path`` is None."""
    if path is None:
        yield None
        return
    with atomic_path(path, is_dir=True) as tmp:
        yield tmp
