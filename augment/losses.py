"""Adversarial losses and penalties, written once and chosen by name.

Discriminators output raw logits (critic values for Wasserstein); every loss is a mean
over the batch. Relativistic losses compare real and fake logits of one batch.

Notation: ``D(x)`` below is the raw logit ``C(x)`` (no sigmoid applied), so a probability
is ``sigma(C(x))`` and the identities ``-log sigma(t) = softplus(-t)`` and
``-log(1 - sigma(t)) = softplus(t)`` give numerically stable cross-entropies. Penalties
are returned unweighted: callers multiply by their weight (lambda, gamma/2, ...).
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
    """Loss of the discriminator given its logits on real and on generated images.

    ``real`` and ``fake`` are logits f32[N] (``rsgan`` pairs them element-wise, so both
    batches must have the same size); returns a scalar.
    """
    # GAN cross-entropy (Goodfellow et al., 2014): the D loss is the same for both G variants
    if kind in ("ns", "minimax"):  # -log D(x) - log(1 - D(G(z)))
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    # WGAN critic (Arjovsky et al., 2017): L_D = E[D(G(z))] - E[D(x)]; needs a Lipschitz
    # constraint from outside (weight clipping, gradient_penalty or spectral norm)
    if kind == "wasserstein":
        return fake.mean() - real.mean()
    # hinge (Lim & Ye, 2017): L_D = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    # LSGAN (Mao et al., 2017): L_D = 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]
    if kind == "lsgan":  # a=0, b=1 coding of Mao et al.
        return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake**2).mean()
    # relativistic standard GAN (Jolicoeur-Martineau, 2019): L_D = -E[log sigma(C(x_r) - C(x_f))]
    if kind == "rsgan":
        return F.softplus(-(real - fake)).mean()
    # relativistic average GAN (same paper): each logit is judged against the other side's
    # batch mean, L_D = -E[log sigma(C(x_r) - E C(x_f))] - E[log(1 - sigma(C(x_f) - E C(x_r)))]
    if kind == "ragan":
        return F.softplus(-(real - fake.mean())).mean() + F.softplus(fake - real.mean()).mean()
    # relativistic average hinge (same paper):
    # L_D = E[max(0, 1 - (C(x_r) - E C(x_f)))] + E[max(0, 1 + (C(x_f) - E C(x_r)))]
    if kind == "rahinge":
        return F.relu(1 - (real - fake.mean())).mean() + F.relu(1 + (fake - real.mean())).mean()
    raise ValueError(f"unknown adversarial loss {kind!r} (known: {', '.join(ADVERSARIAL)})")


def generator_loss(kind: Adversarial, fake: Tensor, real: Tensor | None = None) -> Tensor:
    """Loss of the generator given the discriminator's logits on generated images.

    Relativistic losses also need the logits on a real batch. ``fake`` (and ``real``) are
    logits f32[N]; returns a scalar.
    """
    if kind in RELATIVISTIC and real is None:
        raise ValueError(f"{kind} is relativistic: generator_loss needs real logits")
    # non-saturating heuristic of Goodfellow et al. (2014): strong gradients while D wins
    if kind == "ns":  # -log D(G(z))
        return F.softplus(-fake).mean()
    if kind == "minimax":  # log(1 - D(G(z))), the original saturating objective
        return -F.softplus(fake).mean()
    # L_G = -E[D(G(z))] for both WGAN and hinge (the hinge is used on D's side only)
    if kind in ("wasserstein", "hinge"):
        return -fake.mean()
    # LSGAN: L_G = 1/2 E[(D(G(z)) - c)^2] with c = 1 (G wants fakes coded as real)
    if kind == "lsgan":
        return 0.5 * ((fake - 1) ** 2).mean()
    # relativistic losses: the discriminator's loss with the roles of real and fake swapped;
    # unlike non-relativistic ones, G's gradient also flows through the real logits' term
    if kind == "rsgan":
        return F.softplus(-(fake - real)).mean()
    if kind == "ragan":
        return F.softplus(-(fake - real.mean())).mean() + F.softplus(real - fake.mean()).mean()
    if kind == "rahinge":
        return F.relu(1 - (fake - real.mean())).mean() + F.relu(1 + (real - fake.mean())).mean()
    raise ValueError(f"unknown adversarial loss {kind!r} (known: {', '.join(ADVERSARIAL)})")


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP: mean (||grad critic(x_hat)||_2 - 1)^2 on random real/fake interpolates.

    Gulrajani et al. (2017): ``E[(||grad_x D(x_hat)||_2 - 1)^2]`` with
    ``x_hat = alpha * x + (1 - alpha) * G(z)``, ``alpha ~ U[0, 1]`` per sample, i.e. on
    lines between real and generated images; the caller multiplies by ``lambda``. The
    critic must treat samples independently (no batch norm), or the per-sample gradient
    is not the gradient of that sample's own critic value.
    """
    # alpha: [N, 1, 1, 1] for images (one mixing weight per sample, broadcast over C, H, W)
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    # fakes detached: the penalty trains the critic only, not the generator
    mixed = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
    # summing the critic outputs gives each sample its own grad; create_graph=True so the
    # penalty itself can be backpropagated into the critic's weights (double backprop)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    # [N, C, H, W] -> [N, C*H*W] -> L2 norm per sample [N] -> scalar
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def r1_penalty(real_logits: Tensor, real: Tensor) -> Tensor:
    """R1: mean squared gradient norm of the logits w.r.t. real inputs (Mescheder et al.).

    Mescheder et al. (2018): ``R1 = gamma/2 * E_x[||grad_x D(x)||_2^2]`` on real data
    only; this returns ``E[||grad_x D(x)||^2]`` and the caller applies ``gamma/2``.
    ``real`` must have had ``requires_grad`` set before ``real_logits`` were computed.
    """
    # create_graph=True: the penalty is differentiated again w.r.t. D's weights
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    # [N, C, H, W] -> [N, C*H*W] -> squared L2 norm per sample [N] -> scalar
    return grad.flatten(1).pow(2).sum(1).mean()


def mode_seeking(image_a: Tensor, image_b: Tensor, z_a: Tensor, z_b: Tensor) -> Tensor:
    """MSGAN (Mao et al., 2019): 1 / (mean |G(z_a) - G(z_b)| / mean |z_a - z_b| + eps).

    Pairs share their condition; minimizing it stops the generator ignoring its noise.
    The paper maximizes ``d_I(G(c, z_a), G(c, z_b)) / d_z(z_a, z_b)`` with L1 distances
    ``d``; as in its reference code the reciprocal is minimized instead, so the term is
    bounded (by ``1 / eps``) and shrinks as outputs spread.
    """
    # mean absolute difference per pair: [N, C, H, W] -> [N] and [N, latent] -> [N]
    image_gap = (image_a - image_b).abs().flatten(1).mean(1)
    noise_gap = (z_a - z_b).abs().flatten(1).mean(1)
    # ratio averaged over pairs, then inverted; eps = 1e-5 guards against a zero ratio
    return 1.0 / ((image_gap / noise_gap).mean() + 1e-5)


#: What a multi-scale critic returns (pix2pixHD's, SPADE's): per scale, finest first, its
#: intermediate maps and then its patch logits.
ScaleOutputs = list[list[Tensor]]


def multiscale_discriminator_losses(
    kind: Adversarial, real: ScaleOutputs, fake: ScaleOutputs
) -> list[Tensor]:
    """Each scale's :func:`discriminator_loss` on its patch logits (callers sum them)."""
    return [discriminator_loss(kind, r[-1], f[-1]) for r, f in zip(real, fake, strict=True)]


def multiscale_generator_loss(kind: Adversarial, fake: ScaleOutputs, real: ScaleOutputs) -> Tensor:
    """Sum over scales of :func:`generator_loss` (the real logits reach it for relativistic
    kinds: pass them detached, they are constants for the generator)."""
    relativistic = kind in RELATIVISTIC
    terms = [
        generator_loss(kind, f[-1], r[-1] if relativistic else None)
        for r, f in zip(real, fake, strict=True)
    ]
    return torch.stack(terms).sum()


def feature_matching(real: ScaleOutputs, fake: ScaleOutputs) -> Tensor:
    """pix2pixHD's feature matching (Wang et al., 2018, eq. 4): the mean over scales k and
    layers i of ``mean |D_k^(i)(real) - D_k^(i)(fake)|``, the critics' intermediate maps
    (logits left out). The paper weights a layer 4 / (layers + 1) and a scale 1 / scales:
    the same average up to a constant. ``real``'s maps are constants (computed without
    gradient)."""
    per_scale = [
        torch.stack([F.l1_loss(f, r) for r, f in zip(rs[:-1], fs[:-1], strict=True)]).mean()
        for rs, fs in zip(real, fake, strict=True)
    ]
    return torch.stack(per_scale).mean()


def group_shape(features: int) -> tuple[int, int]:
    """The most nearly square ``(a, b)``, ``a <= b``, ``a * b = features``: how gSR groups
    a vector of ``features`` conditional-BN gains into a matrix (16 -> (4, 4), 96 -> (8, 12);
    a prime gives (1, p), a plain vector norm)."""
    a = max(d for d in range(1, int(features**0.5) + 1) if features % d == 0)
    return a, features // a


def group_spectral_penalty(affine: Tensor) -> Tensor:
    """gSR's term for one conditional batch norm's per-class gains (or biases) f32[K, C]:
    ``mean_y sigma_max(G_y)^2``, each class's ``C`` values grouped into a matrix ``G_y``
    f32[a, b] (:func:`group_shape`).

    Rangwani et al. (ECCV 2022, "Improving GANs for Long-Tailed Data through Group
    Spectral Regularization") trace the mode collapse of a conditional GAN's tail classes
    to a *spectral explosion* of those classes' BN parameters: grouped this way, the
    tail's matrices grow a few dominant singular values (a handful of feature directions
    the class's images all share). Penalizing the top singular value keeps the gains
    spread over many directions. The authors' code squares it and averages over classes
    and layers, which this follows (callers average over layers and apply lambda; the
    paper's is 0.5). The exact ``sigma_max`` comes from an SVD of K small matrices
    (``torch.linalg.matrix_norm(ord=2)``, differentiable); their code can use power
    iteration instead, an approximation for speed on large class counts.
    """
    classes, features = affine.shape
    grouped = affine.reshape(classes, *group_shape(features))  # [K, a, b]
    return torch.linalg.matrix_norm(grouped, ord=2).pow(2).mean()  # [K] -> scalar


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
        # alpha_R and alpha_F, scalars; they start at 0 with no bias correction, so the
        # first ~1/(1 - gamma) steps pull the logits towards 0 as well
        self.register_buffer("real", torch.zeros(()))
        self.register_buffer("fake", torch.zeros(()))

    def forward(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """The penalty on this batch's logits f32[N]; then the anchors move towards them."""
        # real logits are pulled to the fake anchor and vice versa (the anchors are the
        # values before this batch's update, and constants for autograd)
        penalty = ((real_logits - self.fake) ** 2).mean() + ((fake_logits - self.real) ** 2).mean()
        with torch.no_grad():
            # alpha <- gamma * alpha + (1 - gamma) * mean(logits)
            self.real.mul_(self.gamma).add_((1 - self.gamma) * real_logits.detach().mean())
            self.fake.mul_(self.gamma).add_((1 - self.gamma) * fake_logits.detach().mean())
        return penalty


class BoundaryEquilibrium(nn.Module):
    """BEGAN's equilibrium control (Berthelot et al., 2017, section 3.4).

    With an autoencoder discriminator and ``L(v) = mean |v - D(v)|`` (its reconstruction
    error, eta = 1), the losses are

        L_D = L(x) - k_t * L(G(z)),    L_G = L(G(z))
        k_{t+1} = clip(k_t + lambda_k * (gamma * L(x) - L(G(z))), 0, 1)

    ``gamma = E[L(G(z))] / E[L(x)]`` in equilibrium is the *diversity ratio*: lower values
    let the discriminator focus on reconstructing real images (sharper, less varied
    samples). ``k`` is a proportional controller that weighs how hard the discriminator
    pushes fakes away; it starts at 0 and is a buffer, so a checkpoint keeps it and a
    resumed run continues it exactly. ``M = L(x) + |gamma * L(x) - L(G(z))|`` is the
    paper's convergence measure (it falls as training converges; the paper plots it).
    """

    def __init__(self, gamma: float = 0.5, lambda_k: float = 1e-3) -> None:
        super().__init__()
        self.gamma, self.lambda_k = gamma, lambda_k
        self.register_buffer("k", torch.zeros(()))

    def discriminator_loss(self, real_error: Tensor, fake_error: Tensor) -> Tensor:
        """``L(x) - k_t L(G(z))`` from the mean reconstruction errors (scalars); then ``k``
        takes its step with this batch's errors."""
        loss = real_error - self.k.clone() * fake_error  # k_t: a copy, as k moves below
        with torch.no_grad():
            balance = self.gamma * real_error.detach() - fake_error.detach()
            self.k.add_(self.lambda_k * balance).clamp_(0.0, 1.0)
        return loss

    def convergence(self, real_error: Tensor, fake_error: Tensor) -> float:
        """M_global = L(x) + |gamma L(x) - L(G(z))| (a logged number, not a loss)."""
        real, fake = real_error.detach(), fake_error.detach()
        return float(real + (self.gamma * real - fake).abs())


def log_power_spectrum(images: Tensor) -> Tensor:
    """``log P(f)`` f32[H, W] of a batch f32[N, C, H, W]: the mean over the batch of each
    image's power spectrum ``|FFT2(y - mean y)|^2 / (H W)``, ``y`` its luma (BT.601 for
    3 channels, the mean of the channels otherwise), unshifted (zero frequency at [0, 0]).
    The torch twin of :func:`augment.metrics.spectrum.power_spectrum`, differentiable."""
    if images.shape[1] == 3:
        weights = images.new_tensor([0.299, 0.587, 0.114])[None, :, None, None]
        luma = (images * weights).sum(dim=1)  # [N, H, W]
    else:
        luma = images.mean(dim=1)
    luma = luma - luma.mean(dim=(1, 2), keepdim=True)
    height, width = luma.shape[1:]
    power = torch.fft.fft2(luma).abs().square().mean(dim=0) / (height * width)  # [H, W]
    return torch.log(power + 1e-8)


class SpectrumAnchor(nn.Module):
    """Spectral regularization of a generator against the real images' mean spectrum.

    Generators with up-sampling layers get the high frequencies wrong: periodic peaks (a
    transposed conv's checkerboard, a lattice over flat regions) and a high band short of
    power, which a discriminator that average-pools its input barely sees (Durall, Keuper
    & Keuper, CVPR 2020, "Watch your up-convolution", who add the azimuthal average of the
    spectrum to the generator's loss). Here the whole 2-D spectrum is matched, as a
    lattice is one frequency and direction, not a radius, on the amplitude ratio:

        R_spec = mean_f (sqrt(P_G(f) / P_R(f)) - 1)^2 = mean_f (|F_G(f)| - |F_R(f)|)^2 / P_R(f)

    ``P_G`` a generated batch's mean power spectrum (:func:`log_power_spectrum`), ``P_R``
    the anchor: ``exp`` of an exponential moving average (decay ``gamma``) of the real
    batches' ``log P``, steadier than one batch's. In amplitudes the gradient on a peak
    grows with its height (``d/d|F_G| = 2 (|F_G| - |F_R|) / P_R``), so a 20x lattice is
    pulled down hard; the log-ratio ``(log P_G - log P_R)^2`` gives a peak a gradient
    shrinking like ``log r / |F_G|`` and barely moves it (measured in the tests: it left
    94% of a lattice after 150 Adam steps, where this form removes it). A deficit costs at
    most 1 a frequency. The anchor is a buffer, so a checkpoint keeps it; it starts at the
    first real batch's spectrum.
    """

    def __init__(self, image_size: int, gamma: float = 0.99) -> None:
        super().__init__()
        self.gamma = gamma
        self.register_buffer("real", torch.zeros(image_size, image_size))  # a(f), f32[S, S]
        self.register_buffer("started", torch.zeros((), dtype=torch.bool))

    def observe(self, real: Tensor) -> None:
        """Move the anchor towards the spectrum of a real batch f32[N, C, S, S]."""
        with torch.no_grad():
            spectrum = log_power_spectrum(real)
            if not self.started:
                self.real.copy_(spectrum)
                self.started.fill_(True)
            else:  # a <- gamma * a + (1 - gamma) * log P_real
                self.real.mul_(self.gamma).add_((1 - self.gamma) * spectrum)

    def forward(self, fake: Tensor) -> Tensor:
        """The penalty on a generated batch f32[N, C, S, S] (the anchor is a constant)."""
        amplitude_ratio = (0.5 * (log_power_spectrum(fake) - self.real)).exp()  # sqrt(P_G / P_R)
        return (amplitude_ratio - 1).square().mean()
