"""The conditional variational autoencoder's pieces (Kingma & Welling, 2014; Sohn et al.,
2015): the reparameterized sample and the two terms of the negative evidence lower bound.
Its networks are DCGAN's (:mod:`augment.nn.dcgan`): the encoder a ``ConditionalEncoder``
with ``2 * latent`` outputs (mu, logvar), the decoder a ``ConditionalGenerator``.

For an image x (D = C*S*S values) of class y, a decoder p(x | z, y) and the prior
p(z) = N(0, I), the loss per image is

    -ELBO = E_q[-log p(x | z, y)] + KL(q(z | x, y) || N(0, I))

* the encoder outputs ``mu`` and ``logvar`` of a diagonal Gaussian q; a sample is
  ``z = mu + exp(logvar / 2) * eps``, eps ~ N(0, I) (the reparameterization trick), so the
  gradient flows through ``mu`` and ``logvar``;
* KL(N(mu, sigma^2) || N(0, 1)) = 1/2 (mu^2 + sigma^2 - log sigma^2 - 1), summed over the
  latent dimensions (:func:`gaussian_kl`);
* the decoder is a Gaussian N(x_hat, sigma^2 I) with one sigma for every pixel, set to its
  maximum-likelihood value sigma*^2 = mean (x - x_hat)^2 (the "sigma-VAE", Rybkin et al.,
  2021): then -log p(x | z, y) = D/2 log sigma*^2 + const (:func:`calibrated_gaussian_nll`).
  A fixed sigma is a hidden weight between the two terms: too large and every sample is
  the class mean (blur), too small and the KL is ignored (samples from the prior fall
  off the codes the decoder learned). The calibrated sigma needs no such weight.

Synthesis decodes z ~ N(0, I): the decoder follows the synthesize contract
``(z f32[N,latent], label i64[N]) -> image f32[N,C,S,S]``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["calibrated_gaussian_nll", "gaussian_kl", "reparameterize"]

#: the smallest sigma^2 of the calibrated decoder (log sigma >= -6.9), so a perfect
#: reconstruction of a batch cannot send the loss to -inf
MIN_VARIANCE = 1e-6


def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I): a sample of q with gradients to mu and logvar."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) in nats, summed over dimensions: f32[N]."""
    return 0.5 * (mu.square() + logvar.exp() - logvar - 1.0).sum(dim=1)


def calibrated_gaussian_nll(reconstruction: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """(-log p(x | z) per image f32[N], sigma*^2) of a Gaussian decoder whose one variance is
    its maximum-likelihood value over the batch, sigma*^2 = mean (x - x_hat)^2:

        -log p(x | z) = sum_d [(x_d - x_hat_d)^2 / (2 sigma*^2) + log sigma* + log(2 pi)/2]

    with sigma*^2 detached (a fitted statistic, as in the sigma-VAE), so the gradient of
    the first term is that of the squared error scaled by 1 / (2 sigma*^2).
    """
    squared = (reconstruction - target).square().flatten(1)  # [N, D]
    variance = squared.mean().detach().clamp_min(MIN_VARIANCE)
    d = squared.shape[1]
    constant = 0.5 * d * (variance.log() + math.log(2 * math.pi))
    return squared.sum(dim=1) / (2 * variance) + constant, variance
