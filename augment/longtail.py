"""Classical fixes of a long-tailed train split, for the downstream classifier.

These are the cheap baselines any claim for synthetic data has to beat (CIFAR-10-LT,
imbalance 100, ResNet-32: cross-entropy ~71%, DRW 75%, logit adjustment 78-81%, mixup +
DRW 82%; generative methods such as M2m and DeepSMOTE land below the best of them).

Notation: logits ``f(x)`` f32[N,K], targets ``y`` i64[N], train counts ``n_k`` and the
train prior ``pi_k = n_k / sum_j n_j``.

* **Logit-adjusted loss** (Menon et al., 2021, eq. 10) ``-log softmax(f(x) + tau log pi)_y``.
  At ``tau = 1`` it is **balanced softmax** (Ren et al., 2020): ``-log(n_y e^{f_y} /
  sum_j n_j e^{f_j})``; both make ``argmax f(x)`` the Bayes classifier of the *balanced*
  error. :func:`balanced_softmax_loss` and :func:`logit_adjusted_loss` are written each in
  its paper's form; a test checks that they agree.
* **Post-hoc logit adjustment** (Menon et al., 2021, eq. 9): a model trained with plain
  cross-entropy predicts ``argmax_k f_k(x) - tau log pi_k`` (:func:`posthoc_adjusted`).
* **Deferred re-weighting** (DRW, Cao et al., 2019): plain cross-entropy for the first
  ``start`` fraction of the steps, then class weights from the *effective number* of
  samples (Cui et al., 2019): ``w_k ∝ (1 - beta) / (1 - beta^{n_k})``, scaled to sum to K
  (:func:`effective_number_weights`, :func:`drw_weights`).
* **Mixup** (Zhang et al., 2018): ``x = lam x_i + (1 - lam) x_j`` with ``lam ~ Beta(alpha,
  alpha)``, loss ``lam l(y_i) + (1 - lam) l(y_j)`` (:func:`mix_batch`).
* **Classifier re-training** (cRT, Kang et al., 2020): keep a backbone trained with
  instance sampling, re-initialise the linear head and train it alone on class-balanced
  batches of the backbone's features (:func:`retrain_head`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

LossName = Literal["ce", "balanced-softmax"]
WeightName = Literal["none", "inverse", "drw"]
PriorName = Literal["pool", "real"]


@dataclass(frozen=True)
class Objective:
    """How a downstream run turns a batch into a loss (plain data: part of a run's key).

    ``loss``: cross-entropy or balanced softmax (the prior comes from the train counts);
    ``class_weights``: none, inverse frequency ``N / (K n_k)``, or DRW's deferred
    effective-number weights from ``drw_start`` (fraction of the steps) with ``drw_beta``;
    ``mixup``: the Beta(alpha, alpha) parameter, 0 for no mixup; ``synthetic_weight``: the
    loss weight of synthetic samples relative to real ones; ``split_bn``: synthetic samples
    get their own batch norms (:class:`augment.nn.split_norm.SplitBatchNorm2d`);
    ``prior``: the counts ``n_k`` behind the class prior (balanced softmax, post-hoc logit
    adjustment), of every image (``pool``) or of the real ones only (``real``: synthetic
    images count as augmentations of their class, as shifted copies do, not as draws of the
    label distribution). Class weights always count what the batches draw (every image):
    they balance the gradient each class gets, and counting real images only would weight
    a class with 2 synthetic images per real one 3x too much (mnist-r50: mixup-drw+gan:2
    96.0 with pool weights, 95.2 with real ones).
    """

    loss: LossName = "ce"
    class_weights: WeightName = "none"
    drw_start: float = 0.8
    drw_beta: float = 0.9999
    mixup: float = 0.0
    synthetic_weight: float = 1.0
    split_bn: bool = False
    prior: PriorName = "pool"

    @property
    def trains_with_prior(self) -> bool:
        """Whether the training loss reads the class prior (balanced softmax)."""
        return self.loss == "balanced-softmax"

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain data (a run's key): ``split_bn`` only when set and ``prior``
        only when it is ``real`` and the training loss reads it, so run keys from before
        these fields, and the runs both priors share, stay the same."""
        fields = asdict(self)
        if not self.split_bn:
            del fields["split_bn"]
        if self.prior == "pool" or not self.trains_with_prior:
            del fields["prior"]
        return fields


# -- losses --------------------------------------------------------------------------------


def log_prior(counts: Tensor) -> Tensor:
    """``log pi_k = log(n_k / sum n)`` f32[K]; absent classes get log(1e-12), never -inf."""
    counts = counts.double()
    return torch.log((counts / counts.sum()).clamp(min=1e-12)).float()


def logit_adjusted_loss(logits: Tensor, target: Tensor, counts: Tensor, tau: float = 1.0) -> Tensor:
    """Per-sample logit-adjusted cross-entropy f32[N]: ``CE(f(x) + tau log pi, y)``."""
    return F.cross_entropy(logits + tau * log_prior(counts).to(logits), target, reduction="none")


def balanced_softmax_loss(logits: Tensor, target: Tensor, counts: Tensor) -> Tensor:
    """Per-sample balanced softmax f32[N]: ``-log(n_y e^{f_y} / sum_j n_j e^{f_j})``.

    Computed as ``logsumexp_j(f_j + log n_j) - (f_y + log n_y)``, which is the logit-adjusted
    loss at ``tau = 1`` (the normalizer ``sum n`` cancels).
    """
    log_n = torch.log(counts.double().clamp(min=1e-12)).float().to(logits)
    shifted = logits + log_n
    return torch.logsumexp(shifted, dim=1) - shifted.gather(1, target[:, None]).squeeze(1)


def inverse_frequency_weights(counts: Tensor) -> Tensor:
    """``N / (K' n_k)`` f32[K] over the K' present classes (0 for absent ones)."""
    counts = counts.double()
    present = counts > 0
    weights = torch.zeros_like(counts)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.float()


def effective_number_weights(counts: Tensor, beta: float = 0.9999) -> Tensor:
    """Class-balanced weights of Cui et al. (2019): ``(1 - beta) / (1 - beta^{n_k})``.

    Scaled so that the present classes' weights sum to their number (0 for absent classes).
    As ``beta -> 1`` they approach inverse frequency; ``beta = 0`` gives equal weights.
    """
    counts = counts.double()
    present = counts > 0
    weights = torch.zeros_like(counts)
    weights[present] = (1.0 - beta) / (1.0 - beta ** counts[present])
    weights[present] *= present.sum() / weights[present].sum()
    return weights.float()


def drw_weights(
    counts: Tensor, step: int, total_steps: int, start: float = 0.8, beta: float = 0.9999
) -> Tensor | None:
    """DRW's class weights at ``step`` (0-based): None before ``floor(start * total)``."""
    if step < math.floor(start * total_steps):
        return None
    return effective_number_weights(counts, beta)


def class_weights_at(
    objective: Objective, counts: Tensor, step: int, total_steps: int
) -> Tensor | None:
    """The class weights of ``objective`` at ``step`` (None: unweighted)."""
    if objective.class_weights == "inverse":
        return inverse_frequency_weights(counts)
    if objective.class_weights == "drw":
        return drw_weights(counts, step, total_steps, objective.drw_start, objective.drw_beta)
    return None


def per_sample_loss(objective: Objective, logits: Tensor, target: Tensor, counts: Tensor) -> Tensor:
    """The unweighted per-sample loss f32[N] of ``objective``."""
    if objective.loss == "balanced-softmax":
        return balanced_softmax_loss(logits, target, counts)
    return F.cross_entropy(logits, target, reduction="none")


def weighted_mean(losses: Tensor, weights: Tensor | None) -> Tensor:
    """``sum w_i l_i / sum w_i`` (torch's weighted cross-entropy mean); plain mean if None."""
    if weights is None:
        return losses.mean()
    return (weights * losses).sum() / weights.sum().clamp(min=1e-12)


def objective_loss(
    objective: Objective,
    logits: Tensor,
    targets: tuple[Tensor, Tensor, float],
    counts: Tensor,
    class_weight: Tensor | None,
    sample_weight: Tensor | None,
) -> Tensor:
    """The batch loss: mixup's ``lam l(y_a) + (1 - lam) l(y_b)`` of weighted means.

    ``targets`` is ``(y_a, y_b, lam)`` (``lam = 1``, ``y_b = y_a`` without mixup); each term
    weights sample ``i`` by ``class_weight[y_i] * sample_weight[i]``.
    """
    y_a, y_b, lam = targets
    total = logits.new_zeros(())
    for y, share in ((y_a, lam), (y_b, 1.0 - lam)):
        if share == 0:
            continue
        weight = sample_weight
        if class_weight is not None:
            cw = class_weight.to(logits)[y]
            weight = cw if weight is None else weight * cw
        total = total + share * weighted_mean(per_sample_loss(objective, logits, y, counts), weight)
    return total


def mix_batch(
    x: Tensor, y: Tensor, alpha: float, rng: torch.Generator
) -> tuple[Tensor, tuple[Tensor, Tensor, float]]:
    """Mixup of a batch: ``(lam x + (1 - lam) x[perm], (y, y[perm], lam))``.

    ``alpha <= 0`` returns the batch unchanged with ``lam = 1``. ``lam ~ Beta(alpha, alpha)``
    and the permutation both come from the torch generator ``rng`` (reproducible).
    """
    if alpha <= 0:
        return x, (y, y, 1.0)
    seed = int(torch.randint(0, 2**62, (1,), generator=rng))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    perm = torch.randperm(len(y), generator=rng).to(y.device)
    return lam * x + (1.0 - lam) * x[perm], (y, y[perm], lam)


# -- prediction ------------------------------------------------------------------------------


def posthoc_adjusted(logits: np.ndarray, counts: np.ndarray, tau: float = 1.0) -> np.ndarray:
    """Post-hoc logit adjustment: ``f(x) - tau log pi`` f32[N,K] (argmax is the prediction)."""
    prior = np.asarray(counts, np.float64)
    prior = np.clip(prior / prior.sum(), 1e-12, None)
    return (np.asarray(logits, np.float64) - tau * np.log(prior)).astype(np.float32)


# -- decoupled classifier re-training (cRT) ------------------------------------------------


def retrain_head(
    head: nn.Linear,
    features: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    steps: int,
    seed: int,
    batch_size: int = 256,
    lr: float = 1e-2,
    weight_decay: float = 5e-4,
    sample_weight: np.ndarray | None = None,
) -> nn.Linear:
    """cRT: a freshly initialised copy of ``head`` trained on frozen ``features`` f32[N,D].

    Batches are drawn class-balanced (every class equally likely, with replacement); AdamW
    with cosine decay over ``steps``. ``sample_weight`` weights each sample's loss (e.g.
    synthetic samples below 1). Returns the new head in eval mode; ``head`` is untouched.
    """
    generator = torch.Generator().manual_seed(seed)
    new = nn.Linear(head.in_features, head.out_features)
    with torch.no_grad():  # nn.Linear's default init, drawn from our own generator
        bound = 1.0 / math.sqrt(head.in_features)
        new.weight.uniform_(-bound, bound, generator=generator)
        new.bias.uniform_(-bound, bound, generator=generator)
    x = torch.as_tensor(features, dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.int64)
    w = None if sample_weight is None else torch.as_tensor(sample_weight, dtype=torch.float32)
    counts = torch.bincount(y, minlength=num_classes).double()
    draw = (1.0 / counts.clamp(min=1))[y]  # class-balanced sampling probabilities
    optimizer = torch.optim.AdamW(new.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    new.train()
    for _ in range(steps):
        idx = torch.multinomial(draw, batch_size, replacement=True, generator=generator)
        losses = F.cross_entropy(new(x[idx]), y[idx], reduction="none")
        loss = weighted_mean(losses, None if w is None else w[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return new.eval()
