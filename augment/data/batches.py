"""What the training loop trains on, and the deterministic order it draws batches in.

:class:`TrainingData` holds the images and every per-image input a variant can ask for;
:class:`BatchStream` and :class:`DomainStream` decide which rows make each batch, such
that batch ``k`` depends only on (seed, k): a resumed run draws exactly the batches an
uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from augment.errors import ModelError
from augment.seeding import derive_seed


@dataclass(frozen=True)
class TrainingData:
    """The training inputs of one run.

    ``images`` u8[N,H,W,C]; ``labels`` i64[N] class indices (-1 where unknown: a
    translator's target domain); translators add ``domain`` i64[N] (each image's domain
    index), when paired ``target`` u8[N,H,W,C] (the image paired with each one), and,
    unpaired, ``plain`` u8[N,H,W,C] where a domain has a style (each image's plain
    original; None: every image is its own).
    ``domain_names`` names the domain indices; ``sha256`` is the training manifest's hash
    (the provenance exported models carry); checkpoint fingerprints use :meth:`digest`.
    """

    images: np.ndarray
    labels: np.ndarray
    domain: np.ndarray | None = None
    target: np.ndarray | None = None
    plain: np.ndarray | None = None
    domain_names: tuple[str, ...] = ()
    sha256: str = ""

    def digest(self) -> str:
        """sha256 of what training reads (every array, the domain names): the data's
        identity, the same wherever the source folder lies (the manifest's hash changes
        with its ``origin`` paths when the folder moves)."""
        h = hashlib.sha256(repr(self.domain_names).encode())
        for name in ("images", "labels", "domain", "target", "plain"):
            array = getattr(self, name)
            h.update(f"{name}:{None if array is None else (array.shape, array.dtype.str)}".encode())
            if array is not None:
                h.update(np.ascontiguousarray(array).tobytes())
        return h.hexdigest()

    def __post_init__(self) -> None:
        n = len(self.images)
        if n == 0:
            raise ModelError("no training images")
        if len(self.labels) != n:
            raise ModelError(f"{len(self.labels)} labels for {n} training images")
        if self.domain is not None and len(self.domain) != n:
            raise ModelError(f"{len(self.domain)} domain indices for {n} training images")
        for name in ("target", "plain"):
            other = getattr(self, name)
            if other is not None and other.shape != self.images.shape:
                raise ModelError(
                    f"{name} images {other.shape} do not match the images {self.images.shape}"
                )


class BatchStream:
    """Deterministic real batches: batch ``k`` depends only on (seed, k), so resume is exact.

    ``uniform`` walks a fresh permutation per epoch; ``balanced`` draws each class equally
    often (with replacement), which shows tail classes to the discriminator more often.
    """

    def __init__(self, labels: Tensor, batch_size: int, seed: int, sampling: str) -> None:
        self.labels, self.batch_size, self.seed, self.sampling = labels, batch_size, seed, sampling
        self.per_epoch = max(len(labels) // batch_size, 1)
        counts = torch.bincount(labels).double()
        self.weights = (1.0 / counts.clamp(min=1))[labels]
        self.drawn = 0
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.long)

    def next_indices(self) -> Tensor:
        epoch, position = divmod(self.drawn, self.per_epoch)
        self.drawn += 1
        if epoch != self._epoch:
            rng = torch.Generator().manual_seed(derive_seed(self.seed, "epoch", epoch))
            n = self.per_epoch * self.batch_size
            if self.sampling == "balanced":
                self._order = torch.multinomial(self.weights, n, replacement=True, generator=rng)
            else:
                self._order = torch.randperm(len(self.labels), generator=rng)[:n]
                if len(self._order) < n:  # fewer images than one batch: repeat
                    self._order = self._order.repeat(math.ceil(n / len(self._order)))[:n]
            self._epoch = epoch
        start = position * self.batch_size
        return self._order[start : start + self.batch_size]


class DomainStream:
    """Batches with an equal share of each domain (translation): one :class:`BatchStream`
    per domain, uniform within it; batch ``k`` still depends only on (seed, k)."""

    def __init__(self, domains: Tensor, batch_size: int, seed: int) -> None:
        count = int(domains.max()) + 1
        if batch_size < count:
            raise ModelError(
                f"batch_size {batch_size} cannot hold one image of each of {count} domains"
            )
        self.rows = [torch.nonzero(domains == d).flatten() for d in range(count)]
        empty = [d for d, rows in enumerate(self.rows) if len(rows) == 0]
        if empty:
            raise ModelError(f"domain {empty[0]} has no training images")
        self.streams = [
            BatchStream(
                torch.zeros(len(rows), dtype=torch.long),
                batch_size // count,
                derive_seed(seed, "domain", d),
                "uniform",
            )
            for d, rows in enumerate(self.rows)
        ]
        self.per_epoch = max(s.per_epoch for s in self.streams)

    @property
    def drawn(self) -> int:
        return self.streams[0].drawn

    @drawn.setter
    def drawn(self, value: int) -> None:
        for stream in self.streams:
            stream.drawn = value

    def next_indices(self) -> Tensor:
        pairs = zip(self.rows, self.streams, strict=True)
        return torch.cat([rows[stream.next_indices()] for rows, stream in pairs])
