"""Synthetic samples as every path makes them: one seed scheme, one noise stream, one row.

Class ``c`` (by name) of a synthesize model draws its latent noise, round ``r`` by round,
from ``numpy.random.default_rng(round_seed(seed, variant, c, r))``: the image at position
``i`` of a round is ``generator.generate([k] * (i + 1), seed)[i]`` (``k`` the model's
index of ``c``), however the round is cut into batches. The synthesize stage (rounds
until the filter's quota), :func:`augment.synthesize.synthesize_arrays` (in memory) and
``augment generate`` (round 0, cut into shards) all draw from it, so the same model and
seed give the same images through each, and every synthetic manifest row carries its
round's seed (:func:`synthetic_row`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm.auto import tqdm

from augment.data.images import write_png
from augment.latent_codes import CodeChoice, InterpolatedStream
from augment.runtime import OnnxGenerator, to_uint8
from augment.seeding import derive_seed


def round_seed(seed: int, variant: str, name: str, r: int) -> int:
    """The seed of class ``name``'s round ``r`` (stored in each row's ``seed``)."""
    return derive_seed(seed, "synthesize", variant, name, r)


def round_chunks(
    generator: OnnxGenerator,
    label: int,
    seed: int,
    count: int,
    batch_size: int,
    wanted: set[int] | None = None,
    codes: CodeChoice | None = None,
    total: int | None = None,
    anchors: np.ndarray | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """``(offset, u8 N x H x W x C)`` chunks of ``count`` images of class index ``label``.

    The latent inputs are drawn chunk by chunk from one stream seeded with ``seed``
    (identical to ``generator.generate``); with ``wanted``, chunks holding none of those
    offsets are skipped (their inputs are still drawn, so the others are reproduced
    exactly). ``codes`` sets a model's latent codes; a sweep runs over ``total`` images
    (default ``count``: a job may stop before the end of its class). With ``anchors`` (an
    encoder's codes of the class's real images) ``z`` is interpolated between them
    (:class:`InterpolatedStream`) instead of drawn from the prior.
    """
    stream = (
        InterpolatedStream(anchors, seed)
        if anchors is not None
        else generator.latent_stream(seed, total or count, codes)
    )
    for start in range(0, count, batch_size):
        n = min(batch_size, count - start)
        latent = stream.next(n)
        if wanted is not None and not any(start <= i < start + n for i in wanted):
            continue
        images = generator.run(**latent, label=np.full(n, label, np.int64))
        yield start, to_uint8(images)


def synthetic_row(
    path: str, label: str, domain: str, generator: OnnxGenerator, seed: int
) -> dict[str, str]:
    """The manifest row of a synthetic image at ``path`` (always a train row)."""
    return {
        "path": path,
        "label": label,
        "split": "train",
        "domain": domain,
        "source": "synthetic",
        "variant": generator.info.variant,
        "model_sha256": generator.sha256,
        "seed": str(seed),
    }


class SampleWriter:
    """Writes one class's PNGs (``folder/<n>.png``, numbered from ``start``) under ``root``
    and appends their manifest rows; keeps the first ``grid`` images for a sample grid."""

    def __init__(
        self,
        root: Path,
        folder: Path,
        name: str,
        domain: str,
        generator: OnnxGenerator,
        manifest: csv.DictWriter,
        bar: tqdm,
        grid: int = 0,
        start: int = 0,
    ) -> None:
        self.root, self.folder, self.name, self.domain = root, folder, name, domain
        self.generator, self.manifest, self.bar, self.grid = generator, manifest, bar, grid
        self.count = start
        self.samples: list[np.ndarray] = []

    def write(self, images: np.ndarray, seed: int) -> None:
        if len(images):
            (self.root / self.folder).mkdir(parents=True, exist_ok=True)
        for image in images:
            rel = (self.folder / f"{self.count:06d}.png").as_posix()
            write_png(self.root / rel, image, atomic=False)
            self.manifest.writerow(synthetic_row(rel, self.name, self.domain, self.generator, seed))
            self.count += 1
            if len(self.samples) < self.grid:
                self.samples.append(image)
        self.bar.update(len(images))


class ImageSink(Protocol):
    """Where :func:`synthesize_class` puts accepted images (files or memory)."""

    def write(self, images: np.ndarray, seed: int) -> None: ...


class ArraySink:
    """Keeps one class's images in memory, with the seed of each write: the in-memory twin
    of :class:`SampleWriter` (and what a remote worker sends back to be written)."""

    def __init__(self, tile: tuple[int, int, int], bar: tqdm | None = None) -> None:
        self.tile, self.bar = tile, bar
        self.writes: list[tuple[np.ndarray, int]] = []

    def write(self, images: np.ndarray, seed: int) -> None:
        self.writes.append((images, seed))
        if self.bar is not None:
            self.bar.update(len(images))

    def array(self) -> np.ndarray:
        """Every image written, u8 N x H x W x C."""
        if not self.writes:
            return np.zeros((0, *self.tile), np.uint8)
        return np.concatenate([images for images, _ in self.writes])


@dataclass
class ClassStats:
    """What happened to one class.

    ``accepted`` samples met the threshold (all of them without a filter); ``filled`` were
    below it but completed the quota (``filter.fill``); ``written`` is their sum, short of
    ``planned`` when the budget ran out unfilled; ``passed / generated`` is the acceptance
    rate (None when nothing was generated).
    """

    planned: int
    generated: int = 0
    passed: int = 0
    accepted: int = 0
    filled: int = 0

    @property
    def written(self) -> int:
        return self.accepted + self.filled

    @property
    def acceptance_rate(self) -> float | None:
        return self.passed / self.generated if self.generated else None
