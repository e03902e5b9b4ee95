"""The downstream experiment and GAN quality metrics on small real data (sklearn digits)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from augment.config import parse
from augment.errors import ConfigError
from augment.evaluate import (
    EvaluateConfig,
    Images,
    TrainingSet,
    blurred,
    capped,
    class_weights_like,
    gan_sets,
    oversampled,
    quality,
    real_sets,
    run_downstream,
    training_steps,
    verdicts,
)
from augment.metrics import gaussian_stats

CLASSES = [str(k) for k in range(10)]


@pytest.fixture(scope="module")
def digits() -> tuple[Images, Images]:
    """A long-tailed train split (60 .. 6 per class) and a balanced test split (40 each)."""
    data = load_digits()
    images = np.clip(np.rint(data.images * 255 / 16), 0, 255).astype(np.uint8)[..., None]
    labels = data.target.astype(np.int64)
    train, test = [], []
    for k in range(10):
        members = np.flatnonzero(labels == k)
        train.append(members[: 60 - 6 * k])
        test.append(members[100:140])
    train_idx, test_idx = np.concatenate(train), np.concatenate(test)
    return (
        Images(images[train_idx], labels[train_idx]),
        Images(images[test_idx], labels[test_idx]),
    )


def test_oversampling_keeps_every_image_and_balances(digits) -> None:
    train, _ = digits
    out = oversampled(train, 10, seed=0)
    assert out.counts(10).tolist() == [60] * 10
    assert np.array_equal(out.images[: len(train)], train.images)  # originals first, once
    again = oversampled(train, 10, seed=0)
    assert np.array_equal(out.images, again.images)


def test_class_weights_give_the_reference_mix() -> None:
    labels = np.array([0, 0, 0, 1])
    weights = class_weights_like(labels, np.array([0, 1, 2, 2]), 3)
    assert weights.tolist() == [1 / 12, 1 / 12, 1 / 12, 1 / 4]  # class 2 absent: no weight
    stats = gaussian_stats(np.array([[0.0], [0.0], [0.0], [4.0]]), weights[:4] + 1e-12)
    assert stats.mean[0] == pytest.approx(4 * 0.25 / 0.5)  # classes 0 and 1 half each


def test_every_condition_gets_the_same_steps(digits) -> None:
    train, _ = digits
    config = EvaluateConfig(epochs=2, model={"batch_size": 50})
    assert training_steps(train, 10, config) == 2 * 10 * 60 // 50


def test_conditions_and_their_data(digits) -> None:
    train, test = digits
    sets = real_sets(train, test, ["baseline", "oversample", "reweight", "full"], 10, 0)
    assert [s.key for s in sets] == ["baseline", "oversample", "reweight", "full"]
    assert [s.balance for s in sets] == ["none", "none", "reweight", "none"]
    assert real_sets(train, None, ["full"], 10, 0) == []  # no untouched split: skipped
    synthetic = {
        "gan": Images(test.images[:5], test.labels[:5]),
        "gan+filter": Images(test.images[:3], test.labels[:3]),
        "synthetic-only": test,
    }
    gans = gan_sets(train, "sngan", synthetic, ["baseline", "gan", "gan+filter", "synthetic-only"])
    assert [s.key for s in gans] == ["gan@sngan", "gan+filter@sngan", "synthetic-only@sngan"]
    assert [len(s.data) for s in gans] == [len(train) + 5, len(train) + 3, len(test)]


def test_unknown_condition_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="conditions"):
        parse(EvaluateConfig, {"conditions": ["baseline", "smote"]}, "params.yaml evaluate")


def test_downstream_runs_scores_and_gap(digits) -> None:
    train, test = digits
    config = EvaluateConfig(seeds=2, model={"width": 8, "batch_size": 64})
    sets = [
        TrainingSet("baseline", capped(train, 3, 0, "tiny")),
        TrainingSet("reweight", train, balance="reweight"),
        TrainingSet("full", test),  # a stand-in ceiling: many balanced images
    ]
    result = run_downstream(sets, test, CLASSES, 40, config, seed=0, progress=False)
    assert result.feature_model is not None  # reweight, run 0
    assert {k: len(v) for k, v in result.runs.items()} == {"baseline": 2, "reweight": 2, "full": 2}
    summary = result.summary()
    base, full = summary["baseline"], summary["full"]
    assert full["balanced_accuracy"]["mean"] > base["balanced_accuracy"]["mean"] + 0.1
    assert base["gap_closed"] == 0 and full["gap_closed"] == pytest.approx(1)
    runs = [r["balanced_accuracy"] for r in result.runs["reweight"]]
    assert summary["reweight"]["balanced_accuracy"]["std"] == pytest.approx(np.std(runs))
    # same seed, same scores (CPU training is deterministic)
    again = run_downstream(sets[:1], test, CLASSES, 40, config, seed=0, progress=False)
    assert again.runs["baseline"] == result.runs["baseline"]


def entry(condition: str, variant: str | None, mean: float, std: float) -> dict:
    return {
        "condition": condition,
        "variant": variant,
        "balanced_accuracy": {"mean": mean, "std": std},
    }


def test_verdict_needs_a_margin_beyond_the_noise() -> None:
    summary = {
        "oversample": entry("oversample", None, 0.80, 0.01),
        "reweight": entry("reweight", None, 0.82, 0.01),
        "gan@a": entry("gan", "a", 0.85, 0.01),
        "gan+filter@a": entry("gan+filter", "a", 0.84, 0.01),
        "gan@b": entry("gan", "b", 0.825, 0.02),
    }
    found = verdicts(summary)
    assert found["a"]["best"] == "gan@a" and found["a"]["rival"] == "reweight"
    assert found["a"]["delta"] == pytest.approx(0.03) and found["a"]["helps"]
    assert not found["b"]["helps"]  # +0.5 points but noise of about 2.2


def test_quality_separates_real_copies_and_noise(digits) -> None:
    train, test = digits
    config = EvaluateConfig(seeds=1, model={"width": 8})
    model = run_downstream(
        [TrainingSet("reweight", train, balance="reweight")], test, CLASSES, 60, config, 0, False
    ).feature_model
    q = parse(EvaluateConfig, {"quality": {"diversity_pairs": 30}}, "evaluate").quality
    copies = quality(model, train, test, train, CLASSES, q, seed=0)["overall"]
    assert copies["nn_ratio"] == 0 and copies["copy_fraction"] == 1
    rng = np.random.default_rng(0)
    noise = Images(rng.integers(0, 256, test.images.shape, dtype=np.uint8), test.labels)
    bad = quality(model, train, test, noise, CLASSES, q, seed=0)
    fresh = quality(model, train, test, test, CLASSES, q, seed=0)
    assert fresh["overall"]["fd"] == pytest.approx(0, abs=1e-6)
    assert bad["overall"]["fd"] > 5 * bad["overall"]["fd_floor"] > 0
    assert bad["overall"]["precision"] < fresh["overall"]["precision"] == 1
    assert fresh["overall"]["copy_fraction"] < 0.3
    assert set(bad["classes"]) == set(CLASSES)
    copies_0 = quality(model, train, test, train, CLASSES, q, seed=0)["classes"]["0"]
    assert copies_0["diversity_ratio"] == 1 < bad["classes"]["0"]["diversity_ratio"]


def test_blur_smooths_but_keeps_shape(digits) -> None:
    train, _ = digits
    out = blurred(train.images[:4], 1.0)
    assert out.shape == train.images[:4].shape and out.dtype == np.uint8
    assert out.astype(float).std() < train.images[:4].astype(float).std()
