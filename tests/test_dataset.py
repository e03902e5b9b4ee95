"""ManifestDataset and ClassBalancedSampler on a small real manifest, through a real DataLoader."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np
import pytest
import torch
from albumentations.pytorch import ToTensorV2
from torch.utils.data import DataLoader

from augment.data.dataset import ClassBalancedSampler, ManifestDataset
from augment.data.images import write_png
from augment.data.manifest import Manifest
from augment.errors import ConfigError, DataError


@dataclass
class Built:
    """A manifest CSV on disk and the pixels of every image it names."""

    csv: Path
    pixels: dict[str, np.ndarray]  # absolute path -> uint8 H x W x 1

    def original(self, data: ManifestDataset, index: int) -> np.ndarray:
        return self.pixels[str(data.manifest.absolute_paths()[index])]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, mnist_small) -> Built:
    """64 real digits (40 train, 12 val, 12 test) and 2 synthetic variants of each train one."""
    images, labels = mnist_small
    root = tmp_path_factory.mktemp("dataset")
    (root / "real").mkdir()
    (root / "synthetic").mkdir()
    rows: list[dict[str, Any]] = []
    pixels: dict[str, np.ndarray] = {}

    def add(relative: str, image: np.ndarray, **row: Any) -> None:
        write_png(root / relative, image)
        pixels[str(root / relative)] = image
        rows.append({"path": relative, **row})

    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        split = "train" if i < 40 else "val" if i < 52 else "test"
        add(f"real/{i}.png", image, label=str(label), split=split, domain="mnist")
    for i in range(40):
        variants = (255 - images[i], np.roll(images[i], 3, axis=1))
        for k, image in enumerate(variants):
            add(
                f"synthetic/{i}_{k}.png",
                np.ascontiguousarray(image),
                label=str(labels[i]),
                split="train",
                domain="mnist",
                source="synthetic",
                variant="sngan",
                seed=str(k),
            )
    csv = root / "manifest.csv"
    Manifest.from_rows(rows, root).write(csv)
    return Built(csv, pixels)


def synthetic_counts(data: ManifestDataset) -> dict[str, int]:
    return data.manifest.counts("train", "synthetic").to_dict()


def kept_paths(data: ManifestDataset) -> list[str]:
    return list(data.manifest.frame["path"])


# -- reading -------------------------------------------------------------------------------


def test_items_are_scaled_pixels_with_labels(built: Built, mnist_small) -> None:
    by_path = ManifestDataset(built.csv)
    manifest = Manifest.read(built.csv)
    by_manifest = ManifestDataset(manifest)
    assert by_path.classes == manifest.classes == tuple(str(d) for d in range(10))
    assert len(by_path) == len(by_manifest) == 120
    assert by_path.labels.dtype == np.int64
    for i in range(len(by_path)):
        x, y = by_path[i]
        x2, y2 = by_manifest[i]
        assert x.dtype == torch.float32 and x.shape == (1, 28, 28)
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
        expected = torch.from_numpy(built.original(by_path, i).transpose(2, 0, 1)) / 255.0
        torch.testing.assert_close(x, expected, rtol=0, atol=0)
        assert torch.equal(x, x2) and y == y2 == by_path.labels[i]
        assert isinstance(y, int)
        assert by_path.classes[y] == by_path.manifest.frame.at[i, "label"]
    # Real rows keep the source labels: row i of the CSV is digit i of the fixture.
    val = ManifestDataset(built.csv, "val")
    assert len(val) == 12 and list(val.labels) == list(mnist_small[1][40:52])
    assert sum(ManifestDataset(built.csv, "test").class_counts().values()) == 12


def test_channels_converts_on_read(built: Built) -> None:
    x, _ = ManifestDataset(built.csv, "val", channels=3)[0]
    assert x.shape == (3, 28, 28)
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])


def test_class_counts_cover_every_class(built: Built) -> None:
    data = ManifestDataset(built.csv, "train", max_per_class=1)
    counts = data.class_counts()
    assert list(counts) == list(data.classes)
    in_train = Manifest.read(built.csv).counts("train").to_dict()
    assert counts == {name: min(1, in_train[name]) for name in data.classes}
    assert 0 in counts.values()  # a class with no train rows still appears
    expected = Manifest.read(built.csv).counts("val").to_dict()
    assert ManifestDataset(built.csv, "val").class_counts() == expected


# -- row selection -------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [None, 0, 0.5, 1.0, 1.5, 2.0, 10.0])
def test_synthetic_ratio_keeps_floor_ratio_times_real(built: Built, ratio: float | None) -> None:
    full = Manifest.read(built.csv)
    real = full.counts("train", "real").to_dict()
    available = full.counts("train", "synthetic").to_dict()
    data = ManifestDataset(built.csv, synthetic_ratio=ratio)
    assert data.manifest.counts("train", "real").to_dict() == real
    if ratio is None:
        assert synthetic_counts(data) == available
    else:
        expected = {c: min(available[c], math.floor(ratio * real[c])) for c in real}
        assert synthetic_counts(data) == expected
    # Kept rows stay in manifest order.
    order = {path: i for i, path in enumerate(full.frame["path"])}
    positions = [order[p] for p in kept_paths(data)]
    assert positions == sorted(positions)
    assert list(data.labels) == [data.classes.index(lab) for lab in data.manifest.frame["label"]]


def test_selection_is_deterministic_per_seed(built: Built) -> None:
    first = kept_paths(ManifestDataset(built.csv, synthetic_ratio=0.5, seed=3))
    again = kept_paths(ManifestDataset(built.csv, synthetic_ratio=0.5, seed=3))
    other = kept_paths(ManifestDataset(built.csv, synthetic_ratio=0.5, seed=4))
    assert first == again
    assert first != other
    assert len(first) == len(other)
    # A smaller ratio keeps a subset of a larger one (same seed).
    larger = kept_paths(ManifestDataset(built.csv, synthetic_ratio=1.0, seed=3))
    assert set(first) <= set(larger)


@pytest.mark.parametrize("cap", [1, 2, 3, 5, 8, 100])
def test_max_per_class_fills_with_real_rows_first(built: Built, cap: int) -> None:
    full = Manifest.read(built.csv)
    real = full.counts("train", "real").to_dict()
    available = full.counts("train", "synthetic").to_dict()
    data = ManifestDataset(built.csv, max_per_class=cap, seed=1)
    kept_real = data.manifest.counts("train", "real").to_dict()
    for name in data.classes:
        assert kept_real[name] == min(real[name], cap)
        assert synthetic_counts(data)[name] == min(available[name], cap - kept_real[name])
        assert data.class_counts()[name] == min(real[name] + available[name], cap)


def test_cap_and_ratio_combine(built: Built) -> None:
    full = Manifest.read(built.csv)
    real = full.counts("train", "real").to_dict()
    data = ManifestDataset(built.csv, synthetic_ratio=1.0, max_per_class=5, seed=2)
    for name in data.classes:
        kept_real = min(real[name], 5)
        expected = min(math.floor(1.0 * real[name]), 5 - kept_real)
        assert synthetic_counts(data)[name] == expected
    cut = kept_paths(ManifestDataset(built.csv, max_per_class=2, seed=0))
    assert cut == kept_paths(ManifestDataset(built.csv, max_per_class=2, seed=0))
    assert cut != kept_paths(ManifestDataset(built.csv, max_per_class=2, seed=1))


# -- transforms ----------------------------------------------------------------------------


class StampLabel(A.ImageOnlyTransform):
    """Paints the whole image with the class index it is given under ``key``."""

    def __init__(self, key: str = "class_label", p: float = 1.0) -> None:
        super().__init__(p=p)
        self.key = key

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        return {"value": data[self.key]}

    def apply(self, img: np.ndarray, value: int = 0, **params: Any) -> np.ndarray:
        return np.full_like(img, value)


def test_albumentations_transform_is_applied(built: Built) -> None:
    data = ManifestDataset(built.csv, "val", transform=A.Compose([A.HorizontalFlip(p=1.0)]))
    for i in range(len(data)):
        x, _ = data[i]
        flipped = built.original(data, i)[:, ::-1, 0] / 255.0
        assert torch.equal(x[0], torch.from_numpy(flipped).float())
        assert not torch.equal(x[0], torch.from_numpy(flipped[:, ::-1].copy()).float())


@pytest.mark.parametrize("key", ["class_label", "y"])
def test_transform_receives_class_index_under_label_key(built: Built, key: str) -> None:
    compose = A.Compose([StampLabel(key)], seed=0)
    data = ManifestDataset(built.csv, "train", transform=compose, label_key=key)
    for i in range(0, len(data), 7):
        x, y = data[i]
        assert torch.equal(x, torch.full((1, 28, 28), y / 255.0))


def test_plain_callable_and_tensor_results(built: Built) -> None:
    seen: list[dict[str, Any]] = []

    def halve(image: np.ndarray, **extra: Any) -> dict[str, Any]:
        seen.append(extra)
        return {"image": image[..., 0].astype(np.float32) / 2}  # H x W float: not rescaled

    data = ManifestDataset(built.csv, "val", transform=halve, label_key="target")
    x, y = data[3]
    assert seen == [{"target": y}]
    expected = torch.from_numpy(built.original(data, 3)[..., 0].astype(np.float32) / 2)
    assert x.dtype == torch.float32 and torch.equal(x, expected[None])

    data = ManifestDataset(built.csv, "val", transform=A.Compose([ToTensorV2()]))
    x, _ = data[3]  # a tensor is returned as is (ToTensorV2 does not scale)
    assert x.dtype == torch.uint8
    assert torch.equal(x, torch.from_numpy(built.original(data, 3).transpose(2, 0, 1)))


def test_main_process_keeps_the_transform_seed(built: Built) -> None:
    data = ManifestDataset(built.csv, "val", transform=A.Compose([A.HorizontalFlip(p=0.5)], seed=7))
    reference = A.Compose([A.HorizontalFlip(p=0.5)], seed=7)
    for i in range(len(data)):
        original = built.original(data, i)
        expected = reference(image=original, class_label=0)["image"]
        assert torch.equal(data[i][0], torch.from_numpy(expected.transpose(2, 0, 1)) / 255.0)


# -- DataLoader workers --------------------------------------------------------------------


def flip_pattern(built: Built, data: ManifestDataset, seed: int) -> list[list[bool]]:
    """Per batch, whether each item came out flipped (the sampler is sequential)."""
    torch.manual_seed(seed)
    loader = DataLoader(data, batch_size=8, num_workers=2)
    pattern = []
    for b, (x, y) in enumerate(loader):
        assert x.shape == (len(y), 1, 28, 28)
        row = []
        for j in range(len(y)):
            original = torch.from_numpy(built.original(data, 8 * b + j)[..., 0]) / 255.0
            is_flipped = torch.equal(x[j, 0], original.flip(1))
            assert is_flipped != torch.equal(x[j, 0], original)
            assert int(y[j]) == data.labels[8 * b + j]
            row.append(is_flipped)
        pattern.append(row)
    return pattern


def test_workers_are_reseeded_and_reproducible(built: Built) -> None:
    compose = A.Compose([A.HorizontalFlip(p=0.5)], seed=1)
    data = ManifestDataset(built.csv, "train", transform=compose)
    first = flip_pattern(built, data, seed=11)
    assert len(first) == 15
    # The same torch seed gives the same augmentations ...
    assert flip_pattern(built, data, seed=11) == first
    # ... the two workers (even and odd batches) do not repeat each other's flips ...
    worker0, worker1 = first[0::2], first[1::2]
    assert worker0[: len(worker1)] != worker1
    assert any(any(row) for row in first) and not all(all(row) for row in first)
    # ... and another torch seed gives other ones.
    assert flip_pattern(built, data, seed=12) != first


# -- sampler -------------------------------------------------------------------------------


def test_balanced_sampler_evens_out_a_long_tail() -> None:
    labels = np.array([0] * 200 + [1] * 10 + [2] * 2)
    sampler = ClassBalancedSampler(labels, num_samples=30000, seed=5)
    drawn = np.array(list(sampler))
    assert len(sampler) == len(drawn) == 30000
    assert drawn.min() >= 0 and drawn.max() < len(labels)
    shares = np.bincount(labels[drawn], minlength=3) / len(drawn)
    assert np.all(np.abs(shares - 1 / 3) < 0.03), shares
    assert set(drawn[labels[drawn] == 2].tolist()) == {210, 211}  # both rows of the rare class


def test_balanced_sampler_is_deterministic_per_seed_and_epoch() -> None:
    labels = [3, 3, 3, 7, 7, 9]  # classes need not be 0..K-1
    sampler = ClassBalancedSampler(labels, seed=1)
    assert len(sampler) == 6
    first = list(sampler)
    assert list(sampler) == first == list(ClassBalancedSampler(labels, seed=1))
    assert all(isinstance(i, int) for i in first)
    longer = ClassBalancedSampler(labels, num_samples=200, seed=1)
    assert list(longer) != list(ClassBalancedSampler(labels, num_samples=200, seed=2))
    epoch0 = list(longer)
    longer.set_epoch(1)
    assert list(longer) != epoch0
    longer.set_epoch(0)
    assert list(longer) == epoch0


def test_dataset_balanced_sampler_in_a_loader(built: Built) -> None:
    data = ManifestDataset(built.csv, "train", synthetic_ratio=0)
    sampler = data.balanced_sampler(num_samples=50, seed=3)
    assert len(sampler) == 50 and len(data.balanced_sampler()) == len(data)
    labels = torch.cat([y for _, y in DataLoader(data, batch_size=16, sampler=sampler)])
    assert len(labels) == 50
    assert list(sampler) == list(data.balanced_sampler(num_samples=50, seed=3))


def test_with_source_marks_synthetic_items_through_a_loader_with_workers(built: Built) -> None:
    data = ManifestDataset(built.csv, synthetic_ratio=1.0, with_source=True)
    expected = (data.manifest.frame["source"] == "synthetic").to_numpy()
    assert 0 < expected.sum() < len(data) and np.array_equal(data.synthetic, expected)
    marks = torch.cat([s for _, _, s in DataLoader(data, batch_size=16, num_workers=2)])
    assert marks.dtype == torch.bool and np.array_equal(marks.numpy(), expected)
    image, label, synthetic = data[int(np.flatnonzero(expected)[0])]
    assert synthetic is True and label == data.labels[int(np.flatnonzero(expected)[0])]
    assert len(ManifestDataset(built.csv)[0]) == 2  # without it: (image, label)


# -- errors --------------------------------------------------------------------------------


def test_errors_name_what_is_wrong(built: Built, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'training' is not one of train, val, test"):
        ManifestDataset(built.csv, "training")
    with pytest.raises(ConfigError, match="synthetic_ratio must be a number >= 0, got -0.5"):
        ManifestDataset(built.csv, synthetic_ratio=-0.5)
    with pytest.raises(ConfigError, match="max_per_class must be an integer >= 1, got 0"):
        ManifestDataset(built.csv, max_per_class=0)
    with pytest.raises(DataError, match="ClassBalancedSampler: no labels"):
        ClassBalancedSampler([])
    with pytest.raises(DataError, match="file not found"):
        ManifestDataset(tmp_path / "missing.csv")

    image = np.zeros((4, 4, 1), np.uint8)
    write_png(tmp_path / "a.png", image)
    rows = [
        {"path": "a.png", "label": "x"},
        {"path": "gone.png", "label": "y"},
        {"path": "a.png", "label": "x", "source": "synthetic"},
    ]
    csv = tmp_path / "manifest.csv"
    Manifest.from_rows(rows, tmp_path).write(csv)
    with pytest.raises(DataError, match=r"manifest\.csv: no rows in split 'test'"):
        ManifestDataset(csv, "test")
    data = ManifestDataset(csv)
    with pytest.raises(DataError, match=r"gone\.png: file not found"):
        data[1]

    Manifest.from_rows([rows[2]], tmp_path).write(csv)
    with pytest.raises(DataError, match="no rows left in split 'train'"):
        ManifestDataset(csv, synthetic_ratio=0)
