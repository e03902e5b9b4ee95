"""Balance a long-tailed dataset with images from an exported conditional generator.

1. :func:`augment.planning.plan` turns the real train counts and a policy (``balance``,
   ``target:N``, ``ratio:R``) into an exact number of synthetic images per class.
2. :func:`synthesize` generates them in batches (memory stays flat in the number of
   images), optionally keeps only samples a judge classifier recognises with probability
   >= ``threshold``, writes PNGs and an augmented manifest (every real row + one row per
   synthetic image) into one atomically written folder, and a report folder.

Every image is reproducible: class ``c``, round ``r`` draws its latent noise from
``round_seed(seed, variant, c, r)``, the row's ``seed`` (:mod:`augment.samples`, which
``augment generate`` shares); the rejection filter is :mod:`augment.filtering`'s, the
report folder :mod:`augment.synthesis_report`'s.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator
from tqdm.auto import tqdm

from augment.classifier import Classifier
from augment.config import StrictModel
from augment.data.images import load_images, read_image
from augment.data.manifest import Manifest
from augment.data.prepare import class_count_table
from augment.errors import ConfigError, DataError, ModelError
from augment.filtering import ClassJob, FilterConfig, calibrate, filter_class
from augment.io import atomic_path
from augment.planning import parse_policy, plan
from augment.runtime import OnnxGenerator, from_uint8
from augment.samples import (
    ArraySink,
    ClassStats,
    ImageSink,
    SampleWriter,
    round_chunks,
    round_seed,
)
from augment.synthesis_report import write_reports

log = logging.getLogger(__name__)

#: A judge: the classifier and its class names (as :func:`augment.classifier.load_classifier`).
Judge = tuple[Classifier, Sequence[str]]


# -- configuration -------------------------------------------------------------------------


class RayConfig(StrictModel):
    """params.yaml ``synthesize.ray``: the cluster of ``engine: ray``."""

    address: str | None = Field(
        None, description="the cluster's head host:port (or auto); null: a local one"
    )
    workers: int = Field(2, ge=1, description="actors, one CPU each")


class SynthesisConfig(StrictModel):
    """params.yaml ``synthesize``."""

    variants: list[str] = Field(
        default_factory=list, description="synthesize@<variant> stages, compared by evaluate"
    )
    policy: str = "balance"
    batch_size: int = Field(256, ge=1)
    filter: FilterConfig = FilterConfig()
    grid_per_class: int = Field(10, ge=1, description="columns of reports' samples.png")
    interpolate: list[str] = Field(
        default_factory=list,
        description="variants (with an encoder: bigan, ali) whose z is interpolated between "
        "the encoded real images of each class instead of drawn from the prior",
    )
    engine: Literal["local", "ray"] = Field(
        "local", description="where the classes are synthesized: this process or Ray"
    )
    ray: RayConfig = RayConfig()

    @model_validator(mode="after")
    def _interpolated_variants_synthesize(self) -> SynthesisConfig:
        unknown = [v for v in self.interpolate if v not in self.variants]
        if unknown:
            raise ValueError(f"interpolate: {unknown[0]!r} is not one of variants {self.variants}")
        return self

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
    latent: str = "prior"  # prior | interpolated (between encoded real images)
    threshold: float | None = None
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def written(self) -> dict[str, int]:
        """Synthetic images written per class: accepted, plus filled below the threshold."""
        return {c: self.accepted[c] + self.filled_below_threshold[c] for c in self.plan}

    @property
    def short(self) -> dict[str, int]:
        """Planned images per class that were not written (``filter.fill: false``)."""
        written = self.written
        return {c: self.plan[c] - written[c] for c in self.plan}

    @property
    def after(self) -> dict[str, int]:
        """Train images per class after augmentation (real + synthetic written)."""
        written = self.written
        return {name: self.before[name] + written[name] for name in self.plan}

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
                    "written": self.written[name],
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
        """Plain JSON-ready dict of every field, and the counts derived from them."""
        data = asdict(self)
        data["written"], data["after"] = self.written, self.after
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
        sub = round_seed(seed, generator.info.variant, job.name, 0)
        for _, images in round_chunks(
            generator, job.model_label, sub, job.quota, config.batch_size, anchors=job.anchors
        ):
            writer.write(images, sub)
            stats.generated += len(images)
        stats.passed = stats.accepted = stats.generated
        return stats
    return filter_class(
        job, generator, writer, config.filter, config.batch_size, seed, judge, job.judge_label
    )


# -- the whole run -------------------------------------------------------------------------


@contextlib.contextmanager
def _remote_classes(
    generator: OnnxGenerator,
    jobs: Sequence[ClassJob],
    config: SynthesisConfig,
    seed: int,
    judge: Classifier | None,
) -> Iterator[Iterator[tuple[ArraySink, ClassStats]] | None]:
    """``engine: ray``: each class's writes and stats, made on the cluster, in order
    (None: ``engine: local``, every class made here as it is written)."""
    if config.engine == "local":
        yield None
        return
    from augment.ray_engine import RayEngine

    classes = RayEngine(config.ray.address, config.ray.workers).synthesize(
        generator, jobs, config, seed, judge
    )
    try:
        yield classes
    finally:
        classes.close()  # leaves the cluster (or stops the local one)


def synthesize(
    generator: OnnxGenerator,
    real: Manifest,
    config: SynthesisConfig,
    out_dir: str | Path,
    seed: int,
    judge: Judge | None = None,
    report_dir: str | Path | None = None,
    progress: bool = True,
    encoder: OnnxGenerator | None = None,
) -> SynthesisResult:
    """Augment the real train split of ``real`` with images from ``generator``.

    Writes ``out_dir/manifest.csv`` (every real row, paths relative to ``out_dir``, plus
    one ``synthetic`` train row per image) and ``out_dir/synthetic/<class_index>/*.png``;
    with ``report_dir``, also class_counts.{csv,json,png}, acceptance.json and samples.png
    there. Both folders are written atomically: on any error earlier outputs stay intact.
    Rows are appended to the manifest as images are written, so memory does not grow
    with the number of images. The quality filter runs when ``config.filter.enabled``
    and a ``judge`` (model, class names) is given. With ``encoder`` (the generator's own,
    task ``encode``) each class's ``z`` is interpolated between the codes of two of its
    real train images instead of drawn from the prior (:func:`class_anchors`).
    """
    started = time.perf_counter()
    jobs, judge_model = class_jobs(generator, real, config, judge, encoder=encoder)
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
            _remote_classes(generator, jobs, config, seed, judge_model) as remote,
        ):
            rows = csv.DictWriter(stream, list(real.frame.columns), restval="", lineterminator="\n")
            for index, job in enumerate(jobs):
                name = job.name
                folder = Path("synthetic") / str(index)
                writer = SampleWriter(
                    out_tmp,
                    folder,
                    name,
                    domains[name],
                    generator,
                    rows,
                    bar,
                    config.grid_per_class,
                )
                if remote is None:
                    stats[name] = synthesize_class(
                        job, generator, writer, config, seed, judge_model
                    )
                else:  # made on the cluster: written here, in the same order
                    sink, stats[name] = next(remote)
                    for images, sub in sink.writes:
                        writer.write(images, sub)
                settle(bar, stats[name])
                samples[name] = writer.samples
        seconds = time.perf_counter() - started
        result = make_result(
            before, stats, judge_model is not None, seconds, config, jobs, encoder is not None
        )
        if rep_tmp is not None:
            counts = class_count_table(real)
            counts["train_synthetic"] = pd.Series(result.written).reindex(counts.index).fillna(0)
            counts = counts.astype(np.int64)
            write_reports(
                rep_tmp, counts, result.acceptance(), samples, generator, config.grid_per_class
            )
    log.info(
        "wrote %d synthetic images to %s in %.1f s", sum(result.written.values()), out_dir, seconds
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
    encoder: OnnxGenerator | None = None,
) -> dict[str, np.ndarray]:
    """Like :func:`synthesize`, but returns the images (class name -> u8 N x H x W x C).

    ``quotas`` (class name -> count) replaces the policy's plan. The same seed, config,
    judge and encoder give exactly the images :func:`synthesize` writes.
    """
    jobs, judge_model = class_jobs(generator, real, config, judge, quotas, encoder)
    info = generator.info
    tile = (info.image_size, info.image_size, info.channels)
    arrays: dict[str, np.ndarray] = {}
    with progress_bar(jobs, f"synthesize {info.variant} (in memory)", progress) as bar:
        for job in jobs:
            sink = ArraySink(tile, bar)
            settle(bar, synthesize_class(job, generator, sink, config, seed, judge_model))
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
    encoder: OnnxGenerator | None = None,
) -> tuple[list[ClassJob], Classifier | None]:
    """Check the inputs; one job per class of ``real`` and the judge (None: no filter).

    Each job's quota comes from ``quotas``, else from the policy's plan; with ``encoder``
    each job with a quota interpolates between its class's real codes (``anchors``).
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
    if encoder is not None:
        anchors = class_anchors(encoder, generator, real, [j.name for j in jobs if j.quota])
        for job in jobs:
            job.anchors = anchors.get(job.name)
    return jobs, judge_model


def check_encoder(encoder: OnnxGenerator, generator: OnnxGenerator) -> None:
    """ModelError unless ``encoder`` is the encoder exported with ``generator``: task
    ``encode``, same variant, classes, latent size and training manifest."""
    where, info, made = encoder.path, encoder.info, generator.info
    if info.task != "encode":
        raise ModelError(
            f"{where}: is a {info.task!r} model ({info.variant}), but interpolation needs "
            f"the 'encode' model exported with {made.variant}"
        )
    for key in ("variant", "classes", "latent_dim", "image_size", "channels", "manifest_sha256"):
        if getattr(info, key) != getattr(made, key):
            raise ModelError(
                f"{where}: is not the encoder of {generator.path} ({key} "
                f"{getattr(info, key)!r:.60} != {getattr(made, key)!r:.60})"
            )


def class_anchors(
    encoder: OnnxGenerator, generator: OnnxGenerator, real: Manifest, classes: Sequence[str]
) -> dict[str, np.ndarray]:
    """The encoder's codes f32[M, latent_dim] of the real train images of each of
    ``classes`` (class name -> codes): the points a class's ``z`` is interpolated between."""
    check_encoder(encoder, generator)
    info, train = generator.info, real.subset(split="train", source="real")
    labels = train.frame["label"].to_numpy()
    anchors: dict[str, np.ndarray] = {}
    for name in classes:
        part = train.take(np.flatnonzero(labels == name))
        if not len(part.frame):
            raise DataError(
                f"{real.origin or 'manifest'}: class {name!r} has no real train images "
                "to interpolate between"
            )
        images = load_images(part, info.channels, info.image_size, progress=False).images
        anchors[name] = encoder.encode(from_uint8(images), [name] * len(images))
    return anchors


def settle(bar: tqdm, stats: ClassStats) -> None:
    """Take a class's unwritten shortfall off the bar's total, so that the bar ends full."""
    if stats.written < stats.planned:
        bar.total -= stats.planned - stats.written
        bar.refresh()


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
    interpolated: bool = False,
) -> SynthesisResult:
    written = sum(s.written for s in stats.values())
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
        latent="interpolated" if interpolated else "prior",
        threshold=config.filter.threshold if filtering else None,
        thresholds={j.name: j.threshold for j in jobs if filtering and j.threshold is not None},
    )


@contextlib.contextmanager
def _atomic_dir_or_none(path: str | Path | None) -> Iterator[Path | None]:
    """``atomic_path(path, is_dir=True)``, or nothing when ``path`` is None."""
    if path is None:
        yield None
        return
    with atomic_path(path, is_dir=True) as tmp:
        yield tmp
