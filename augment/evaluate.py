"""Does synthetic data help? Downstream experiments against the strongest cheap baselines.

The same CNN (:mod:`augment.classifier`), optimizer, schedule and number of optimizer
steps is trained under each condition on the long-tailed train split and scored, after
its **last** step, on the real test split.

Classical conditions (no generator; :mod:`augment.longtail` has the formulas):

================  ========================================================================
baseline          the real train images, plain cross-entropy
oversample        every class re-drawn at random up to the largest class
reweight          inverse-frequency class weights
logit-adjust      post-hoc logit adjustment of the baseline model (Menon et al., 2021)
balanced-softmax  the logit-adjusted loss / balanced softmax (Ren et al., 2020)
drw               deferred re-weighting (Cao et al., 2019): effective-number weights late
mixup-drw         mixup (Zhang et al., 2018) with DRW
crt               classifier re-training (Kang et al., 2020): the baseline's backbone, its
                  linear head re-trained on class-balanced batches of frozen features
full              the untouched train split, each class cut to the largest class's count:
                  the ceiling (the tail as large as the head)
full-2x           ``full`` at twice the steps: the protocol's convergence check
================  ========================================================================

Conditions with a generator (one per variant, ``<condition>@<variant>``):

================  ========================================================================
gan               real + the unfiltered synthetic images that balance the classes
gan+filter        real + the filtered ones (what the synthesize stage writes by default)
synthetic-only    class-balanced synthetic images only: classification accuracy score
<method>+gan:M    a classical method above run on real + the synthesize stage's images,
                  at most ``M`` synthetic per real image in each class (``<method>+gan``:
                  all of them; with ``synthesize.policy: balance``, up to the largest
                  class). ``crt+gan:M`` keeps the backbone trained on real images and
                  re-trains the head on the mix (decoupled). A ``+split-bn`` suffix gives
                  synthetic images their own batch norms while training (AdvProp's
                  auxiliary BN; inference uses the real ones).
================  ========================================================================

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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from tqdm.auto import tqdm

from augment.classifier import (
    Classifier,
    ClassifierConfig,
    class_counts,
    extract_features,
    predict_logits,
    train_classifier,
)
from augment.config import StrictModel
from augment.data.arrays import Images
from augment.distributed import resolve_device
from augment.longtail import Objective, PriorName, posthoc_adjusted, retrain_head
from augment.metrics import classification_scores
from augment.quality import QualityConfig, quality
from augment.runcache import RunCache, run_key
from augment.seeding import derive_seed

log = logging.getLogger(__name__)

CLASSICAL = (
    "baseline",
    "oversample",
    "reweight",
    "logit-adjust",
    "balanced-softmax",
    "drw",
    "mixup-drw",
    "crt",
)
CEILINGS = ("full", "full-2x")
SYNTHETIC = ("gan", "gan+filter", "synthetic-only")
DEFAULT_GAN_CONDITIONS = (
    "gan+filter",
    "synthetic-only",
    "oversample+gan:2",
    "logit-adjust+gan:2+split-bn",
    "balanced-softmax+gan:2+split-bn",
    "crt+gan",
)
SCORES = ("balanced_accuracy", "macro_f1", "gmean", "accuracy", "tail_recall")
FEATURE_CONDITION = "reweight"  # its run 0 is the feature network of the quality metrics
TAIL_CLASSES = 3  # tail_recall: mean recall of this many rarest train classes
_MIX = re.compile(
    r"^(?P<method>[a-z-]+)\+gan(?::(?P<cap>\d+(?:\.\d+)?))?(?P<split_bn>\+split-bn)?$"
)


# -- conditions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """A condition's recipe, parsed from its name (:meth:`parse`).

    ``method``: a classical method (or ``full``) applied to the training pool; ``synthetic``:
    which synthetic images join the pool (``none``, the balancing ``unfiltered`` or
    ``filtered`` ones, ``stage``: those the synthesize stage wrote, ``only``: synthetic
    images alone); ``cap``: at most this many synthetic per real image per class (None: up to
    the largest class); ``steps_factor``: multiple of the common steps (``full-2x``: 2);
    ``split_bn``: synthetic images get their own batch norms (``...+gan:M+split-bn``).
    """

    name: str
    method: str
    synthetic: Literal["none", "unfiltered", "filtered", "stage", "only"] = "none"
    cap: float | None = None
    steps_factor: int = 1
    split_bn: bool = False

    @property
    def uses_generator(self) -> bool:
        return self.synthetic != "none"

    @property
    def is_classical(self) -> bool:
        return self.synthetic == "none" and self.method in CLASSICAL

    @property
    def competes(self) -> bool:
        """A GAN condition the verdict weighs (synthetic-only is a quality measure)."""
        return self.synthetic in ("unfiltered", "filtered", "stage")

    @staticmethod
    def parse(name: str) -> Condition:
        """The condition named ``name``; ValueError naming what is wrong otherwise."""
        if name in CLASSICAL:
            return Condition(name, name)
        if name in CEILINGS:
            return Condition(name, "full", steps_factor=2 if name == "full-2x" else 1)
        if name in SYNTHETIC:
            kind = {"gan": "unfiltered", "gan+filter": "filtered", "synthetic-only": "only"}
            return Condition(name, "baseline", kind[name])  # type: ignore[arg-type]
        match = _MIX.match(name)
        if match is None or match["method"] not in CLASSICAL:
            raise ValueError(
                f"unknown condition {name!r}: one of {', '.join(CLASSICAL + CEILINGS + SYNTHETIC)}"
                ", or '<method>+gan[:M][+split-bn]' with a method of the first "
                f"{len(CLASSICAL)} (e.g. 'oversample+gan:4')"
            )
        cap = None if match["cap"] is None else float(match["cap"])
        if cap is not None and cap <= 0:
            raise ValueError(f"condition {name!r}: the cap M must be > 0")
        split_bn = match["split_bn"] is not None
        if split_bn and match["method"] == "crt":
            raise ValueError(
                f"condition {name!r}: crt trains its backbone on real images only, "
                "so there is no synthetic batch norm to split"
            )
        return Condition(name, match["method"], "stage", cap, split_bn=split_bn)


# -- configuration -------------------------------------------------------------------------


class DownstreamModel(StrictModel):
    """The downstream classifier: :class:`augment.classifier.Classifier`, same for all."""

    width: int = Field(16, ge=4)
    batch_size: int = Field(128, ge=2)
    lr: float = Field(3e-3, gt=0, description="peak of the one-cycle schedule")
    weight_decay: float = Field(5e-4, ge=0)
    augment: bool = Field(True, description="random 1-2 pixel shifts while training")
    flip: bool = Field(False, description="random horizontal flips (not for digits)")
    device: Literal["auto", "cpu", "cuda"] = "auto"

    def classifier_config(self) -> ClassifierConfig:
        """Shuffled epochs, no class weights: a run's :class:`Objective` handles the tail."""
        return ClassifierConfig(balance="none", **self.model_dump())

    def identity(self) -> dict[str, Any]:
        """What determines a run's weights: the config, and the device where it is not CPU
        (CUDA kernels give other weights; CPU keys stay those of before devices counted)."""
        identity = self.model_dump(exclude={"device"})
        device = resolve_device(self.device).type
        return identity if device == "cpu" else {**identity, "device": device}


class DRWConfig(StrictModel):
    """Deferred re-weighting (``evaluate.drw``)."""

    start: float = Field(0.8, ge=0, le=1, description="fraction of the steps before weights")
    beta: float = Field(0.9999, ge=0, lt=1, description="effective-number beta (Cui et al.)")


class CRTConfig(StrictModel):
    """Classifier re-training on frozen features (``evaluate.crt``)."""

    steps: int = Field(1000, ge=1)
    batch_size: int = Field(256, ge=2)
    lr: float = Field(1e-2, gt=0)


class EvaluateConfig(StrictModel):
    """params.yaml ``evaluate``."""

    conditions: list[str] = Field(
        default_factory=lambda: [*CLASSICAL, "full", *DEFAULT_GAN_CONDITIONS]
    )
    seeds: int = Field(1, ge=1, description="runs per condition (mean and std reported)")
    epochs: float = Field(
        16, gt=0, description="passes over a class-balanced train set; same steps for all"
    )
    model: DownstreamModel = Field(default_factory=DownstreamModel)
    tau: float = Field(1.0, ge=0, description="logit adjustment's temperature")
    drw: DRWConfig = Field(default_factory=DRWConfig)
    mixup: float = Field(1.0, gt=0, description="mixup's Beta(alpha, alpha) parameter")
    crt: CRTConfig = Field(default_factory=CRTConfig)
    synthetic_weight: float = Field(
        1.0, gt=0, le=1, description="loss weight of a synthetic image (a real one: 1)"
    )
    synthetic_prior: PriorName = Field(
        "real",
        description="counts behind a mix's class prior (balanced softmax, logit "
        "adjustment): its real images (synthetic ones are augmentations) or every image",
    )
    quality: QualityConfig = Field(default_factory=QualityConfig)

    @field_validator("conditions")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        for name in names:
            Condition.parse(name)
        if len(set(names)) != len(names):
            raise ValueError("a condition is listed twice")
        return names

    def parsed(self) -> list[Condition]:
        return [Condition.parse(name) for name in self.conditions]

    def objective(self, method: str, synthetic: bool, split_bn: bool = False) -> Objective:
        """The training objective of a classical ``method`` (crt/logit-adjust: plain CE);
        with ``synthetic`` images in the set, their loss weight and ``split_bn``."""
        mix: dict[str, Any] = {
            "synthetic_weight": self.synthetic_weight if synthetic else 1.0,
            "split_bn": split_bn and synthetic,
            "prior": self.synthetic_prior if synthetic else "pool",
        }
        drw = {"drw_start": self.drw.start, "drw_beta": self.drw.beta}
        if method == "reweight":
            return Objective(class_weights="inverse", **mix)
        if method == "balanced-softmax":
            return Objective(loss="balanced-softmax", **mix)
        if method == "drw":
            return Objective(class_weights="drw", **drw, **mix)
        if method == "mixup-drw":
            return Objective(class_weights="drw", mixup=self.mixup, **drw, **mix)
        return Objective(**mix)


# -- data of the conditions ----------------------------------------------------------------


@dataclass
class TrainingSet:
    """The data and recipe of one condition (and variant, for the GAN conditions).

    The network trains on ``data`` with ``objective``; with ``head_data`` its linear head is
    then re-trained on that set's features (cRT); with ``posthoc_counts`` its logits are
    adjusted by that prior at prediction (post-hoc logit adjustment).
    """

    condition: Condition
    data: Images
    objective: Objective = field(default_factory=Objective)
    variant: str | None = None
    head_data: Images | None = None
    posthoc_counts: np.ndarray | None = None

    @property
    def key(self) -> str:
        name = self.condition.name
        return name if self.variant is None else f"{name}@{self.variant}"

    @property
    def train_images(self) -> int:
        return len(self.head_data if self.head_data is not None else self.data)


def oversampled(real: Images, num_classes: int, seed: int) -> Images:
    """Every image once, plus random repeats of each class up to the largest class."""
    counts = real.counts(num_classes)
    rng = np.random.default_rng(derive_seed(seed, "evaluate", "oversample"))
    picks = [np.arange(len(real))]
    for k in range(num_classes):
        members = np.flatnonzero(real.labels == k)
        if len(members):
            picks.append(rng.choice(members, counts.max() - len(members), replace=True))
    return real.take(np.concatenate(picks))


def per_class_cut(data: Images, limits: Sequence[int], seed: int, name: str) -> Images:
    """At most ``limits[k]`` random images of class ``k`` (all of a smaller class), in order."""
    rng = np.random.default_rng(derive_seed(seed, "evaluate", "cut", name))
    keep = []
    for k, limit in enumerate(limits):
        members = np.flatnonzero(data.labels == k)
        if len(members) > limit:
            members = np.sort(rng.choice(members, int(limit), replace=False))
        keep.append(members)
    return data.take(np.concatenate(keep) if keep else np.zeros(0, np.int64))


def capped_mix(real: Images, synthetic: Images, num_classes: int, cap: float | None) -> Images:
    """Real images plus the first ``min(available, floor(cap * n_k))`` synthetic of class k.

    ``cap=None`` keeps every synthetic image given. Synthetic images are marked as such.
    """
    counts = real.counts(num_classes)
    picks = []
    for k in range(num_classes):
        members = np.flatnonzero(synthetic.labels == k)
        limit = len(members) if cap is None else math.floor(cap * counts[k])
        picks.append(members[:limit])
    chosen = synthetic.take(np.concatenate(picks)).as_synthetic()
    return Images.concat([real, chosen])


def training_sets(
    conditions: Sequence[Condition],
    real: Images,
    full: Images | None,
    synthetic: Mapping[str, Mapping[str, Images]],
    num_classes: int,
    config: EvaluateConfig,
    seed: int,
) -> list[TrainingSet]:
    """The training sets of ``conditions``: classical ones once, GAN ones per variant.

    ``synthetic[variant]`` maps ``unfiltered``/``filtered`` to the balancing synthetic
    images, ``stage`` to those the synthesize stage wrote and ``only`` to a class-balanced
    set (CAS). A ``full`` condition without an untouched split is skipped with a warning.
    """
    sets: list[TrainingSet] = []
    n_max = int(real.counts(num_classes).max())
    for condition in conditions:
        if condition.method == "full":
            if full is None:
                log.warning("%r skipped: no untouched train split (keep_full)", condition.name)
                continue
            cut = per_class_cut(full, [n_max] * num_classes, seed, "full")
            sets.append(TrainingSet(condition, cut, config.objective("baseline", False)))
            continue
        if not condition.uses_generator:
            sets.append(method_set(condition, real, real, num_classes, config, seed))
            continue
        for variant, images in synthetic.items():
            if condition.synthetic == "only":
                pool = images["only"].as_synthetic()
            else:
                pool = capped_mix(real, images[condition.synthetic], num_classes, condition.cap)
            ts = method_set(condition, pool, real, num_classes, config, seed)
            ts.variant = variant
            sets.append(ts)
    return sets


def method_set(
    condition: Condition,
    pool: Images,
    real: Images,
    num_classes: int,
    config: EvaluateConfig,
    seed: int,
) -> TrainingSet:
    """``condition.method`` applied to the images of ``pool`` (``real``: cRT's backbone data)."""
    method = condition.method
    has_synthetic = bool(pool.synthetic.any())
    objective = config.objective(method, has_synthetic, condition.split_bn)
    if method == "oversample":
        return TrainingSet(condition, oversampled(pool, num_classes, seed), objective)
    if method == "crt":  # backbone: plain cross-entropy on real images only
        return TrainingSet(condition, real, config.objective("baseline", False), head_data=pool)
    if method == "logit-adjust":
        labels, marks = torch.from_numpy(pool.labels), torch.from_numpy(pool.synthetic)
        counts = class_counts(labels, marks, num_classes, objective.prior).numpy()
        return TrainingSet(condition, pool, objective, posthoc_counts=counts)
    return TrainingSet(condition, pool, objective)


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
    }
    return Evaluation(downstream, summary, scores, verdicts(summary), context)


# -- the verdict ---------------------------------------------------------------------------


def verdicts(summary: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per variant: its best GAN condition against the best of all classical conditions.

    ``helps`` is true only when the GAN condition's mean balanced accuracy beats the best
    classical condition's by more than their combined standard deviation
    (``hypot(std_gan, std_classical)``); ``delta`` is the difference in balanced accuracy and
    ``tail_delta`` that in the mean recall of the rarest classes.
    """
    classical = {key: e for key, e in summary.items() if _parsed(e).is_classical}
    out: dict[str, dict[str, Any]] = {}
    variants = sorted({e["variant"] for e in summary.values() if e["variant"] is not None})
    if not classical:
        return out
    rival_key = max(classical, key=lambda key: classical[key]["balanced_accuracy"]["mean"])
    rival = classical[rival_key]
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


def _parsed(entry: dict[str, Any]) -> Condition:
    return Condition.parse(entry["condition"])
