"""Tests of augment.synthesize and the synthesize stage, on real files and real models.

The generator is a real cgan exported to ONNX. A GAN does not learn 8x8 digits in a few
seconds of CPU, so its generator is fitted by regression onto real digits of each class
(same networks, same export path): its samples are digit-like enough for a judge trained
on sklearn's digits to accept some classes and reject others.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image
from sklearn.datasets import load_digits
from tqdm import tqdm

from augment.classifier import (
    Classifier,
    ClassifierConfig,
    load_classifier,
    predict_proba,
    save_classifier,
    train_classifier,
)
from augment.data.images import load_images, to_tensor, write_png
from augment.data.manifest import Manifest
from augment.errors import ConfigError, DataError, ModelError
from augment.export import export_onnx
from augment.filtering import CopyCheck, calibrated_thresholds, nearest_distances
from augment.registry import Registry
from augment.runtime import OnnxGenerator, to_uint8
from augment.samples import ClassStats, round_seed
from augment.synthesize import SynthesisConfig, settle, synthesize, synthesize_arrays
from augment.variant import DataSpec

CLASSES = ("0", "1", "2", "3", "4")
TRAIN = {"0": 40, "1": 20, "2": 10, "3": 5, "4": 3}
HELD_OUT = 4  # val and test images per class


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """sklearn digits 0-4 as u8 N x 8 x 8 x 1 and int labels."""
    data = load_digits()
    keep = data.target < len(CLASSES)
    images = np.clip(np.rint(data.images[keep] * 255 / 16), 0, 255).astype(np.uint8)
    return images[..., None], data.target[keep].astype(np.int64)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, digits: tuple) -> Path:
    """A long-tailed prepared dataset: data/prepared/{manifest.csv, images/}."""
    images, labels = digits
    root = tmp_path_factory.mktemp("project") / "data" / "prepared"
    rows = []
    for k, name in enumerate(CLASSES):
        for j, i in enumerate(np.flatnonzero(labels == k)[: TRAIN[name] + 2 * HELD_OUT]):
            split = "train" if j < TRAIN[name] else "val" if j < TRAIN[name] + HELD_OUT else "test"
            path = root / "images" / name / f"{j:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_png(path, images[i])
            rows.append(
                {
                    "path": f"images/{name}/{j:04d}.png",
                    "label": name,
                    "split": split,
                    "domain": "digits",
                    "source": "real",
                }
            )
    Manifest.from_rows(rows, root).write(root / "manifest.csv")
    return root / "manifest.csv"


def export_cgan(
    path: Path,
    image_size: int = 8,
    classes: tuple[str, ...] = CLASSES,
    fit_to: tuple[np.ndarray, np.ndarray] | None = None,
) -> Path:
    """Export a cgan (fitted by regression onto ``fit_to`` images when given)."""
    torch.manual_seed(0)
    variant = Registry.from_plugins().create(
        "cgan", {"latent_dim": 8, "width": 16}, DataSpec(image_size, 1, classes)
    )
    generator = variant.generator
    if fit_to is not None:
        images, labels = to_tensor(fit_to[0]), torch.as_tensor(fit_to[1])
        optimizer = torch.optim.Adam(generator.parameters(), lr=1e-2)
        for _ in range(300):
            idx = torch.randint(0, len(labels), (64,))
            fake = generator(torch.randn(64, 8), labels[idx])
            loss = (fake - images[idx]).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    export_onnx(variant, generator.eval(), path)
    return path


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory, digits: tuple) -> Path:
    return export_cgan(tmp_path_factory.mktemp("onnx") / "cgan.onnx", fit_to=digits)


@pytest.fixture(scope="module")
def judge(digits: tuple) -> tuple[Classifier, list[str]]:
    images, labels = digits
    config = ClassifierConfig(epochs=6, width=16)
    model = train_classifier(images, labels, len(CLASSES), config, seed=0, progress=False)
    return model, list(CLASSES)


def files_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def no_filter(**kwargs: object) -> SynthesisConfig:
    return SynthesisConfig(filter={"enabled": False}, **kwargs)


def sentinel(folder: Path) -> Path:
    """An earlier output that a failed run must leave alone."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.csv").write_text("earlier output\n")
    return folder


def siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir())


# -- synthesize end to end ---------------------------------------------------------------


def test_synthesize_writes_the_planned_images(
    prepared: Path, model_path: Path, tmp_path: Path
) -> None:
    real = Manifest.read(prepared)
    generator = OnnxGenerator(model_path, task="synthesize")
    out, reports = tmp_path / "augmented", tmp_path / "reports"
    result = synthesize(
        generator,
        real,
        no_filter(grid_per_class=4),
        out,
        seed=7,
        report_dir=reports,
        progress=False,
    )

    expected = {"0": 0, "1": 20, "2": 30, "3": 35, "4": 37}
    assert result.plan == expected and result.accepted == expected
    assert result.generated == expected and result.before == TRAIN
    assert result.after == dict.fromkeys(CLASSES, 40)
    assert result.filled_below_threshold == dict.fromkeys(CLASSES, 0)
    assert result.acceptance_rate["0"] is None and result.acceptance_rate["4"] == 1.0
    assert not result.filtered and result.images_per_second > 0

    augmented = Manifest.read(out / "manifest.csv")
    frame = augmented.frame
    synthetic = frame[frame["source"] == "synthetic"]
    assert synthetic["label"].value_counts().to_dict() == {k: v for k, v in expected.items() if v}
    assert set(synthetic["split"]) == {"train"}
    assert set(synthetic["variant"]) == {"cgan"} and set(synthetic["domain"]) == {"digits"}
    assert set(synthetic["model_sha256"]) == {generator.sha256}
    for name, group in synthetic.groupby("label"):
        assert set(group["seed"]) == {str(round_seed(7, generator.info.variant, name, 0))}
        index = CLASSES.index(name)
        assert list(group["path"]) == [f"synthetic/{index}/{n:06d}.png" for n in range(len(group))]
    # real rows unchanged but for their paths, which point to the same files
    real_rows = frame[frame["source"] == "real"].reset_index(drop=True)
    columns = [c for c in real.frame.columns if c != "path"]
    assert real_rows[columns].equals(real.frame[columns])
    assert augmented.subset(source="real").absolute_paths() == real.absolute_paths()
    assert all(path.is_file() for path in augmented.absolute_paths())
    assert len(list((out / "synthetic").rglob("*.png"))) == sum(expected.values())
    with Image.open(out / "synthetic" / "4" / "000000.png") as image:
        assert image.size == (8, 8) and image.mode == "L"
    # a row's seed reproduces its image: position n of the round is generate([k]*(n+1))[n]
    row = synthetic[synthetic["label"] == "3"].iloc[6]
    again = to_uint8(generator.generate([3] * 7, int(row["seed"])))[6]
    with Image.open(out / row["path"]) as image:
        np.testing.assert_array_equal(np.asarray(image), again[..., 0])

    assert sorted(p.name for p in reports.iterdir()) == [
        "acceptance.json",
        "class_counts.csv",
        "class_counts.json",
        "class_counts.png",
        "samples.png",
    ]
    counts = json.loads((reports / "class_counts.json").read_text())["classes"]
    assert {c: v["train_synthetic"] for c, v in counts.items()} == expected
    acceptance = json.loads((reports / "acceptance.json").read_text())["classes"]
    assert acceptance["3"] == {
        "planned": 35,
        "written": 35,
        "generated": 35,
        "accepted": 35,
        "acceptance_rate": 1.0,
        "filled_below_threshold": 0,
    }
    with Image.open(reports / "samples.png") as grid:  # 4 rows x 4 columns of 8x8 + 2 px:
        label_strip = grid.size[0] - (4 * 10 + 2)  # class "0" got none, so has no row
        assert grid.size[1] == 4 * 10 + 2 and label_strip > 0
    assert siblings(out) == ["augmented", "reports"]  # no temporary folders left


def test_same_seed_same_bytes(prepared: Path, model_path: Path, tmp_path: Path) -> None:
    real = Manifest.read(prepared)
    generator = OnnxGenerator(model_path, task="synthesize")
    config = no_filter(policy="target:12", batch_size=5)
    outputs = []
    for name, seed in [("a", 3), ("b", 3), ("c", 4)]:
        synthesize(
            generator,
            real,
            config,
            tmp_path / name,
            seed,
            progress=False,
            report_dir=tmp_path / f"report_{name}",
        )
        outputs.append(files_bytes(tmp_path / name))
    assert outputs[0] == outputs[1]
    assert (tmp_path / "report_a" / "acceptance.json").read_bytes() == (
        tmp_path / "report_b" / "acceptance.json"
    ).read_bytes()
    assert (tmp_path / "report_a" / "samples.png").read_bytes() == (
        tmp_path / "report_b" / "samples.png"
    ).read_bytes()
    pngs = [k for k in outputs[0] if k.endswith(".png")]
    assert len(pngs) == 2 + 7 + 9  # target 12 over counts 10, 5, 3 (and 40, 20: none)
    assert any(outputs[0][k] != outputs[2][k] for k in pngs)  # another seed, other images


def test_quality_filter_meets_quotas(
    prepared: Path, model_path: Path, judge: tuple, tmp_path: Path
) -> None:
    real = Manifest.read(prepared)
    generator = OnnxGenerator(model_path, task="synthesize")
    config = SynthesisConfig(
        policy="target:30", batch_size=64, filter={"threshold": 0.5, "budget": 5}
    )
    out, reports = tmp_path / "out", tmp_path / "reports"
    result = synthesize(
        generator, real, config, out, seed=1, judge=judge, report_dir=reports, progress=False
    )
    assert result.filtered and result.threshold == 0.5
    assert result.plan == {"0": 0, "1": 10, "2": 20, "3": 25, "4": 27}
    for name, planned in result.plan.items():
        rate = result.acceptance_rate[name]
        assert rate is None if planned == 0 else 0.0 <= rate <= 1.0
        assert result.accepted[name] + result.filled_below_threshold[name] == planned
        assert result.generated[name] >= result.accepted[name]
    assert any(result.accepted[c] == result.plan[c] > 0 for c in CLASSES)  # judge accepts
    counts = Manifest.read(out / "manifest.csv").counts("train", source="synthetic")
    assert counts.to_dict() == result.written

    acceptance = json.loads((reports / "acceptance.json").read_text())
    assert acceptance["filter"] is True and acceptance["threshold"] == 0.5
    for name, row in acceptance["classes"].items():
        assert row["accepted"] == result.accepted[name]
        assert row["filled_below_threshold"] == result.filled_below_threshold[name]


@pytest.mark.parametrize("filtered", [False, True])
def test_in_memory_synthesis_equals_the_written_images(
    prepared: Path, model_path: Path, judge: tuple, tmp_path: Path, filtered: bool
) -> None:
    real = Manifest.read(prepared)
    generator = OnnxGenerator(model_path, task="synthesize")
    config = SynthesisConfig(
        policy="target:30", batch_size=8, filter={"enabled": filtered, "threshold": 0.5}
    )
    synthesize(generator, real, config, tmp_path / "out", seed=3, judge=judge, progress=False)
    written = Manifest.read(tmp_path / "out" / "manifest.csv").subset(source="synthetic")
    arrays = synthesize_arrays(generator, real, config, seed=3, judge=judge, progress=False)
    for name in CLASSES:
        rows = written.frame[written.frame["label"] == name]
        files = [np.asarray(Image.open(written.root / rel)) for rel in rows["path"]]
        expected = np.stack(files)[..., None] if files else np.zeros((0, 8, 8, 1), np.uint8)
        np.testing.assert_array_equal(arrays[name], expected)
    # unfiltered quotas of the same seed are prefixes of each other (the same noise stream)
    longer = synthesize_arrays(
        generator,
        real,
        no_filter(batch_size=8),
        3,
        quotas={c: 40 for c in CLASSES},
        progress=False,
    )
    shorter = synthesize_arrays(generator, real, no_filter(batch_size=8), 3, progress=False)
    for name in CLASSES:
        assert len(longer[name]) == 40
        np.testing.assert_array_equal(longer[name][: len(shorter[name])], shorter[name])


def test_the_ray_engine_writes_the_bytes_of_a_local_run(
    prepared: Path, model_path: Path, judge: tuple, tmp_path: Path
) -> None:
    """``engine: ray`` with no address: a cluster of 2 workers started for the run (on
    127.0.0.1), each class filtered by the judge on a worker and written here."""
    pytest.importorskip("ray.data", reason="the gan-augment[ray] extra is not installed")
    real = Manifest.read(prepared)
    generator = OnnxGenerator(model_path, task="synthesize")
    config = SynthesisConfig(policy="target:30", batch_size=8, filter={"threshold": 0.5})
    runs = {"local": config, "ray": config.model_copy(update={"engine": "ray"})}
    results = {
        name: synthesize(
            generator,
            real,
            run,
            tmp_path / name,
            seed=3,
            judge=judge,
            report_dir=tmp_path / f"{name}-report",
            progress=False,
        )  # fmt: skip
        for name, run in runs.items()
    }
    assert files_bytes(tmp_path / "ray") == files_bytes(tmp_path / "local")
    assert results["ray"].accepted == results["local"].accepted
    assert 0 < sum(results["ray"].accepted.values()) < sum(results["ray"].written.values())
    for name in ("acceptance.json", "samples.png"):
        local = (tmp_path / "local-report" / name).read_bytes()
        assert (tmp_path / "ray-report" / name).read_bytes() == local, name


def test_calibrated_thresholds_pass_the_share_of_real_val_images(
    prepared: Path, model_path: Path, judge: tuple, tmp_path: Path
) -> None:
    real = Manifest.read(prepared)
    val = real.subset(split="val")
    loaded = load_images(val, progress=False)
    scores = predict_proba(judge[0], loaded.images)
    names = np.asarray(val.classes)[loaded.labels]
    thresholds = calibrated_thresholds(
        judge[0], loaded.images, names, {c: i for i, c in enumerate(CLASSES)}, 0.75, 0.9
    )
    for k, name in enumerate(CLASSES):
        own = scores[names == name, k]
        assert thresholds[name] == pytest.approx(np.quantile(own.astype(np.float64), 0.25))
        assert (own >= thresholds[name]).mean() >= 0.75  # 3 of its 4 val images pass
    # in the stage: each class is held to its own threshold, and the report says which
    generator = OnnxGenerator(model_path, task="synthesize")
    config = SynthesisConfig(policy="target:20", filter={"calibrate": True, "real_pass_rate": 0.75})
    out, reports = tmp_path / "out", tmp_path / "reports"
    result = synthesize(
        generator, real, config, out, seed=1, judge=judge, report_dir=reports, progress=False
    )
    assert result.thresholds == pytest.approx(thresholds)
    acceptance = json.loads((reports / "acceptance.json").read_text())
    assert acceptance["classes"]["3"]["threshold"] == pytest.approx(thresholds["3"], abs=1e-6)
    arrays = synthesize_arrays(generator, real, config, seed=1, judge=judge, progress=False)
    for k, name in enumerate(CLASSES):
        accepted = arrays[name][: result.accepted[name]]
        if len(accepted):
            assert (predict_proba(judge[0], accepted)[:, k] >= thresholds[name]).all()


def test_near_copies_of_train_images_are_rejected(digits: tuple) -> None:
    images, labels = digits
    train, val = images[labels == 3][:30], images[labels == 3][30:60]
    check = CopyCheck(train, val, quantile=0.05)
    assert check.radius > 0
    assert not check.keep(train[:10]).any()  # the train images themselves
    shifted = np.roll(val, 1, axis=2)
    assert check.keep(val).mean() >= 0.9 and check.keep(shifted).mean() > 0.5
    # the distance is the true Euclidean distance to the nearest train image
    dist = nearest_distances(val[:3], train)
    brute = [min(np.linalg.norm(v.astype(float) - t.astype(float)) for t in train) for v in val[:3]]
    assert dist == pytest.approx(brute, rel=1e-5)
    left_out = nearest_distances(train, train, exclude_self=True)
    assert (left_out > 0).all()


def test_copy_rejection_in_the_stage_keeps_no_copy(
    prepared: Path, judge: tuple, tmp_path: Path
) -> None:
    real = Manifest.read(prepared)
    train, val = real.subset(split="train"), real.subset(split="val")
    train_images, val_images = load_images(train, progress=False), load_images(val, progress=False)
    # a generator regressed onto the train images alone reproduces them closely
    copier = export_cgan(
        tmp_path / "copier.onnx", fit_to=(train_images.images, train_images.labels)
    )
    generator = OnnxGenerator(copier, task="synthesize")
    plain = SynthesisConfig(policy="target:20", filter={"threshold": 0.01})
    strict = SynthesisConfig(policy="target:20", filter={"threshold": 0.01, "reject_copies": True})
    train_names = np.asarray(train.classes)[train_images.labels]
    val_names = np.asarray(val.classes)[val_images.labels]
    copies_seen = 0
    for config in (plain, strict):
        result = synthesize(
            generator, real, config, tmp_path / "out", seed=0, judge=judge, progress=False
        )
        arrays = synthesize_arrays(generator, real, config, seed=0, judge=judge, progress=False)
        for name in CLASSES:
            check = CopyCheck(
                train_images.images[train_names == name],
                val_images.images[val_names == name],
                0.05,
            )
            kept = check.keep(arrays[name][: result.accepted[name]])
            if config is strict:
                assert kept.all(), name  # no accepted sample is a near copy
            else:
                copies_seen += int((~kept).sum())
    assert copies_seen > 0  # without the check, the copier's copies are accepted


@pytest.mark.parametrize("fill", [True, False])
def test_quality_filter_fills_a_shortfall_or_leaves_it_and_says_so(
    prepared: Path,
    model_path: Path,
    judge: tuple,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    fill: bool,
) -> None:
    real = Manifest.read(prepared)
    generator = OnnxGenerator(model_path, task="synthesize")
    config = SynthesisConfig(
        policy="target:8", filter={"threshold": 0.999, "budget": 1, "fill": fill}
    )
    with caplog.at_level(logging.WARNING, logger="augment.synthesize"):
        result = synthesize(
            generator, real, config, tmp_path / "out", seed=2, judge=judge, progress=False
        )
    short = [c for c in CLASSES if result.accepted[c] < result.plan[c]]
    assert short, "a 0.999 threshold in one round should leave a shortfall"
    assert f"class {short[0]!r}" in caplog.text
    assert all(result.generated[c] <= result.plan[c] for c in CLASSES)  # budget 1: no more
    assert result.written == {
        c: result.accepted[c] + result.filled_below_threshold[c] for c in CLASSES
    }
    counts = Manifest.read(tmp_path / "out" / "manifest.csv").counts("train", "synthetic")
    assert counts.to_dict() == result.written
    assert result.after == {c: result.before[c] + result.written[c] for c in CLASSES}
    if fill:  # the best-scored rejects complete every quota
        assert result.written == result.plan
        assert counts.to_dict() == {"0": 0, "1": 0, "2": 0, "3": 3, "4": 5}
    else:  # the classes stay short, and the log says how to fill them
        assert not any(result.filled_below_threshold.values())
        assert all(result.written[c] < result.plan[c] for c in short)
        assert "synthesize.filter.fill: true" in caplog.text


def test_a_short_class_comes_off_the_progress_bar() -> None:
    with tqdm(total=30, file=io.StringIO()) as bar:
        bar.update(4 + 10)
        settle(bar, ClassStats(planned=10, accepted=4))  # 6 short
        settle(bar, ClassStats(planned=20, accepted=2, filled=8))  # 10 short
        assert bar.n == bar.total == 14


def test_filter_is_off_without_a_judge(prepared: Path, model_path: Path, tmp_path: Path) -> None:
    result = synthesize(
        OnnxGenerator(model_path),
        Manifest.read(prepared),
        SynthesisConfig(policy="target:6"),
        tmp_path / "out",
        0,
        progress=False,
    )
    assert not result.filtered and result.plan == result.accepted


def test_nothing_to_add_copies_the_real_rows(
    prepared: Path, model_path: Path, tmp_path: Path
) -> None:
    real = Manifest.read(prepared)
    result = synthesize(
        OnnxGenerator(model_path),
        real,
        no_filter(policy="ratio:0"),
        tmp_path / "out",
        0,
        progress=False,
    )
    assert sum(result.plan.values()) == 0
    augmented = Manifest.read(tmp_path / "out" / "manifest.csv")
    assert augmented.absolute_paths() == real.absolute_paths()
    assert augmented.frame.drop(columns="path").equals(real.frame.drop(columns="path"))
    assert not (tmp_path / "out" / "synthetic").exists()


# -- errors leave earlier outputs intact -----------------------------------------------------


def test_wrong_task_model(prepared: Path, model_path: Path, tmp_path: Path) -> None:
    translate = tmp_path / "translator.onnx"
    model = onnx.load(str(model_path))
    for prop in model.metadata_props:
        if prop.key == "task":
            prop.value = "translate"
    onnx.save(model, str(translate))
    out = sentinel(tmp_path / "out")
    with pytest.raises(ModelError, match=r"translator.onnx.*'translate'.*'synthesize'"):
        OnnxGenerator(translate, task="synthesize")
    with pytest.raises(ModelError, match=r"translator.onnx.*'translate'.*'synthesize'"):
        synthesize(
            OnnxGenerator(translate),
            Manifest.read(prepared),
            no_filter(),
            out,
            0,
            report_dir=tmp_path / "reports",
            progress=False,
        )
    assert files_bytes(out) == {"manifest.csv": b"earlier output\n"}
    assert siblings(out) == ["out", "translator.onnx"]


def test_missing_class(prepared: Path, model_path: Path, tmp_path: Path) -> None:
    real = Manifest.read(prepared)
    extra = real.frame.iloc[:2].assign(label="7")
    manifest = Manifest(pd.concat([real.frame, extra], ignore_index=True), real.root)
    out = sentinel(tmp_path / "out")
    with pytest.raises(ModelError, match=r"cgan.onnx: .*'7'.*classes \(0, 1, 2, 3, 4\)"):
        synthesize(OnnxGenerator(model_path), manifest, no_filter(), out, 0, progress=False)
    assert files_bytes(out) == {"manifest.csv": b"earlier output\n"}


def test_missing_class_in_judge(
    prepared: Path, model_path: Path, tmp_path: Path, judge: tuple
) -> None:
    model, classes = judge
    out = sentinel(tmp_path / "out")
    with pytest.raises(ModelError, match=r"classifier: .*'4'.*judge"):
        synthesize(
            OnnxGenerator(model_path),
            Manifest.read(prepared),
            SynthesisConfig(),
            out,
            0,
            judge=(model, ["0", "1", "2", "3", "9"]),
            progress=False,
        )
    assert files_bytes(out) == {"manifest.csv": b"earlier output\n"}


def test_image_size_mismatch(prepared: Path, tmp_path: Path) -> None:
    path = export_cgan(tmp_path / "big.onnx", image_size=16)
    out = sentinel(tmp_path / "out")
    with pytest.raises(ModelError, match=r"big.onnx: makes 16x16x1 images .* 8x8x1"):
        synthesize(
            OnnxGenerator(path), Manifest.read(prepared), no_filter(), out, 0, progress=False
        )
    assert files_bytes(out) == {"manifest.csv": b"earlier output\n"}


def test_empty_class_and_synthetic_input(prepared: Path, model_path: Path, tmp_path: Path) -> None:
    real = Manifest.read(prepared)
    no_train_4 = real.frame[~((real.frame["label"] == "4") & (real.frame["split"] == "train"))]
    with pytest.raises(DataError, match=r"class '4'.*empty class"):
        synthesize(
            OnnxGenerator(model_path),
            Manifest(no_train_4, real.root),
            no_filter(),
            tmp_path / "a",
            0,
            progress=False,
        )
    synthesize(
        OnnxGenerator(model_path),
        real,
        no_filter(policy="target:4"),
        tmp_path / "b",
        0,
        progress=False,
    )
    with pytest.raises(DataError, match=r"manifest.csv: already has 1 synthetic rows"):
        synthesize(
            OnnxGenerator(model_path),
            Manifest.read(tmp_path / "b" / "manifest.csv"),
            no_filter(),
            tmp_path / "c",
            0,
            progress=False,
        )
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


# -- the DVC stage ---------------------------------------------------------------------------


def test_stage(
    prepared: Path,
    model_path: Path,
    judge: tuple,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from pipelines.synthesize import main

    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    shutil.copytree(prepared.parent, project / "data" / "prepared")
    (project / "models" / "onnx").mkdir(parents=True)
    shutil.copy(model_path, project / "models" / "onnx" / "cgan.onnx")
    save_classifier(
        judge[0], project / "models" / "classifier.pt", judge[1], {"image_size": 8, "channels": 1}
    )
    params = {
        "seed": 5,
        "synthesize": {
            "policy": "target:12",
            "filter": {"threshold": 0.5, "budget": 3},
        },
    }
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(project)

    with caplog.at_level(logging.INFO, logger="pipelines.synthesize"):
        main(["cgan"])
    assert "class 4                   3 ->     12 (+9)" in caplog.text
    metrics = json.loads(Path("metrics/synthesize/cgan.json").read_text())
    assert metrics["filter"] is True and metrics["synthetic_images"] == 2 + 7 + 9
    assert metrics["short_of_plan"] == 0
    assert 0 <= metrics["acceptance_rate"] <= 1 and "classes" not in metrics
    metrics = json.loads(Path("reports/synthesize/cgan/metrics.json").read_text())
    assert metrics["classes"]["4"] == metrics["classes"]["4"] | {
        "before": 3,
        "synthetic": 9,
        "after": 12,
    }
    assert Path("data/augmented/cgan/manifest.csv").is_file()
    assert Path("reports/synthesize/cgan/samples.png").is_file()
    assert load_classifier("models/classifier.pt")[1] == list(CLASSES)

    with pytest.raises(ModelError, match=r"models/onnx/nope.onnx: no exported model"):
        main(["nope"])
    (project / "params.yaml").write_text(yaml.safe_dump({"seed": 5, "synthesize": {"policy": "x"}}))
    with pytest.raises(ConfigError, match="params.yaml synthesize.policy"):
        main(["cgan"])
