"""Does synthetic data help? Downstream experiments against the strongest cheap baselines.

The same CNN (:mod:`augment.classifier`), optimizer, schedule and number of optimizer
steps is trained under each condition on the long-tailed train split and scored, after
its **last** step, on the real test split.

The conditions, their names and the data each one trains on are in
:mod:`augment.conditions`.

Every condition gets ``ceil(epochs * K * n_max / batch_size)`` steps (``K`` classes,
``n_max`` the largest real class), so none wins by seeing more batches; run ``r`` of every
condition starts from the same seed. Finished runs are cached on disk by their inputs
(:mod:`augment.runcache`), so a change on the GAN side re-trains only GAN conditions.

The verdict compares each variant's best GAN condition with the best of **all** classical
conditions and calls it a help only when the margin exceeds the combined seed noise.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from augment.classifier import (
    Classifier,
    extract_features,
    predict_logits,
    train_classifier,
)
from augment.conditions import (
    TWICE,
    Condition,
    EvaluateConfig,
    TrainingSet,
    method_set,
    training_sets,
)
from augment.data.arrays import Images
from augment.longtail import posthoc_adjusted, retrain_head
from augment.metrics import classification_scores
from augment.quality import quality
from augment.runcache import RunCache, run_key
from augment.seeding import derive_seed

log = logging.getLogger(__name__)

SCORES = ("balanced_accuracy", "macro_f1", "gmean", "accuracy", "tail_recall")
CONVERGED = 0.005  # converged: twice the steps moves balanced accuracy by less than this
FEATURE_CONDITION = "reweight"  # its run 0 is the feature network of the quality metrics
TAIL_CLASSES = 3  # tail_recall: mean recall of this many rarest train classes


# -- downstream runs -----------------------------------------------------------------------


def training_steps(real: Images, num_classes: int, config: EvaluateConfig) -> int:
    """``ceil(epochs * K * n_max / batch_size)``: the steps every condition trains for."""
    balanced = num_classes * int(real.counts(num_classes).max())
    return max(1, math.ceil(config.epochs * balanced / config.model.batch_size))


def tail_classes(counts: np.ndarray, how_many: int = TAIL_CLASSES) -> list[int]:
    """Indices of the ``how_many`` classes with the fewest real train images (ties: later)."""
    order = sorted(range(len(counts)), key=lambda k: (counts[k], -k))
    return sorted(order[: min(how_many, len(counts))])


@dataclass
class Downstream:
    """Scores of every run of every condition, and the feature network."""

    classes: list[str]
    tail: list[int] = field(default_factory=list)
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    sets: dict[str, TrainingSet] = field(default_factory=dict)
    feature_model: Classifier | None = None

    def merge(self, other: Downstream) -> None:
        """Add the runs (and sets) of ``other``, scored on the same test split."""
        self.runs |= other.runs
        self.sets |= other.sets
        self.feature_model = self.feature_model or other.feature_model

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per condition: mean/std of each score, mean per-class recall, gap closed."""
        out: dict[str, dict[str, Any]] = {}
        for key, runs in self.runs.items():
            ts = self.sets[key]
            entry: dict[str, Any] = {
                "condition": ts.condition.name,
                "variant": ts.variant,
                "classical": ts.condition.is_classical,
                "train_images": ts.train_images,
                "runs": len(runs),
            }
            for score in SCORES:
                values = np.array([r[score] for r in runs if r[score] is not None], np.float64)
                entry[score] = (
                    {"mean": float(values.mean()), "std": float(values.std())}
                    if len(values)
                    else {"mean": None, "std": None}
                )
            entry["per_class_recall"] = {
                c: _mean_or_none([r["per_class_recall"][k] for r in runs])
                for k, c in enumerate(self.classes)
            }
            out[key] = entry
        low = out.get("baseline", {}).get("balanced_accuracy", {}).get("mean")
        high = out.get("full", {}).get("balanced_accuracy", {}).get("mean")
        for entry in out.values():
            mean = entry["balanced_accuracy"]["mean"]
            gap = (
                None if low is None or high is None or high <= low else (mean - low) / (high - low)
            )
            entry["gap_closed"] = gap
        return out


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    """The mean of the values that are not None (None if there are none)."""
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


class Runner:
    """Trains (or finds in the cache) the network of a training set and scores it."""

    def __init__(
        self,
        num_classes: int,
        steps: int,
        config: EvaluateConfig,
        seed: int,
        cache: RunCache | None = None,
        progress: bool = True,
    ) -> None:
        self.num_classes, self.steps, self.config, self.seed = num_classes, steps, config, seed
        self.cache = cache if cache is not None else RunCache(None)
        self.progress = progress

    def network(self, ts: TrainingSet, run: int) -> Classifier:
        """The trained network of ``ts``'s run ``run`` (before any head re-training)."""
        steps = self.steps * ts.condition.steps_factor
        seed = derive_seed(self.seed, "evaluate", "run", run)
        key = run_key(
            model=self.config.model.identity(),
            objective=ts.objective.to_dict(),
            steps=steps,
            seed=seed,
            classes=self.num_classes,
            data=ts.data.digest(),
        )
        model = self.cache.get(key)
        if model is not None:
            log.info("%s, run %d: cached (%s)", ts.key, run + 1, key[:12])
            return model
        model = train_classifier(  # shuffled epochs; the objective weighs the classes
            ts.data.images,
            ts.data.labels,
            self.num_classes,
            self.config.model.classifier_config(),
            seed=seed,
            progress=self.progress,
            steps=steps,
            objective=ts.objective,
            synthetic=ts.data.synthetic,
        )
        self.cache.put(
            key,
            model,
            {
                "condition": ts.key,
                "run": run,
                "steps": steps,
                "objective": ts.objective.to_dict(),
                "train_images": len(ts.data),
            },
        )
        return model

    def logits(self, ts: TrainingSet, run: int, test: Images) -> tuple[Classifier, np.ndarray]:
        """The network of ``ts``'s run and its final logits f32[N,K] on ``test``."""
        model = self.network(ts, run)
        if ts.head_data is not None:
            head = retrain_head(
                model.head,
                extract_features(model, ts.head_data.images),
                ts.head_data.labels,
                self.num_classes,
                steps=self.config.crt.steps,
                seed=derive_seed(self.seed, "evaluate", "crt", run),
                batch_size=self.config.crt.batch_size,
                lr=self.config.crt.lr,
                sample_weight=np.where(ts.head_data.synthetic, self.config.synthetic_weight, 1.0),
            )
            features = torch.as_tensor(extract_features(model, test.images))
            with torch.no_grad():
                logits = head(features).numpy()
        else:
            logits = predict_logits(model, test.images)
        if ts.posthoc_counts is not None:
            logits = posthoc_adjusted(logits, ts.posthoc_counts, self.config.tau)
        return model, logits


def run_downstream(
    sets: Sequence[TrainingSet],
    test: Images,
    classes: Sequence[str],
    steps: int,
    config: EvaluateConfig,
    seed: int,
    progress: bool = True,
    cache: RunCache | None = None,
    tail: Sequence[int] = (),
) -> Downstream:
    """Score ``config.seeds`` runs per set on ``test``; keep the feature network.

    ``tail`` lists the classes whose mean recall is ``tail_recall``.
    """
    runner = Runner(len(classes), steps, config, seed, cache, progress=False)
    result = Downstream(list(classes), list(tail))
    bar = tqdm(
        total=len(sets) * config.seeds,
        desc="evaluate",
        unit="run",
        disable=not progress,
        dynamic_ncols=True,
    )
    for ts in sets:
        result.sets[ts.key] = ts
        result.runs[ts.key] = []
        for run in range(config.seeds):
            bar.set_postfix_str(f"{ts.key} {run + 1}/{config.seeds}")
            model, logits = runner.logits(ts, run, test)
            scores = classification_scores(test.labels, logits.argmax(axis=1), len(classes))
            recalls = [scores["per_class_recall"][k] for k in tail]
            scores["tail_recall"] = _mean_or_none(recalls) if tail else None
            scores["run"] = run
            result.runs[ts.key].append(scores)
            log.info(
                "%s, run %d: balanced accuracy %.4f, macro-F1 %.4f",
                ts.key,
                run + 1,
                scores["balanced_accuracy"],
                scores["macro_f1"],
            )
            if ts.condition.name == FEATURE_CONDITION and run == 0:
                result.feature_model = model
            bar.update()
    bar.close()
    return result


def feature_network(
    real: Images,
    num_classes: int,
    steps: int,
    config: EvaluateConfig,
    seed: int,
    cache: RunCache | None = None,
) -> Classifier:
    """The ``reweight`` classifier of run 0 (trained here, or cached, when it did not run)."""
    condition = Condition.parse(FEATURE_CONDITION)
    ts = method_set(condition, real, real, num_classes, config, seed)
    return Runner(num_classes, steps, config, seed, cache, progress=False).network(ts, 0)


# -- the whole evaluation -----------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """What the evaluate stage reports: every run and its summary per condition, each
    generator's quality scores, the verdicts, and the protocol's figures (``context``)."""

    downstream: Downstream
    summary: dict[str, dict[str, Any]]
    quality: dict[str, dict[str, Any]]
    verdicts: dict[str, dict[str, Any]]
    context: dict[str, Any]


def evaluate_conditions(
    real: Images,
    full: Images | None,
    test: Images,
    synthetic: Mapping[str, Mapping[str, Images]],
    classes: Sequence[str],
    config: EvaluateConfig,
    seed: int,
    cache: RunCache,
) -> Evaluation:
    """Train the downstream classifier under every condition of ``config`` on the real
    train split ``real`` (``full``: the untouched one, for ``full``) and each variant's
    ``synthetic`` sets, score every run on ``test``, measure each generator's quality in
    the feature network's space, and give the verdicts. Finished runs come from ``cache``."""
    conditions = config.parsed()
    num_classes = len(classes)
    steps = training_steps(real, num_classes, config)
    counts = real.counts(num_classes)
    sets = training_sets(conditions, real, full, dict(synthetic), num_classes, config, seed)
    tail = tail_classes(counts)
    log.info(
        "%d training sets x %d run(s), %d steps each, tested on %d images",
        len(sets),
        config.seeds,
        steps,
        len(test),
    )
    downstream = run_downstream(sets, test, classes, steps, config, seed, cache=cache, tail=tail)
    summary = downstream.summary()
    convergence = None
    rival = best_classical(summary)
    if config.convergence and rival is not None:
        twice = Condition.parse(rival + TWICE)
        if twice.name not in downstream.runs:
            log.info("convergence check: %s at twice the steps (%d)", rival, 2 * steps)
            extra = training_sets([twice], real, full, {}, num_classes, config, seed)
            downstream.merge(
                run_downstream(extra, test, classes, steps, config, seed, cache=cache, tail=tail)
            )
            summary = downstream.summary()
        convergence = convergence_check(summary, rival, twice.name, steps)
    scores: dict[str, dict[str, Any]] = {}
    if config.quality.enabled and synthetic:
        model = downstream.feature_model
        if model is None:
            model = feature_network(real, num_classes, steps, config, seed, cache)
        for variant, sets_of_variant in synthetic.items():
            log.info("%s: quality metrics", variant)
            only = sets_of_variant["only"]
            scores[variant] = quality(model, real, test, only, classes, config.quality, seed)
    context = {
        "steps": steps,
        "epochs": config.epochs,
        "seeds": config.seeds,
        "test_images": len(test),
        "test_counts": test.counts(num_classes).tolist(),
        "train_images": len(real),
        "train_counts": dict(zip(classes, counts.tolist(), strict=True)),
        "tail_classes": [classes[k] for k in tail],
        "model": config.model.identity(),
        "feature_network": f"{FEATURE_CONDITION}, run 0",
        "cached_runs": cache.hits,
        "trained_runs": cache.misses,
        "convergence": convergence,
    }
    return Evaluation(downstream, summary, scores, verdicts(summary), context)


def convergence_check(
    summary: dict[str, dict[str, Any]], condition: str, twice: str, steps: int
) -> dict[str, Any]:
    """How far twice the steps moved ``condition``'s mean balanced accuracy (its run
    ``twice``): the protocol is converged when by less than :data:`CONVERGED`."""
    once = summary[condition]["balanced_accuracy"]["mean"]
    doubled = summary[twice]["balanced_accuracy"]["mean"]
    moved = round(doubled - once, 9)  # 0.87444 - 0.86944 is 0.004999..., not 0.005, in floats
    return {
        "condition": condition,
        "steps": steps,
        "balanced_accuracy": once,
        "balanced_accuracy_2x": doubled,
        "moved": moved,
        "threshold": CONVERGED,
        "converged": bool(abs(moved) < CONVERGED),
    }


# -- the verdict ---------------------------------------------------------------------------


def verdicts(summary: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per variant: its best GAN condition against the best of all classical conditions.

    ``helps`` is true only when the GAN condition's mean balanced accuracy beats the best
    classical condition's by more than their combined standard deviation
    (``hypot(std_gan, std_classical)``); ``delta`` is the difference in balanced accuracy and
    ``tail_delta`` that in the mean recall of the rarest classes.
    """
    out: dict[str, dict[str, Any]] = {}
    variants = sorted({e["variant"] for e in summary.values() if e["variant"] is not None})
    rival_key = best_classical(summary)
    if rival_key is None:
        return out
    rival = summary[rival_key]
    for variant in variants:
        candidates = {
            key: e for key, e in summary.items() if e["variant"] == variant and _parsed(e).competes
        }
        if not candidates:
            continue
        best_key = max(candidates, key=lambda key: candidates[key]["balanced_accuracy"]["mean"])
        best = candidates[best_key]
        delta = best["balanced_accuracy"]["mean"] - rival["balanced_accuracy"]["mean"]
        # the combined seed std; one run of either leaves the noise unknown (None), not 0
        one_run = min(best["runs"], rival["runs"]) < 2
        spread = math.hypot(best["balanced_accuracy"]["std"], rival["balanced_accuracy"]["std"])
        noise = None if one_run else spread
        tails = best.get("tail_recall", {}).get("mean"), rival.get("tail_recall", {}).get("mean")
        out[variant] = {
            "best": best_key,
            "rival": rival_key,
            "delta": delta,
            "noise": noise,
            "tail_delta": None if None in tails else tails[0] - tails[1],
            "helps": bool(delta > (noise or 0.0) and delta > 0),
        }
    return out


def best_classical(summary: dict[str, dict[str, Any]]) -> str | None:
    """The classical condition with the highest mean balanced accuracy (None: none ran)."""
    classical = [key for key, e in summary.items() if _parsed(e).is_classical]
    if not classical:
        return None
    return max(classical, key=lambda key: summary[key]["balanced_accuracy"]["mean"])


def _parsed(entry: dict[str, Any]) -> Condition:
    return Condition.parse(entry["condition"])
