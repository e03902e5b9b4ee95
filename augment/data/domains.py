"""Image domains for translation (``data/domains``): each a source and a style.

MNIST-M (Ganin & Lempitsky, 2015) blends MNIST digits into crops of colour photos. Ours is
built the same way from what ships with scikit-image and scikit-learn: each pixel is the
absolute difference between a random colour crop and the binarized digit. The photos are
split so that train and test digits never share a background.

Domains drawn from the same source share its images out, each image to one domain only,
so no digit is seen in two domains (unpaired training cannot cheat with pairs). A styled
domain also keeps the plain image each of its images was made from
(``content/<domain>/...`` beside ``images/<domain>/...``): the pairs Pix2Pix learns from.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator
from tqdm.auto import tqdm

from augment.config import StrictModel
from augment.data.images import convert_image, image_grid, write_png
from augment.data.manifest import Manifest, natural_sorted
from augment.data.prepare import limit_per_class, split_indices
from augment.data.sources import MnistSource, RawDataset, SourceConfig, load_source
from augment.errors import DataError
from augment.io import atomic_path
from augment.seeding import derive_seed

log = logging.getLogger(__name__)

Style = Literal["none", "mnistm-like", "inverted"]

SKIMAGE_PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "rocket",
)


def colour_photos() -> dict[str, np.ndarray]:
    """Natural colour photos (u8 H x W x 3) by name, from scikit-image and scikit-learn."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    photos = {n: getattr(skimage.data, n)() for n in SKIMAGE_PHOTOS if hasattr(skimage.data, n)}
    photos["motorcycle"] = skimage.data.stereo_motorcycle()[0]
    sample = load_sample_images()
    for name, image in zip(sample.filenames, sample.images, strict=True):
        photos[Path(name).name] = image
    return photos


def split_photos(
    names: Sequence[str], test_fraction: float = 0.3, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Disjoint (train, test) photo names, each non-empty; the same for the same seed."""
    if len(names) < 2:
        raise ValueError("split_photos needs at least two photos")
    order = np.random.default_rng(seed).permutation(sorted(names))
    n_test = min(len(order) - 1, max(1, round(test_fraction * len(order))))
    return sorted(order[n_test:].tolist()), sorted(order[:n_test].tolist())


def blend(
    digits: np.ndarray, photos: Sequence[np.ndarray], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Digits (u8 N x H x W[x1]) on random crops of ``photos``: |crop - 255 * (digit > 127)|.

    Returns the u8 N x H x W x 3 images and the index of the photo behind each one.
    """
    digits = digits.reshape(digits.shape[0], digits.shape[1], digits.shape[2])
    n, h, w = digits.shape
    if any(p.shape[0] < h or p.shape[1] < w for p in photos):
        raise ValueError(f"every photo must be at least {h}x{w}")
    which = rng.integers(len(photos), size=n)
    out = np.empty((n, h, w, 3), np.uint8)
    for i, k in enumerate(which):
        photo = photos[k]
        y = rng.integers(photo.shape[0] - h + 1)
        x = rng.integers(photo.shape[1] - w + 1)
        crop = photo[y : y + h, x : x + w].astype(np.int16)
        ink = np.where(digits[i] > 127, 255, 0).astype(np.int16)[..., None]
        out[i] = np.abs(crop - ink).astype(np.uint8)
    return out, which


@dataclass(frozen=True)
class BlendedDigits:
    """An MNIST-M-like set: the images, the photo behind each, and the photo split."""

    images: np.ndarray  # u8 N x H x W x 3
    photos: tuple[str, ...]  # per image
    train_photos: tuple[str, ...]
    test_photos: tuple[str, ...]


def mnistm_like(
    digits: np.ndarray, is_test: np.ndarray, seed: int = 0, test_fraction: float = 0.3
) -> BlendedDigits:
    """Blend ``digits``; those marked ``is_test`` take backgrounds from test photos only.

    Deterministic for a seed: the same digits and seed give the same bytes.
    """
    is_test = np.asarray(is_test, bool)
    if is_test.shape != (len(digits),):
        raise ValueError(f"is_test must have one flag per digit ({len(digits)})")
    library = colour_photos()
    train_names, test_names = split_photos(list(library), test_fraction, seed)
    rng = np.random.default_rng(seed)
    images = np.empty((len(digits), digits.shape[1], digits.shape[2], 3), np.uint8)
    names = np.empty(len(digits), object)
    for flag, pool in ((False, train_names), (True, test_names)):
        rows = np.flatnonzero(is_test == flag)
        blended, which = blend(digits[rows], [library[n] for n in pool], rng)
        images[rows] = blended
        names[rows] = np.asarray(pool, object)[which]
    return BlendedDigits(images, tuple(names), tuple(train_names), tuple(test_names))


# -- the domains of data/domains ------------------------------------------------------------


class DomainSpec(StrictModel):
    """One domain: the source its images come from and the style applied to them."""

    data: SourceConfig = Field(default_factory=MnistSource)
    style: Style = Field(
        "none", description="none | mnistm-like (digits on photo crops) | inverted (255 - x)"
    )


class DomainsConfig(StrictModel):
    """The ``domains`` section of params.yaml: the domains translators learn and are judged on.

    ``source`` is the labeled domain that translate@<variant> turns into ``target``; two-
    domain translators learn exactly these two, multi-domain ones (StarGAN) all ``sets``.
    """

    source: str = "mnist"
    target: str = "mnistm-like"
    image_size: int | None = Field(28, ge=8, description="every domain resized to this")
    channels: Literal[1, 3] | None = Field(3, description="every domain converted to this")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="where a source has no test split")
    limit_per_class: int | None = Field(None, ge=1, description="cap per class and split")
    sets: dict[str, DomainSpec] = Field(
        default_factory=lambda: {
            "mnist": DomainSpec(),
            "mnistm-like": DomainSpec(style="mnistm-like"),
        }
    )

    @model_validator(mode="after")
    def _check(self) -> DomainsConfig:
        if len(self.sets) < 2:
            raise ValueError("sets: at least two domains are needed")
        for name in self.sets:
            if not name or "/" in name or name.startswith("."):
                raise ValueError(f"sets: {name!r} is not a valid domain name")
        for key in ("source", "target"):
            name = getattr(self, key)
            if name not in self.sets:
                raise ValueError(f"{key}: unknown domain {name!r} (sets: {', '.join(self.sets)})")
        if self.source == self.target:
            raise ValueError("source and target must be different domains")
        return self

    def ordered(self) -> list[str]:
        """Domain names with the source first and the target second (a two-domain
        translator's domains 0 and 1), then the others in their order."""
        rest = [n for n in self.sets if n not in (self.source, self.target)]
        return [self.source, self.target, *rest]


def content_path(path: str) -> str:
    """Where a styled domain keeps the plain image behind ``images/<domain>/...``."""
    return "content/" + path.removeprefix("images/")


def deal(labels: np.ndarray, parts: int, seed: int) -> np.ndarray:
    """Which of ``parts`` each image goes to: per class, a seeded shuffle dealt in turn."""
    share = np.zeros(len(labels), np.int64)
    for label in natural_sorted(set(labels.tolist())):
        members = np.flatnonzero(labels == label)
        order = np.random.default_rng(derive_seed(seed, "deal", label)).permutation(members)
        share[order] = np.arange(len(order)) % parts
    return share


@dataclass(frozen=True)
class Domain:
    """One built domain: u8 N x S x S x C images (and their plain content), labels, splits."""

    name: str
    images: np.ndarray
    content: np.ndarray | None
    labels: np.ndarray
    split: np.ndarray


def style_images(
    images: np.ndarray, style: Style, is_test: np.ndarray, config: DomainsConfig, seed: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """(styled images, the plain content images or None) at the config's size/channels."""
    size = config.image_size

    def converted(arrays: np.ndarray, channels: int | None) -> np.ndarray:
        return np.stack([convert_image(a, channels, size) for a in arrays])

    content = converted(images, config.channels)
    if style == "none":
        return content, None
    if style == "inverted":
        return 255 - content, content
    digits = converted(images, 1)[..., 0]
    blended = mnistm_like(digits, is_test, seed).images
    return converted(blended, config.channels or 3), content


def build_domain(
    name: str, raw: RawDataset, rows: np.ndarray, config: DomainsConfig, seed: int
) -> Domain:
    """The domain ``name`` from the ``rows`` of ``raw`` dealt to it."""
    spec = config.sets[name]
    labels = raw.labels[rows]
    predefined = None if raw.split is None else raw.split[rows]
    split = split_indices(labels, predefined, 0.0, config.test_fraction, derive_seed(seed, name))
    if config.limit_per_class is not None:
        keep = limit_per_class(labels, split, config.limit_per_class, derive_seed(seed, name))
        rows, labels, split = rows[keep], labels[keep], split[keep]
    images, content = style_images(
        raw.images[rows], spec.style, split == "test", config, derive_seed(seed, name, "style")
    )
    return Domain(name, images, content, labels, split)


def build_domains(config: DomainsConfig, seed: int) -> list[Domain]:
    """Every domain of ``config`` in :meth:`DomainsConfig.ordered` order.

    Domains with the same source divide its images between them (stratified by class).
    Sizes and channel counts must agree after conversion: DataError naming two that differ.
    """
    groups: dict[str, list[str]] = {}
    for name, spec in config.sets.items():
        groups.setdefault(spec.data.model_dump_json(), []).append(name)
    built: dict[str, Domain] = {}
    for names in groups.values():
        raw = load_source(config.sets[names[0]].data, channels=config.channels)
        share = deal(raw.labels, len(names), derive_seed(seed, "domains", *names))
        for position, name in enumerate(names):
            rows = np.flatnonzero(share == position)
            built[name] = build_domain(name, raw, rows, config, seed)
            log.info("domain %s: %d images from %s", name, len(rows), raw.name)
    domains = [built[name] for name in config.ordered()]
    first = domains[0]
    for other in domains[1:]:
        if other.images.shape[1:] != first.images.shape[1:]:
            raise DataError(
                f"domains {first.name!r} ({_describe(first)}) and {other.name!r} "
                f"({_describe(other)}) differ: set domains.image_size and domains.channels"
            )
    return domains


def _describe(domain: Domain) -> str:
    h, w, c = domain.images.shape[1:]
    return f"{h}x{w}, {c} channel{'s' if c > 1 else ''}"


def write_domains(domains: Sequence[Domain], out_dir: Path) -> Manifest:
    """Write ``images/<domain>/<split>/<class index>/<n>.png`` (and ``content/...`` of
    styled domains) and ``manifest.csv`` to ``out_dir``, atomically."""
    classes = natural_sorted({str(label) for d in domains for label in d.labels})
    rows: list[dict[str, Any]] = []
    total = sum(len(d.labels) for d in domains)
    with (
        atomic_path(out_dir, is_dir=True) as tmp,
        tqdm(total=total, desc="writing domains", unit="img", disable=None) as bar,
    ):
        for domain in domains:
            counters: dict[tuple[str, str], int] = {}
            for i, (label, split) in enumerate(zip(domain.labels, domain.split, strict=True)):
                n = counters.get((split, label), 0)
                counters[(split, label)] = n + 1
                path = f"images/{domain.name}/{split}/{classes.index(label)}/{n}.png"
                _write(tmp / path, domain.images[i])
                if domain.content is not None:
                    _write(tmp / content_path(path), domain.content[i])
                row = {"path": path, "label": label, "split": split, "domain": domain.name}
                rows.append(row | {"source": "real"})
                bar.update()
        Manifest.from_rows(rows, tmp).write(tmp / "manifest.csv")
    return Manifest.read(out_dir / "manifest.csv")


def _write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(path, image, atomic=False)


def domain_preview(domains: Sequence[Domain], per_domain: int = 10) -> np.ndarray:
    """One row per domain (labelled): its first train image of each class, in class order."""
    tiles = []
    for domain in domains:
        train = np.flatnonzero(domain.split == "train")
        labels = domain.labels[train]
        picked = [int(train[labels == c][0]) for c in natural_sorted(set(labels.tolist()))]
        picked += [int(i) for i in train if i not in picked]
        tiles.extend(domain.images[picked[:per_domain]])
    return image_grid(np.stack(tiles), per_domain, row_labels=[d.name for d in domains])


def domain_counts(manifest: Manifest) -> dict[str, dict[str, int]]:
    """Images per domain and split."""
    return {
        str(name): {str(k): int(v) for k, v in group["split"].value_counts().sort_index().items()}
        for name, group in manifest.frame.groupby("domain", sort=False)
    }
