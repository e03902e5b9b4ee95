"""Adversarial losses and penalties, written once and chosen by name.

Discriminators output raw logits (critic values for Wasserstein); every loss is a mean
over the batch. Relativistic losses compare real and fake logits of one batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Adversarial = Literal["ns", "minimax", "wasserstein", "hinge", "lsgan", "rsgan", "ragan", "rahinge"]
ADVERSARIAL: tuple[str, ...] = get_args(Adversarial)
RELATIVISTIC = frozenset({"rsgan", "ragan", "rahinge"})


def discriminator_loss(kind: Adversarial, real: Tensor, fake: Tensor) -> Tensor:
    """Loss of the discriminator given its logits on real and on generated images."""
    if kind in ("ns", "minimax"):  # -log D(x) - log(1 - D(G(z)))
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "wasserstein":
        return fake.mean() - real.mean()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "lsgan":  # a=0, b=1 coding of Mao et al.
        return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake**2).mean()
    if kind == "rsgan":
        return F.softplus(-(real - fake)).mean()
    if kind == "ragan":
        return F.softplus(-(real - fake.mean())).mean() + F.softplus(fake - real.mean()).mean()
    if kind == "rahinge":
        return F.relu(1 - (real - fake.mean())).mean() + F.relu(1 + (fake - real.mean())).mean()
    raise ValueError(f"unknown adversarial loss {kind!r} (known: {', '.join(ADVERSARIAL)})")


def generator_loss(kind: Adversarial, fake: Tensor, real: Tensor | None = None) -> Tensor:
    """Loss of the generator given the discriminator's logits on generated images.

    Relativistic losses also need the logits on a real batch.
    """
    if kind in RELATIVISTIC and real is None:
        raise ValueError(f"{kind} is relativistic: generator_loss needs real logits")
    if kind == "ns":  # -log D(G(z))
        return F.softplus(-fake).mean()
    if kind == "minimax":  # log(1 - D(G(z))), the original saturating objective
        return -F.softplus(fake).mean()
    if kind in ("wasserstein", "hinge"):
        return -fake.mean()
    if kind == "lsgan":
        return 0.5 * ((fake - 1) ** 2).mean()
    if kind == "rsgan":
        return F.softplus(-(fake - real)).mean()
    if kind == "ragan":
        return F.softplus(-(fake - real.mean())).mean() + F.softplus(real - fake.mean()).mean()
    if kind == "rahinge":
        return F.relu(1 - (fake - real.mean())).mean() + F.relu(1 + (real - fake.mean())).mean()
    raise ValueError(f"unknown adversarial loss {kind!r} (known: {', '.join(ADVERSARIAL)})")


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP: mean (||grad critic(x_hat)||_2 - 1)^2 on random real/fake interpolates."""
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    mixed = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def r1_penalty(real_logits: Tensor, real: Tensor) -> Tensor:
    """R1: mean squared gradient norm of the logits w.r.t. real inputs (Mescheder et al.)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()


def mode_seeking(image_a: Tensor, image_b: Tensor, z_a: Tensor, z_b: Tensor) -> Tensor:
    """MSGAN (Mao et al., 2019): 1 / (mean |G(z_a) - G(z_b)| / mean |z_a - z_b| + eps).

    Pairs share their condition; minimizing it stops the generator ignoring its noise.
    """
    image_gap = (image_a - image_b).abs().flatten(1).mean(1)
    noise_gap = (z_a - z_b).abs().flatten(1).mean(1)
    return 1.0 / ((image_gap / noise_gap).mean() + 1e-5)


class LeCamAnchors(nn.Module):
    """The moving anchors of LeCam regularization (Tseng et al., CVPR 2021, eq. 3).

    ``R_LC = E_x[(D(x) - alpha_F)^2] + E_z[(D(G(z)) - alpha_R)^2]``, where ``alpha_R`` and
    ``alpha_F`` are exponential moving averages (decay ``gamma``) of the discriminator's mean
    logit on real and on generated images. It keeps the logits of real and fake close to
    each other's recent average, which bounds how far a discriminator can overfit a small
    train set; the paper shows it minimizes a LeCam (triangular) divergence. The anchors
    are buffers, so a checkpoint keeps them and a resumed run continues them exactly.
    """

    def __init__(self, gamma: float = 0.99) -> None:
        super().__init__()
        self.gamma = gamma
        self.register_buffer("real", torch.zeros(()))
        self.register_buffer("fake", torch.zeros(()))

    def forward(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """The penalty on this batch's logits f32[N]; then the anchors move towards them."""
        penalty = ((real_logits - self.fake) ** 2).mean() + ((fake_logits - self.real) ** 2).mean()
        with torch.no_grad():
            self.real.mul_(self.gamma).add_((1 - self.gamma) * real_logits.detach().mean())
            self.fake.mul_(self.gamma).add_((1 - self.gamma) * fake_logits.detach().mean())
        return penalty
