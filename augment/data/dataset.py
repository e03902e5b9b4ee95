"""PyTorch datasets over a manifest: real and synthetic images for a classifier's training.

The pipeline's offline output is a manifest CSV of real and synthetic images;
:class:`ManifestDataset` serves one split of it to a ``DataLoader``, optionally limiting
how many synthetic images join each class, and :class:`ClassBalancedSampler` draws every
class equally often::

    from torch.utils.data import DataLoader
    from augment.data.dataset import ManifestDataset
    data = ManifestDataset(
        "data/augmented/sngan/manifest.csv", transform=compose, synthetic_ratio=1.0
    )
    loader = DataLoader(data, batch_size=64, sampler=data.balanced_sampler(), num_workers=2)

``transform`` is called as ``transform(image=image, class_label=index)`` (an albumentations
``Compose`` or any callable returning a dict with ``"image"``); in each DataLoader worker it
is reseeded from torch's worker seed, so workers do not repeat each other's augmentations
and ``torch.manual_seed`` makes a run reproducible.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, get_worker_info

from augment.data.images import read_image
from augment.data.manifest import SPLITS, Manifest
from augment.errors import ConfigError, DataError

__all__ = ["ClassBalancedSampler", "ManifestDataset"]


class ManifestDataset(Dataset[tuple[Any, ...]]):
    """One split of a manifest as ``(image tensor, class index)`` items.

    ``synthetic_ratio`` keeps at most ``floor(ratio * real)`` synthetic images per class
    (``real`` = that class's real images in the split; None keeps all, 0 drops them).
    ``max_per_class`` caps every class, filling it with real images first, then synthetic.
    Which rows the ratio and the cap keep is drawn from ``seed``; kept rows stay in
    manifest order.

    Items are ``read_image(path, channels)`` (uint8 ``H x W x C``), passed through
    ``transform(image=..., **{label_key: index})["image"]`` when given. A torch tensor
    result is returned as is; an array becomes float32 ``C x H x W`` (uint8 scaled to
    [0, 1], floats unchanged). ``with_source`` adds a third element, True for a synthetic
    image (``synthetic``: bool[N] of the selected rows), for a loss weight or separate batch
    norms (:mod:`augment.nn.split_norm`).
    """

    def __init__(
        self,
        manifest: Manifest | str | os.PathLike[str],
        split: str = "train",
        *,
        transform: Callable[..., dict[str, Any]] | None = None,
        synthetic_ratio: float | None = None,
        max_per_class: int | None = None,
        seed: int = 0,
        channels: int | None = None,
        label_key: str = "class_label",
        with_source: bool = False,
    ) -> None:
        if split not in SPLITS:
            raise ConfigError(f"split {split!r} is not one of {', '.join(SPLITS)}")
        if synthetic_ratio is not None and (
            isinstance(synthetic_ratio, bool)
            or not isinstance(synthetic_ratio, Real)
            or not math.isfinite(synthetic_ratio)
            or synthetic_ratio < 0
        ):
            raise ConfigError(f"synthetic_ratio must be a number >= 0, got {synthetic_ratio!r}")
        if max_per_class is not None and not _is_int(max_per_class, 1):
            raise ConfigError(f"max_per_class must be an integer >= 1, got {max_per_class!r}")
        if not _is_int(seed, 0):
            raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
        if channels not in (None, 1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {channels!r}")
        if transform is not None and not callable(transform):
            raise ConfigError(f"transform must be callable, got {type(transform).__name__}")
        if not isinstance(label_key, str) or label_key in ("", "image"):
            raise ConfigError(f"label_key must be a name other than 'image', got {label_key!r}")

        source = manifest if isinstance(manifest, Manifest) else Manifest.read(manifest)
        rows = source.subset(split=split)
        where = source.origin or f"manifest at {source.root}"
        if len(rows) == 0:
            raise DataError(f"{where}: no rows in split {split!r}")
        keep = _select_rows(rows, synthetic_ratio, max_per_class, int(seed))
        if keep.size == 0:
            raise DataError(
                f"{where}: no rows left in split {split!r} with synthetic_ratio={synthetic_ratio} "
                f"(the split has no real images)"
            )
        if keep.size < len(rows):
            rows = rows.take(keep)

        self.classes: tuple[str, ...] = source.classes
        self.manifest: Manifest = rows
        self.labels: np.ndarray = rows.label_indices()
        self.synthetic: np.ndarray = (rows.frame["source"] == "synthetic").to_numpy()
        self.with_source = bool(with_source)
        self.split = split
        self.transform = transform
        self.channels = channels
        self.label_key = label_key
        self._paths = [str(p) for p in rows.absolute_paths()]
        self._seeded: tuple[int, int, int] | None = None

    def __repr__(self) -> str:
        return (
            f"ManifestDataset({len(self)} rows of split {self.split!r}, "
            f"{len(self.classes)} classes, root={str(self.manifest.root)!r})"
        )

    def __len__(self) -> int:
        return len(self._paths)

    def class_counts(self) -> dict[str, int]:
        """Selected rows per class name (every class, 0 where none)."""
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {name: int(n) for name, n in zip(self.classes, counts, strict=True)}

    def balanced_sampler(
        self, num_samples: int | None = None, seed: int = 0
    ) -> ClassBalancedSampler:
        """A :class:`ClassBalancedSampler` over this dataset's labels."""
        return ClassBalancedSampler(self.labels, num_samples=num_samples, seed=seed)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        item = self._item(index)
        return (*item, bool(self.synthetic[index])) if self.with_source else item

    def _item(self, index: int) -> tuple[Any, int]:
        label = int(self.labels[index])
        image = read_image(self._paths[index], self.channels)
        if self.transform is None:
            return _to_tensor(image), label
        self._seed_worker_transform()
        if not image.flags.writeable:  # decoded arrays may be read-only views of PIL's buffer
            image = image.copy()
        result = self.transform(image=image, **{self.label_key: label})
        try:
            out = result["image"]
        except (KeyError, TypeError, IndexError):
            raise ConfigError(
                f"transform must return a dict with key 'image', got {type(result).__name__}"
            ) from None
        return (out if isinstance(out, torch.Tensor) else _to_tensor(out)), label

    def _seed_worker_transform(self) -> None:
        """In a DataLoader worker, reseed the transform once from torch's worker seed.

        Workers start with copies of the same transform (and random state); without this
        every worker would apply the same augmentation sequence.
        """
        info = get_worker_info()
        if info is None:
            return
        key = (os.getpid(), info.id, info.seed)
        if self._seeded == key:
            return
        self._seeded = key
        reseed = getattr(self.transform, "set_random_seed", None)
        if callable(reseed):
            reseed(info.seed % 2**32)


def _select_rows(
    rows: Manifest, synthetic_ratio: float | None, max_per_class: int | None, seed: int
) -> np.ndarray:
    """Sorted positions of the rows that ``synthetic_ratio`` and ``max_per_class`` keep.

    For each class (in index order) the rng permutes the real and the synthetic rows and the
    first ones of each are kept, so a smaller ratio or cap keeps a subset of a larger one.
    """
    if synthetic_ratio is None and max_per_class is None:
        return np.arange(len(rows))
    labels = rows.label_indices()
    synthetic = (rows.frame["source"] == "synthetic").to_numpy()
    rng = np.random.default_rng(seed)
    keep: list[np.ndarray] = []
    for index in range(len(rows.classes)):
        in_class = labels == index
        real = rng.permutation(np.flatnonzero(in_class & ~synthetic))
        fake = rng.permutation(np.flatnonzero(in_class & synthetic))
        n_real = len(real) if max_per_class is None else min(len(real), max_per_class)
        n_fake = len(fake)
        if synthetic_ratio is not None:
            # The small epsilon keeps e.g. 0.29 * 100 = 28.999999999999996 at 29.
            n_fake = min(n_fake, math.floor(synthetic_ratio * len(real) + 1e-9))
        if max_per_class is not None:
            n_fake = min(n_fake, max_per_class - n_real)
        keep += [real[:n_real], fake[:n_fake]]
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


def _is_int(value: Any, minimum: int) -> bool:
    """Whether ``value`` is an integer (not a bool) >= ``minimum``."""
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= minimum


def _to_tensor(image: Any) -> torch.Tensor:
    """An ``H x W x C`` (or ``H x W``) array as float32 ``C x H x W``; uint8 is divided by 255."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise ConfigError(f"transform output must be H x W x C or H x W, got shape {array.shape}")
    chw = np.array(array.transpose(2, 0, 1), dtype=np.float32, order="C")  # a writable copy
    if array.dtype == np.uint8:
        chw /= 255.0
    return torch.from_numpy(chw)


class ClassBalancedSampler(Sampler[int]):
    """Draws row indices so that every class present in ``labels`` is seen equally often.

    Each draw picks a class uniformly, then one of its rows uniformly (with replacement).
    The order is a function of ``(seed, epoch)``; call :meth:`set_epoch` each epoch for a
    new draw, as with ``DistributedSampler``.
    """

    def __init__(
        self, labels: Sequence[int] | np.ndarray, num_samples: int | None = None, seed: int = 0
    ) -> None:
        array = np.asarray(labels)
        if array.size == 0:
            raise DataError("ClassBalancedSampler: no labels")
        if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
            raise DataError(
                f"ClassBalancedSampler: labels must be a 1-D sequence of integers, got "
                f"{array.dtype} of shape {array.shape}"
            )
        if num_samples is not None and not _is_int(num_samples, 1):
            raise ConfigError(
                f"ClassBalancedSampler: num_samples must be an integer >= 1, got {num_samples!r}"
            )
        if not _is_int(seed, 0):
            raise ConfigError(f"ClassBalancedSampler: seed must be an integer >= 0, got {seed!r}")
        self.labels = array.astype(np.int64)
        self.num_samples = len(array) if num_samples is None else int(num_samples)
        self.seed = int(seed)
        self.epoch = 0
        # Rows grouped by class: class k's rows are _order[_starts[k] : _starts[k] + _sizes[k]].
        self._order = np.argsort(self.labels, kind="stable")
        _, self._starts, self._sizes = np.unique(
            self.labels[self._order], return_index=True, return_counts=True
        )

    def set_epoch(self, epoch: int) -> None:
        """Use the draw of ``epoch`` (>= 0) from now on."""
        if not _is_int(epoch, 0):
            raise ConfigError(f"ClassBalancedSampler: epoch must be an integer >= 0, got {epoch!r}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        classes = rng.integers(len(self._sizes), size=self.num_samples)
        offsets = rng.integers(0, self._sizes[classes])
        return iter(self._order[self._starts[classes] + offsets].tolist())
