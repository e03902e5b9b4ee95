"""Tests of augment.classifier and the classifier stage, on sklearn's real digits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from sklearn.datasets import load_digits

from augment.classifier import (
    Classifier,
    ClassifierConfig,
    evaluate,
    extract_features,
    load_classifier,
    predict_proba,
    save_classifier,
    train_classifier,
)
from augment.config import parse
from augment.data.images import write_png
from augment.data.manifest import Manifest
from augment.errors import ConfigError, DataError, ModelError

CLASSES = [str(i) for i in range(10)]


@pytest.fixture(scope="module")
def digits() -> dict[str, np.ndarray]:
    """sklearn digits as u8 N x 8 x 8 x 1, split 1400 train / 397 val (fixed permutation)."""
    data = load_digits()
    images = np.clip(np.rint(data.images * 255 / 16), 0, 255).astype(np.uint8)[..., None]
    order = np.random.default_rng(0).permutation(len(images))
    train, val = order[:1400], order[1400:]
    return {
        "x_train": images[train],
        "y_train": data.target[train],
        "x_val": images[val],
        "y_val": data.target[val],
    }


@pytest.fixture(scope="module")
def trained(digits: dict[str, np.ndarray]) -> Classifier:
    config = ClassifierConfig(epochs=6, width=16)
    return train_classifier(
        digits["x_train"], digits["y_train"], 10, config, seed=0, progress=False
    )


def small(digits: dict[str, np.ndarray], n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    return digits["x_train"][:n], digits["y_train"][:n]


def test_learns_digits(trained: Classifier, digits: dict[str, np.ndarray]) -> None:
    scores = evaluate(trained, digits["x_val"], digits["y_val"], 10)
    assert scores["count"] == 397
    assert scores["accuracy"] > 0.8 and scores["balanced_accuracy"] > 0.8
    recall = scores["per_class_recall"]
    assert len(recall) == 10 and all(0.0 <= r <= 1.0 for r in recall)
    assert scores["balanced_accuracy"] == pytest.approx(np.mean(recall))


def test_evaluate_reports_absent_classes_as_none(
    trained: Classifier, digits: dict[str, np.ndarray]
) -> None:
    keep = digits["y_val"] < 3
    scores = evaluate(trained, digits["x_val"][keep], digits["y_val"][keep], 10)
    assert scores["per_class_recall"][3:] == [None] * 7
    assert scores["balanced_accuracy"] == pytest.approx(np.mean(scores["per_class_recall"][:3]))


def test_probabilities_and_features(trained: Classifier, digits: dict[str, np.ndarray]) -> None:
    x = digits["x_val"][:37]
    proba = predict_proba(trained, x, batch_size=8)
    assert proba.shape == (37, 10) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(predict_proba(trained, x), proba, atol=1e-6)  # batch-independent
    features = extract_features(trained, x)
    assert features.shape == (37, trained.feature_dim) and features.dtype == np.float32
    assert predict_proba(trained, x[:0]).shape == (0, 10)


def test_same_seed_same_weights(digits: dict[str, np.ndarray]) -> None:
    x, y = small(digits)
    config = ClassifierConfig(epochs=1, width=8, feature_dim=16)

    def weights(seed: int) -> list[torch.Tensor]:
        model = train_classifier(x, y, 10, config, seed=seed, progress=False)
        return list(model.state_dict().values())

    first, again, other = weights(1), weights(1), weights(2)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize("balance", ["none", "oversample"])
def test_balance_modes_train(digits: dict[str, np.ndarray], balance: str) -> None:
    x, y = small(digits)
    config = ClassifierConfig(epochs=1, width=8, feature_dim=16, balance=balance, augment=False)
    model = train_classifier(x, y, 10, config, seed=0, progress=False)
    assert not model.training and predict_proba(model, x[:4]).shape == (4, 10)


@pytest.mark.parametrize("size, channels", [(12, 3), (28, 1), (9, 1)])
def test_any_square_size_and_channels(size: int, channels: int) -> None:
    rng = np.random.default_rng(size)
    x = rng.integers(0, 256, (20, size, size, channels), dtype=np.uint8)
    y = np.arange(20) % 3
    model = train_classifier(
        x, y, 3, ClassifierConfig(epochs=1, width=4, feature_dim=8), seed=0, progress=False
    )
    assert model.channels == channels
    assert predict_proba(model, x).shape == (20, 3)
    with pytest.raises(DataError, match=f"{channels} channels|channels"):
        predict_proba(model, np.zeros((1, size, size, 4 - channels), np.uint8))


def test_bad_inputs_are_data_errors() -> None:
    x = np.zeros((4, 8, 8, 1), np.uint8)
    y = np.array([0, 1, 0, 1])
    config = ClassifierConfig(epochs=1)
    with pytest.raises(DataError, match="uint8"):
        train_classifier(x.astype(np.float32), y, 2, config, progress=False)
    with pytest.raises(DataError, match="at least 8x8"):
        train_classifier(np.zeros((4, 6, 6, 1), np.uint8), y, 2, config, progress=False)
    with pytest.raises(DataError, match=r"labels must be in \[0, 2\)"):
        train_classifier(x, np.array([0, 1, 2, 1]), 2, config, progress=False)


def test_config_is_strict() -> None:
    with pytest.raises(ConfigError, match="params.yaml classifier.balance"):
        parse(ClassifierConfig, {"balance": "smote"}, "params.yaml classifier")
    with pytest.raises(ConfigError, match=r"params.yaml classifier.epoch: unknown key"):
        parse(ClassifierConfig, {"epoch": 3}, "params.yaml classifier")
    assert parse(ClassifierConfig, None, "x") == ClassifierConfig()


def test_save_load_round_trip(
    trained: Classifier, digits: dict[str, np.ndarray], tmp_path: Path
) -> None:
    path = tmp_path / "models" / "classifier.pt"
    meta = {"seed": 0, "image_size": 8, "config": {"epochs": 6}}
    save_classifier(trained, path, CLASSES, meta)
    model, classes = load_classifier(path)
    assert classes == CLASSES and model.meta == meta and not model.training
    x = digits["x_val"][:50]
    np.testing.assert_array_equal(predict_proba(model, x), predict_proba(trained, x))
    assert [p.name for p in path.parent.iterdir()] == ["classifier.pt"]  # no temp files
    with pytest.raises(ValueError, match="class names"):
        save_classifier(trained, path, CLASSES[:3])


def test_load_rejects_foreign_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(ModelError, match=r"notes.pt: not a gan-augment classifier checkpoint"):
        load_classifier(text)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ModelError, match=r"foreign.pt: not a gan-augment classifier checkpoint"):
        load_classifier(foreign)
    with pytest.raises(ModelError, match=r"missing.pt: classifier checkpoint not found"):
        load_classifier(tmp_path / "missing.pt")


def test_stage(
    digits: dict[str, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.classifier import main

    root = tmp_path / "data" / "prepared"
    rows = []
    for split, (x, y) in {
        "train": small(digits, 120),
        "val": (digits["x_val"][:40], digits["y_val"][:40]),
    }.items():
        for i, (image, label) in enumerate(zip(x, y, strict=True)):
            path = root / "images" / split / f"{i:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_png(path, image)
            rows.append(
                {"path": path.relative_to(root).as_posix(), "label": str(label), "split": split}
            )
    Manifest.from_rows(rows, root).write(root / "manifest.csv")
    params = {"seed": 3, "classifier": {"epochs": 1, "width": 8, "feature_dim": 16}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)

    main([])
    metrics = json.loads(Path("metrics/classifier.json").read_text())
    assert metrics["train_images"] == 120 and metrics["val_images"] == 40
    assert 0.0 <= metrics["val_accuracy"] <= 1.0
    assert "val_per_class_recall" not in metrics  # the DVC metric: the headline only
    details = json.loads(Path("metrics/classifier_details.json").read_text())
    assert set(details["val_per_class_recall"]) == set(CLASSES)
    assert details == details | metrics
    model, classes = load_classifier("models/classifier.pt")
    assert classes == CLASSES and model.meta["image_size"] == 8 and model.meta["seed"] == 3

    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"seed": "x", "classifier": {}}))
    with pytest.raises(ConfigError, match="params.yaml seed"):
        main([])
