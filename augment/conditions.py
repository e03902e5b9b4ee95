"""The conditions of the evaluate stage: their names, their configuration, their data.

A condition is a recipe for training the downstream classifier on the long-tailed train
split: which images (real, synthetic, both), which long-tail method, how many synthetic
images per real one. :class:`Condition` parses a name, :class:`EvaluateConfig` is
params.yaml ``evaluate``, and :func:`training_sets` builds the :class:`TrainingSet` each
condition trains on (:mod:`augment.evaluate` trains and scores them).

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
full-2x           ``full`` at twice the steps: the protocol's convergence check (any
                  classical condition takes the ``-2x`` suffix; the evaluate stage runs
                  the best one's by itself, ``evaluate.convergence``)
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

from augment.classifier import ClassifierConfig, class_counts
from augment.config import StrictModel
from augment.data.arrays import Images
from augment.distributed import resolve_device
from augment.longtail import Objective, PriorName
from augment.quality import QualityConfig
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
TWICE = "-2x"  # a classical condition or full at twice the steps: a convergence check
SYNTHETIC = ("gan", "gan+filter", "synthetic-only")
DEFAULT_GAN_CONDITIONS = (
    "gan+filter",
    "synthetic-only",
    "oversample+gan:2",
    "logit-adjust+gan:2+split-bn",
    "balanced-softmax+gan:2+split-bn",
    "crt+gan",
)
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
        """A classical method at the common steps (a ``-2x`` check is not a rival)."""
        return self.synthetic == "none" and self.method in CLASSICAL and self.steps_factor == 1

    @property
    def competes(self) -> bool:
        """A GAN condition the verdict weighs (synthetic-only is a quality measure)."""
        return self.synthetic in ("unfiltered", "filtered", "stage")

    @staticmethod
    def parse(name: str) -> Condition:
        """The condition named ``name``; ValueError naming what is wrong otherwise."""
        if name in CLASSICAL:
            return Condition(name, name)
        if name == "full":
            return Condition(name, "full")
        if name.endswith(TWICE) and name[: -len(TWICE)] in (*CLASSICAL, "full"):
            return Condition(name, name[: -len(TWICE)], steps_factor=2)
        if name in SYNTHETIC:
            kind = {"gan": "unfiltered", "gan+filter": "filtered", "synthetic-only": "only"}
            return Condition(name, "baseline", kind[name])  # type: ignore[arg-type]
        match = _MIX.match(name)
        if match is None or match["method"] not in CLASSICAL:
            raise ValueError(
                f"unknown condition {name!r}: one of {', '.join(CLASSICAL + CEILINGS + SYNTHETIC)}"
                ", or '<method>+gan[:M][+split-bn]' with a method of the first "
                f"{len(CLASSICAL)} (e.g. 'oversample+gan:4'), or one of those methods at "
                "twice the steps, '<method>-2x'"
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
    convergence: bool = Field(
        True,
        description="also train the best classical condition at twice the steps and report "
        "how far that moved it (0.5 points or more: not converged, a warning)",
    )

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
    set (CAS). A ``full`` condition without an untouched split is skipped (logged).
    """
    sets: list[TrainingSet] = []
    n_max = int(real.counts(num_classes).max())
    for condition in conditions:
        if condition.method == "full":
            if full is None:
                log.info(  # a user's data used as it is has nothing left out to add back
                    "%r skipped: no untouched train split (prepare writes one only where its "
                    "long_tail leaves images out, with keep_full)",
                    condition.name,
                )
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
