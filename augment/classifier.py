"""A small CNN classifier used as a judge of images.

It filters generated samples (keep one only if the judge recognises its class), and its
penultimate layer is the feature space for Fréchet distances and downstream evaluation.

Inputs are uint8 ``N x H x W x C`` batches (C = 1 or 3, any square size >= 8); the network
sees them as float32 ``N x C x H x W`` in [-1, 1] and ends in adaptive pooling, so one
architecture fits every dataset. Training is deterministic on CPU for a given seed.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn
from tqdm.auto import tqdm

from augment.config import StrictModel
from augment.data.images import to_tensor
from augment.distributed import resolve_device
from augment.errors import DataError, ModelError
from augment.io import atomic_path
from augment.longtail import Objective, class_weights_at, mix_batch, objective_loss
from augment.nn.split_norm import split_batch_norms, synthetic_rows
from augment.seeding import derive_seed

log = logging.getLogger(__name__)

CHECKPOINT_KIND = "gan-augment-classifier"
CHECKPOINT_FORMAT = 1
MIN_SIZE = 8


class ClassifierConfig(StrictModel):
    """How the judge is trained (params.yaml ``classifier``)."""

    epochs: int = Field(8, ge=1)
    batch_size: int = Field(128, ge=2)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(5e-4, ge=0)
    balance: Literal["none", "reweight", "oversample"] = Field(
        "reweight",
        description="class-weighted loss, class-balanced sampling, or neither",
    )
    augment: bool = Field(
        True, description="random shifts while training: 2 pixels (1 below 16x16 images)"
    )
    flip: bool = Field(
        False, description="random horizontal flips while training (not for digits or text)"
    )
    width: int = Field(32, ge=4, description="channels of the first conv block")
    feature_dim: int = Field(128, ge=2, description="size of the penultimate feature layer")
    device: Literal["auto", "cpu", "cuda"] = "auto"


class Classifier(nn.Module):
    """Three conv-BN-ReLU blocks, adaptive pooling, a feature layer and a linear head.

    ``forward(x) -> logits f32[N,K]``; ``features(x) -> f32[N,D]`` (the penultimate layer).
    ``split_bn``: every batch norm is a :class:`augment.nn.split_norm.SplitBatchNorm2d`
    (synthetic images get their own while training, :func:`~augment.nn.split_norm.synthetic_rows`;
    inference uses the real ones). ``meta`` holds the plain metadata saved with the checkpoint.
    """

    def __init__(
        self,
        channels: int,
        num_classes: int,
        width: int = 32,
        feature_dim: int = 128,
        split_bn: bool = False,
    ) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.channels, self.num_classes = channels, num_classes
        self.width, self.feature_dim, self.split_bn = width, feature_dim, split_bn
        self.meta: dict[str, Any] = {}

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]

        w = width
        self.body = nn.Sequential(  # [N,C,S,S] -> [N, 4w*2*2]
            *block(channels, w),
            nn.MaxPool2d(2),
            *block(w, 2 * w),
            nn.MaxPool2d(2),
            *block(2 * w, 4 * w),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
        )
        self.embed = nn.Sequential(nn.Linear(16 * w, feature_dim), nn.ReLU(inplace=True))
        self.head = nn.Linear(feature_dim, num_classes)
        if split_bn:
            split_batch_norms(self.body)

    def arch(self) -> dict[str, Any]:
        """The constructor arguments (saved with the weights; ``split_bn`` only when set,
        so checkpoints without it read as before)."""
        arch: dict[str, Any] = {
            "channels": self.channels,
            "num_classes": self.num_classes,
            "width": self.width,
            "feature_dim": self.feature_dim,
        }
        return {**arch, "split_bn": True} if self.split_bn else arch

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features f32[N,D] of images f32[N,C,H,W] in [-1,1]."""
        return self.embed(self.body(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


# -- training ----------------------------------------------------------------------------


def check_images(images: np.ndarray, channels: int | None = None) -> None:
    """DataError unless ``images`` is uint8 N x S x S x C, S >= 8, C = 1/3 (= ``channels``)."""
    if images.dtype != np.uint8 or images.ndim != 4:
        raise DataError(
            f"classifier: expected uint8 N x H x W x C images, got "
            f"{images.dtype} of shape {images.shape}"
        )
    _, height, width, c = images.shape
    if height != width or height < MIN_SIZE:
        raise DataError(
            f"classifier: images must be square and at least {MIN_SIZE}x{MIN_SIZE} "
            f"pixels, got {height}x{width}"
        )
    if c not in (1, 3) or (channels is not None and c != channels):
        expected = channels if channels is not None else "1 or 3"
        raise DataError(f"classifier: images have {c} channels, expected {expected}")


def class_counts(labels: Tensor, synthetic: Tensor, num_classes: int, prior: str) -> Tensor:
    """Images per class i64[K] behind a class prior: every image (``pool``) or the real ones
    (``real``; every image when none is real, e.g. synthetic data alone)."""
    real = labels[~synthetic]
    return torch.bincount(real if prior == "real" and len(real) else labels, minlength=num_classes)


def epoch_order(labels: Tensor, counts: Tensor, balance: str, rng: torch.Generator) -> Tensor:
    """Sample indices of one epoch: a permutation, or class-balanced draws with replacement."""
    if balance == "oversample":
        weights = (1.0 / counts.double().clamp(min=1))[labels]
        return torch.multinomial(weights, len(labels), replacement=True, generator=rng)
    return torch.randperm(len(labels), generator=rng)


def random_shift(x: Tensor, max_shift: int, rng: torch.Generator) -> Tensor:
    """Shift every image by its own random offset in [-max_shift, max_shift] (edge padded)."""
    n, _, h, w = x.shape
    m = max_shift
    padded = F.pad(x, (m, m, m, m), mode="replicate").permute(0, 2, 3, 1)  # N,H+2m,W+2m,C
    dy = torch.randint(0, 2 * m + 1, (n,), generator=rng).to(x.device)
    dx = torch.randint(0, 2 * m + 1, (n,), generator=rng).to(x.device)
    rows = dy[:, None] + torch.arange(h, device=x.device)  # N,H
    cols = dx[:, None] + torch.arange(w, device=x.device)  # N,W
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = padded[batch, rows[:, :, None], cols[:, None, :]]  # N,H,W,C
    return out.permute(0, 3, 1, 2).contiguous()


def random_flip(x: Tensor, rng: torch.Generator) -> Tensor:
    """Mirror each image f32[N,C,H,W] left-right with probability 1/2."""
    flip = (torch.rand(len(x), generator=rng) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def check_labels(labels: np.ndarray, count: int, num_classes: int) -> np.ndarray:
    """``labels`` as int64[count] in [0, num_classes); DataError otherwise."""
    labels = np.asarray(labels, np.int64).ravel()
    if len(labels) != count or count < 2:
        raise DataError(
            f"classifier: need >= 2 images with one label each, got "
            f"{count} images and {len(labels)} labels"
        )
    if labels.min() < 0 or labels.max() >= num_classes:
        raise DataError(
            f"classifier: labels must be in [0, {num_classes}), got "
            f"[{labels.min()}, {labels.max()}]"
        )
    return labels


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    config: ClassifierConfig | None = None,
    seed: int = 0,
    progress: bool = True,
    steps: int | None = None,
    objective: Objective | None = None,
    synthetic: np.ndarray | None = None,
) -> Classifier:
    """Train a classifier on uint8 N x H x W x C ``images`` with class-index ``labels``.

    AdamW with a one-cycle learning-rate schedule (warm-up, then cosine decay to ~0), random
    shifts (and flips with ``config.flip``). The long tail is handled by ``config.balance``
    (``reweight``: inverse-frequency class weights; ``oversample``: class-balanced batches)
    or by an ``objective`` (:class:`augment.longtail.Objective`: balanced softmax, DRW,
    mixup), whose priors and weights come from the counts of ``labels`` (of the real images
    only with ``objective.prior`` ``real``). ``synthetic`` (bool[N]) marks synthetic images,
    weighted ``objective.synthetic_weight`` in the loss and normalized by their own batch
    norms with ``objective.split_bn``.
    ``steps`` fixes the number of optimizer steps (else ``config.epochs`` passes over the
    images), so runs on datasets of different sizes get the same compute. The same seed
    gives the same weights on CPU. Returns the model in eval mode after the last step.
    """
    config = config or ClassifierConfig()
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if objective is None:
        weights = "inverse" if config.balance == "reweight" else "none"
        objective = Objective(class_weights=weights)
    check_images(images)
    y = torch.as_tensor(check_labels(labels, len(images), num_classes))
    marks = torch.zeros(len(y), dtype=torch.bool)
    if synthetic is not None:
        marks = torch.as_tensor(np.asarray(synthetic, bool).ravel())
        if len(marks) != len(y):
            raise DataError(f"classifier: {len(marks)} synthetic marks for {len(y)} images")
    sample_weight = None
    if objective.synthetic_weight != 1.0:
        sample_weight = torch.where(marks, objective.synthetic_weight, 1.0).float()
    device = resolve_device(config.device)
    with torch.random.fork_rng(devices=[]):  # seeded init without touching global state
        torch.manual_seed(derive_seed(seed, "classifier", "init"))
        model = Classifier(
            images.shape[3], num_classes, config.width, config.feature_dim, objective.split_bn
        )
    model.to(device).train()
    x = to_tensor(images).to(device)
    counts = torch.bincount(y, minlength=num_classes)  # what the batches draw from
    prior = class_counts(y, marks, num_classes, objective.prior).to(device)  # balanced softmax
    rng = torch.Generator().manual_seed(derive_seed(seed, "classifier", "batches"))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    per_epoch = math.ceil(len(y) / config.batch_size)
    total_steps = steps if steps is not None else config.epochs * per_epoch
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=total_steps
    )
    max_shift = 2 if images.shape[1] >= 16 else 1  # 2 px would cover a quarter of 8x8
    bar = tqdm(
        total=total_steps,
        desc="train classifier",
        unit="step",
        disable=not progress,
        dynamic_ncols=True,
    )
    done = 0
    while done < total_steps:
        total, seen = 0.0, 0
        order = epoch_order(y, counts, config.balance, rng)
        for start in range(0, len(order), config.batch_size):
            if done == total_steps:
                break
            idx = order[start : start + config.batch_size]
            xb, yb = x[idx.to(device)], y[idx].to(device)
            if config.augment:
                xb = random_shift(xb, max_shift, rng)
            if config.flip:
                xb = random_flip(xb, rng)
            xb, targets = mix_batch(xb, yb, objective.mixup, rng)
            if len(idx) > 1:  # BatchNorm cannot train on a single sample
                with synthetic_rows(model, marks[idx] if objective.split_bn else None):
                    logits = model(xb)  # a mixed image is routed as its first image
                loss = objective_loss(
                    objective,
                    logits,
                    targets,
                    prior,
                    class_weights_at(objective, counts, done, total_steps),
                    None if sample_weight is None else sample_weight[idx].to(device),
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total, seen = total + float(loss.detach()) * len(idx), seen + len(idx)
            scheduler.step()
            done += 1
            bar.update()
        bar.set_postfix(loss=f"{total / max(seen, 1):.4f}")
    bar.close()
    return model.eval()


# -- inference and evaluation -------------------------------------------------------------


def _batches(model: Classifier, images: np.ndarray, batch_size: int, fn: str) -> np.ndarray:
    """Run ``model.<fn>`` over uint8 images in batches; float32 output rows."""
    check_images(images, model.channels)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = to_tensor(images[start : start + batch_size]).to(device)
            if fn == "features":
                out = model.features(x)
            else:
                out = model(x)
                out = out.softmax(dim=1) if fn == "proba" else out
            outputs.append(out.float().cpu().numpy())
    model.train(was_training)
    width = model.feature_dim if fn == "features" else model.num_classes
    return np.concatenate(outputs) if outputs else np.zeros((0, width), np.float32)


def predict_proba(model: Classifier, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Class probabilities f32[N,K] of uint8 N x H x W x C ``images``."""
    return _batches(model, images, batch_size, "proba")


def predict_logits(model: Classifier, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Logits f32[N,K] of uint8 N x H x W x C ``images``."""
    return _batches(model, images, batch_size, "logits")


def extract_features(model: Classifier, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Penultimate-layer features f32[N,D] of uint8 N x H x W x C ``images``."""
    return _batches(model, images, batch_size, "features")


def evaluate(
    model: Classifier, images: np.ndarray, labels: np.ndarray, num_classes: int
) -> dict[str, Any]:
    """Accuracy, balanced accuracy (mean recall over present classes) and per-class recall.

    ``per_class_recall[k]`` is None for a class without images.
    """
    labels = np.asarray(labels, np.int64).ravel()
    if len(labels) == 0:
        raise DataError("classifier: nothing to evaluate (no images)")
    predicted = predict_proba(model, images).argmax(axis=1)
    correct = predicted == labels
    recall: list[float | None] = []
    for k in range(num_classes):
        mask = labels == k
        recall.append(float(correct[mask].mean()) if mask.any() else None)
    present = [r for r in recall if r is not None]
    return {
        "count": int(len(labels)),
        "accuracy": float(correct.mean()),
        "balanced_accuracy": float(np.mean(present)),
        "per_class_recall": recall,
    }


# -- checkpoints ---------------------------------------------------------------------------


def judge_accuracies(
    judge: tuple[Classifier, Any] | None, versions: dict[str, np.ndarray], labels: np.ndarray
) -> dict[str, float]:
    """The judge's accuracy on each version of the same labelled images (name -> u8
    images), e.g. originals beside upscaled or inpainted copies; {} without a judge
    (a classifier and its classes, as :func:`load_classifier` returns them)."""
    if judge is None:
        return {}
    model, classes = judge
    return {
        name: round(float(evaluate(model, images, labels, len(classes))["accuracy"]), 4)
        for name, images in versions.items()
    }


def save_classifier(
    model: Classifier,
    path: str | os.PathLike[str],
    classes: list[str] | tuple[str, ...],
    meta: dict[str, Any] | None = None,
) -> None:
    """Write weights, architecture, class names and JSON-plain ``meta`` (atomically)."""
    if len(classes) != model.num_classes:
        raise ValueError(f"{len(classes)} class names for a {model.num_classes}-class model")
    plain_meta = json.loads(json.dumps(meta or {}))  # weights_only loading needs plain data
    state = {
        "kind": CHECKPOINT_KIND,
        "format": CHECKPOINT_FORMAT,
        "arch": model.arch(),
        "classes": [str(c) for c in classes],
        "meta": plain_meta,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    log.info("saved classifier to %s", path)


def load_classifier(
    path: str | os.PathLike[str], device: str = "cpu"
) -> tuple[Classifier, list[str]]:
    """Load a judge saved by :func:`save_classifier`: (model in eval mode, class names).

    A missing file or one that is not ours is a ModelError naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: classifier checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and unpickling-policy errors of foreign files
        raise ModelError(
            f"{path}: not a gan-augment classifier checkpoint ({exc.__class__.__name__})"
        ) from None
    if (
        not isinstance(state, dict)
        or state.get("kind") != CHECKPOINT_KIND
        or state.get("format") != CHECKPOINT_FORMAT
    ):
        raise ModelError(
            f"{path}: not a gan-augment classifier checkpoint (format {CHECKPOINT_FORMAT})"
        )
    try:
        model = Classifier(**state["arch"])
        model.load_state_dict(state["state_dict"])
        classes = [str(c) for c in state["classes"]]
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: inconsistent classifier checkpoint ({reason})") from None
    if len(classes) != model.num_classes:
        raise ModelError(f"{path}: {len(classes)} class names for {model.num_classes} outputs")
    model.meta = dict(state.get("meta") or {})
    return model.to(resolve_device(device)).eval(), classes
