"""The downstream experiment and GAN quality metrics on small real data (sklearn digits)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits

from augment.conditions import (
    Condition,
    EvaluateConfig,
    TrainingSet,
    capped_mix,
    oversampled,
    training_sets,
)
from augment.config import parse
from augment.data.arrays import Images
from augment.errors import ConfigError
from augment.evaluate import (
    convergence_check,
    run_downstream,
    tail_classes,
    training_steps,
    verdicts,
)
from augment.longtail import Objective
from augment.metrics import gaussian_stats
from augment.quality import blurred, capped, class_weights_like, quality
from augment.report import noise_text
from augment.runcache import RunCache

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


def parsed(*names: str) -> list[Condition]:
    return [Condition.parse(name) for name in names]


def test_conditions_and_their_data(digits) -> None:
    train, test = digits
    config = EvaluateConfig()
    names = ["baseline", "oversample", "reweight", "balanced-softmax", "drw", "mixup-drw"]
    sets = training_sets(parsed(*names, "full"), train, test, {}, 10, config, 0)
    assert [s.key for s in sets] == [*names, "full"]
    objectives = [s.objective for s in sets]
    assert [o.class_weights for o in objectives] == [
        "none",
        "none",
        "inverse",
        "none",
        "drw",
        "drw",
        "none",
    ]
    assert objectives[3].loss == "balanced-softmax" and objectives[5].mixup == config.mixup
    assert len(sets[1].data) == 10 * 60  # oversampled to the largest class
    assert sets[-1].data.counts(10).tolist() == [40] * 10  # full: at most n_max (60) a class
    assert training_sets(parsed("full"), train, None, {}, 10, config, 0) == []  # skipped
    # logit-adjust and crt reuse the baseline network: same data, same objective
    la, crt = training_sets(parsed("logit-adjust", "crt"), train, None, {}, 10, config, 0)
    assert la.objective == crt.objective == sets[0].objective
    assert la.data.digest() == crt.data.digest() == sets[0].data.digest()
    assert la.posthoc_counts.tolist() == train.counts(10).tolist()
    assert crt.head_data is train

    synthetic = {
        "sngan": {
            "unfiltered": Images(test.images[:5], test.labels[:5]),
            "filtered": Images(test.images[:3], test.labels[:3]),
            "stage": Images(test.images[:3], test.labels[:3]),
            "only": test,
        }
    }
    gans = training_sets(
        parsed("baseline", "gan", "gan+filter", "synthetic-only", "crt+gan"),
        train,
        None,
        synthetic,
        10,
        config,
        0,
    )
    assert [s.key for s in gans] == [
        "baseline",
        "gan@sngan",
        "gan+filter@sngan",
        "synthetic-only@sngan",
        "crt+gan@sngan",
    ]
    assert [len(s.data) for s in gans[1:4]] == [len(train) + 5, len(train) + 3, len(test)]
    assert gans[1].data.synthetic.sum() == 5 and gans[3].data.synthetic.all()
    decoupled = gans[4]  # backbone on real images, head on real + synthetic
    assert decoupled.data.digest() == train.digest()
    assert len(decoupled.head_data) == len(train) + 3 and decoupled.train_images == len(train) + 3


def test_capped_mix_counts_per_class() -> None:
    real = Images(np.zeros((9, 8, 8, 1), np.uint8), np.array([0] * 6 + [1] * 2 + [2]))
    labels = np.array([1] * 10 + [2] * 10 + [0] * 2)
    synthetic = Images(
        np.arange(22, dtype=np.uint8)[:, None, None, None].repeat(8, 1).repeat(8, 2), labels
    )
    for cap, expected in ((None, [8, 12, 11]), (1, [8, 4, 2]), (2.5, [8, 7, 3]), (0.4, [8, 2, 1])):
        mix = capped_mix(real, synthetic, 3, cap)
        assert mix.counts(3).tolist() == expected, cap
        assert mix.synthetic.sum() == sum(expected) - len(real)
        assert not mix.synthetic[: len(real)].any()
    # the first synthetic images of a class are the ones kept
    mix = capped_mix(real, synthetic, 3, 1)
    assert mix.images[mix.synthetic & (mix.labels == 1), 0, 0, 0].tolist() == [0, 1]
    with pytest.raises(ValueError, match="> 0"):
        Condition.parse("oversample+gan:0")


def test_unknown_condition_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="smote"):
        parse(EvaluateConfig, {"conditions": ["baseline", "smote"]}, "params.yaml evaluate")
    with pytest.raises(ConfigError, match="full"):
        parse(EvaluateConfig, {"conditions": ["full+gan:2"]}, "params.yaml evaluate")
    with pytest.raises(ConfigError, match="twice"):
        parse(EvaluateConfig, {"conditions": ["drw", "drw"]}, "params.yaml evaluate")


def test_tail_classes_are_the_rarest() -> None:
    assert tail_classes(np.array([50, 3, 20, 3, 9])) == [1, 3, 4]
    assert tail_classes(np.array([5, 1])) == [0, 1]


def test_downstream_runs_scores_and_gap(digits, tmp_path) -> None:
    train, test = digits
    config = EvaluateConfig(seeds=2, model={"width": 8, "batch_size": 64})
    sets = [
        TrainingSet(Condition.parse("baseline"), capped(train, 3, 0, "tiny")),
        TrainingSet(Condition.parse("reweight"), train, Objective(class_weights="inverse")),
        TrainingSet(Condition.parse("full"), test),  # a stand-in ceiling: many balanced images
    ]
    cache = RunCache(tmp_path / "runs")
    result = run_downstream(
        sets, test, CLASSES, 40, config, seed=0, progress=False, cache=cache, tail=[7, 8, 9]
    )
    assert (cache.hits, cache.misses) == (0, 6) and len(list((tmp_path / "runs").iterdir())) == 6
    assert result.feature_model is not None  # reweight, run 0
    assert {k: len(v) for k, v in result.runs.items()} == {"baseline": 2, "reweight": 2, "full": 2}
    summary = result.summary()
    base, full = summary["baseline"], summary["full"]
    assert full["balanced_accuracy"]["mean"] > base["balanced_accuracy"]["mean"] + 0.1
    assert base["gap_closed"] == 0 and full["gap_closed"] == pytest.approx(1)
    runs = [r["balanced_accuracy"] for r in result.runs["reweight"]]
    assert summary["reweight"]["balanced_accuracy"]["std"] == pytest.approx(np.std(runs))
    recalls = [summary["reweight"]["per_class_recall"][c] for c in "789"]
    assert summary["reweight"]["tail_recall"]["mean"] == pytest.approx(np.mean(recalls))
    # same seed, same scores (CPU training is deterministic), with and without the cache
    again = run_downstream(sets[:1], test, CLASSES, 40, config, seed=0, progress=False)
    assert again.runs["baseline"] == [{**r, "tail_recall": None} for r in result.runs["baseline"]]
    reread = RunCache(tmp_path / "runs")  # a new process: the runs come from disk
    cached = run_downstream(sets, test, CLASSES, 40, config, 0, False, reread, tail=[7, 8, 9])
    assert (reread.hits, reread.misses) == (6, 0)
    assert cached.runs == result.runs
    longer = run_downstream(sets[:1], test, CLASSES, 41, config, 0, False, reread)
    assert reread.misses == 2 and longer.runs != result.runs  # other steps: trained anew


def entry(condition: str, variant: str | None, mean: float, std: float, tail=None, runs=3) -> dict:
    return {
        "condition": condition,
        "variant": variant,
        "runs": runs,
        "balanced_accuracy": {"mean": mean, "std": std},
        "tail_recall": {"mean": tail, "std": 0.0},
    }


def test_verdict_needs_a_margin_beyond_the_noise() -> None:
    summary = {
        "oversample": entry("oversample", None, 0.80, 0.01),
        "reweight": entry("reweight", None, 0.82, 0.01, tail=0.6),
        "full": entry("full", None, 0.95, 0.01),  # the ceiling is no rival
        "gan@a": entry("gan", "a", 0.85, 0.01, tail=0.7),
        "gan+filter@a": entry("gan+filter", "a", 0.84, 0.01),
        "synthetic-only@a": entry("synthetic-only", "a", 0.9, 0.01),  # not a competitor
        "gan@b": entry("gan", "b", 0.825, 0.02),
    }
    found = verdicts(summary)
    assert found["a"]["best"] == "gan@a" and found["a"]["rival"] == "reweight"
    assert found["a"]["delta"] == pytest.approx(0.03) and found["a"]["helps"]
    assert found["a"]["tail_delta"] == pytest.approx(0.1)
    assert not found["b"]["helps"]  # +0.5 points but noise of about 2.2


def test_one_run_has_no_noise_estimate_and_says_so() -> None:
    summary = {
        "logit-adjust": entry("logit-adjust", None, 0.90, 0.0, runs=1),
        "logit-adjust+gan:2@a": entry("logit-adjust+gan:2", "a", 0.905, 0.0, runs=1),
    }
    found = verdicts(summary)["a"]
    assert found["noise"] is None and found["helps"]  # a margin, with nothing to weigh it
    assert noise_text(found) == "one run: no noise estimate"
    summary = {key: {**e, "runs": 3} for key, e in summary.items()}
    assert noise_text(verdicts(summary)["a"]) == "noise 0.0"


def test_verdict_weighs_the_best_of_all_classical_conditions() -> None:
    summary = {
        "oversample": entry("oversample", None, 0.80, 0.01),
        "crt": entry("crt", None, 0.84, 0.005),
        "mixup-drw": entry("mixup-drw", None, 0.86, 0.005),
        "logit-adjust": entry("logit-adjust", None, 0.85, 0.005),
        "oversample+gan:4@a": entry("oversample+gan:4", "a", 0.855, 0.005),
        "crt+gan:2@a": entry("crt+gan:2", "a", 0.875, 0.005),
    }
    found = verdicts(summary)["a"]
    assert found["rival"] == "mixup-drw" and found["best"] == "crt+gan:2@a"
    assert found["delta"] == pytest.approx(0.015) and found["helps"]
    summary["balanced-softmax"] = entry("balanced-softmax", None, 0.88, 0.005)
    found = verdicts(summary)["a"]
    assert found["rival"] == "balanced-softmax" and not found["helps"]


def test_quality_separates_real_copies_and_noise(digits) -> None:
    train, test = digits
    config = EvaluateConfig(seeds=1, model={"width": 8})
    reweight = TrainingSet(Condition.parse("reweight"), train, Objective(class_weights="inverse"))
    model = run_downstream([reweight], test, CLASSES, 60, config, 0, False).feature_model
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


def test_an_imbalanced_test_split_is_reported_as_such(tmp_path):
    from augment.report import plot_recall, recall_frame, split_warnings

    classes, tests = ["ant", "bee", "cow"], [120, 8, 0]
    lines = split_warnings(classes, tests)
    assert lines == [
        "no test images for cow: their recall is not measured",
        "fewer than 20 test images for bee (8): one image moves their recall by 5 points or more",
    ]
    assert split_warnings(classes, [50, 50, 50]) == []
    summary = {"baseline": {"per_class_recall": {"ant": 0.9, "bee": 0.5, "cow": 0.0}}}
    frame = recall_frame(summary, classes)
    plot_recall(frame, [300, 40, 10], tmp_path / "imbalanced.png", tests)
    plot_recall(frame, [300, 40, 10], tmp_path / "balanced.png", [50, 50, 50])
    imbalanced = (tmp_path / "imbalanced.png").read_bytes()
    assert imbalanced[:4] == b"\x89PNG" and imbalanced != (tmp_path / "balanced.png").read_bytes()


def test_the_run_ends_with_the_verdict_and_where_the_report_is(tmp_path):
    from pipelines.evaluate import summary_lines

    def entry(mean):
        return {"balanced_accuracy": {"mean": mean, "std": 0.004}}

    summary = {"mixup-drw+gan:2@sngan": entry(0.951), "mixup-drw": entry(0.960)}
    found = {
        "sngan": {
            "best": "mixup-drw+gan:2@sngan",
            "rival": "mixup-drw",
            "delta": -0.009,
            "noise": 0.0057,
            "helps": False,
        }
    }
    assert summary_lines(found, summary, tmp_path) == [
        "verdict sngan: synthetic data does not help: best GAN condition mixup-drw+gan:2@sngan "
        "95.1 vs best classical mixup-drw 96.0 (-0.9 points, noise 0.6)",
        f"report: {tmp_path / 'report.md'}",
    ]


def test_split_bn_conditions_give_synthetic_images_their_own_batch_norms(digits) -> None:
    train, test = digits
    stage = {"sngan": {"stage": Images(test.images[:30], test.labels[:30])}}
    names = ("logit-adjust+gan:2", "logit-adjust+gan:2+split-bn", "mixup-drw+gan+split-bn")
    plain, split, mixup = training_sets(parsed(*names), train, None, stage, 10, EvaluateConfig(), 0)
    assert not plain.objective.split_bn and split.objective.split_bn
    assert split.data.digest() == plain.data.digest()  # the same data, another network
    assert mixup.objective.split_bn and mixup.objective.mixup > 0
    assert Condition.parse(names[1]).cap == 2
    with pytest.raises(ValueError, match="crt trains its backbone on real images only"):
        Condition.parse("crt+gan:2+split-bn")
    with pytest.raises(ValueError, match="unknown condition"):
        Condition.parse("baseline+split-bn")


def test_a_mix_takes_its_prior_from_its_real_images(digits) -> None:
    """``synthetic_prior: real`` (the default): the counts behind a mix's class prior are
    its real images'; synthetic images count as augmentations. Class weights (DRW) read
    the pool whatever the prior, so a DRW mix has one run key under either."""
    train, test = digits
    extra = Images(test.images[:60], np.zeros(60, np.int64))  # 60 synthetic zeros
    stage = {"sngan": {"stage": extra}}
    names = ("logit-adjust+gan", "balanced-softmax+gan", "oversample+gan", "mixup-drw+gan")
    real_counts = train.counts(10)
    for prior, zeros in (("real", real_counts[0]), ("pool", real_counts[0] + 60)):
        config = EvaluateConfig(synthetic_prior=prior)
        adjust, softmax, plain, drw = training_sets(
            parsed(*names), train, None, stage, 10, config, 0
        )
        assert adjust.posthoc_counts[0] == zeros
        assert np.array_equal(adjust.posthoc_counts[1:], real_counts[1:])
        assert softmax.objective.prior == prior and softmax.objective.trains_with_prior
        # cross-entropy, weighted or not, reads no prior: the same run key under either
        assert plain.objective.to_dict() == Objective().to_dict()
        assert "prior" not in drw.objective.to_dict()
    classical = training_sets(parsed("balanced-softmax"), train, None, {}, 10, EvaluateConfig(), 0)
    assert classical[0].objective.to_dict() == Objective(loss="balanced-softmax").to_dict()


def test_any_classical_condition_runs_at_twice_the_steps_and_is_no_rival() -> None:
    twice = Condition.parse("balanced-softmax-2x")
    assert (twice.method, twice.steps_factor, twice.is_classical) == ("balanced-softmax", 2, False)
    assert Condition.parse("full-2x").steps_factor == 2
    with pytest.raises(ConfigError, match="gan-2x"):
        parse(EvaluateConfig, {"conditions": ["gan-2x"]}, "params.yaml evaluate")
    summary = {
        "drw": entry("drw", None, 0.80, 0.01),
        "drw-2x": entry("drw-2x", None, 0.90, 0.01),  # better, but a check, not a method
        "drw+gan:2@a": entry("drw+gan:2", "a", 0.85, 0.01),
    }
    assert verdicts(summary)["a"]["rival"] == "drw" and verdicts(summary)["a"]["helps"]


def test_the_evaluation_checks_its_own_convergence(digits, tmp_path) -> None:
    """The best classical condition trains again at twice the steps; how far that moved it
    is in the context, a warning in the report when by 0.5 points or more."""
    from augment.evaluate import evaluate_conditions
    from augment.report import convergence_text, convergence_warning, evaluate_warnings

    train, test = digits
    config = EvaluateConfig(
        conditions=["baseline", "reweight"], epochs=1, model={"width": 8, "batch_size": 64}
    )
    evaluation = evaluate_conditions(
        train, None, test, {}, CLASSES, config, 0, RunCache(tmp_path / "runs")
    )
    check, summary = evaluation.context["convergence"], evaluation.summary
    rival = max(("baseline", "reweight"), key=lambda k: summary[k]["balanced_accuracy"]["mean"])
    assert check["condition"] == rival and set(summary) == {"baseline", "reweight", rival + "-2x"}
    moved = summary[rival + "-2x"]["balanced_accuracy"]["mean"] - check["balanced_accuracy"]
    assert check["moved"] == pytest.approx(moved) and moved != 0  # 10 steps against 20
    assert check["converged"] is (abs(moved) < 0.005)
    warnings = evaluate_warnings(CLASSES, evaluation.context)
    assert bool(warnings) is not check["converged"]
    if warnings:  # up: raise the epochs; down: noise or over-fitting; one seed: said so
        said = "raise evaluate.epochs (now 1: 10 steps)" if moved > 0 else "scored lower"
        assert said in warnings[0] and "one run each" in warnings[0]
    for moved, said in ((0.02, "not converged: twice the steps (20) moved"), (-0.02, "lower")):
        (line,) = convergence_warning({**check, "moved": moved, "converged": False}, 1, 3)
        assert said in line and "one run each" not in line
    assert f"({2 * check['steps']}) moved the best classical condition" in convergence_text(check)
    off = config.model_copy(update={"convergence": False})
    quiet = evaluate_conditions(train, None, test, {}, CLASSES, off, 0, RunCache(tmp_path / "runs"))
    assert quiet.context["convergence"] is None and set(quiet.summary) == {"baseline", "reweight"}


def test_a_move_of_exactly_the_threshold_is_not_converged() -> None:
    # means of 3 runs on 600 test images: 0.8744... - 0.8694... is 0.005 exactly, which
    # floats compute as 0.004999... (a run of photos-64 was called converged at "+0.50")
    def summary(once: float, twice: float) -> dict[str, dict[str, Any]]:
        return {
            "logit-adjust": {"balanced_accuracy": {"mean": once}},
            "logit-adjust-2x": {"balanced_accuracy": {"mean": twice}},
        }

    at = convergence_check(
        summary(0.8694444444444445, 0.8744444444444444), "logit-adjust", "logit-adjust-2x", 9
    )
    assert at["moved"] == 0.005 and not at["converged"]
    under = convergence_check(summary(0.87, 0.8749), "logit-adjust", "logit-adjust-2x", 9)
    assert under["converged"]
    assert not convergence_check(summary(0.87, 0.864), "logit-adjust", "logit-adjust-2x", 9)[
        "converged"
    ]
