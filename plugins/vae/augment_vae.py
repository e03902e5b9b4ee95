"""The conditional VAE (Kingma & Welling, 2014; Sohn et al., 2015): the likelihood-based
generator the GAN literature measures against, trained without a discriminator; and the
VAE-GAN (Larsen et al., 2016), the same VAE with its reconstruction measured in a
critic's features and its decoder trained as that critic's generator (``vaegan``).

An encoder q(z | x, y) (DCGAN's discriminator body with one-hot class maps) and a decoder
p(x | z, y) that is the conditional DCGAN generator of ``cgan`` and ``sngan``, so the two
families differ only in how the same network is trained. The loss is the negative ELBO
with a calibrated Gaussian decoder (the sigma-VAE, Rybkin et al., 2021) and a KL weight
``beta`` (Higgins et al., 2017; 1: the ELBO): see :mod:`augment.nn.vae`. Synthesis decodes
z ~ N(0, I), so the exported decoder follows the synthesize contract and works everywhere a
GAN's generator does.

What to expect: a VAE covers every class's data (no mode collapse, the highest k-NN recall
of the family at a given budget) with blurrier samples than a GAN (lower precision).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from augment import hookimpl, losses
from augment.nn.dcgan import encoder_and_decoder
from augment.nn.vae import calibrated_gaussian_nll, gaussian_kl, reparameterize
from augment.tasks.synthesis import (
    SHARED_LOSS_KNOBS,
    ConditionalDCGAN,
    SynthesisContract,
    SynthesisParams,
)
from augment.variant import Batch, ClampedExport, DataSpec, LossOutput, Params, Variant


def encoder_decoder(latent_dim: int, data: DataSpec, width: int) -> nn.ModuleDict:
    """The VAE's networks: ``encoder`` q(z | x, y) -> [N, 2 latent] (mu ++ logvar) and
    ``decoder`` p(x | z, y), the cgan generator."""
    d = data
    return encoder_and_decoder(
        latent_dim, 2 * latent_dim, d.num_classes, d.channels, d.image_size, width
    )


class CVAEParams(Params):
    """Size of the latent and of the networks, and the KL weight."""

    latent_dim: int = Field(32, ge=1)
    width: int = Field(32, ge=8, description="channels of the encoder's first block")
    beta: float = Field(
        1.0, gt=0, description="KL weight (beta-VAE, Higgins et al., 2017); 1: the ELBO"
    )


class CVAE(SynthesisContract, Variant):
    """Conditional VAE: ``generator`` holds the encoder and the decoder; the decoder is exported."""

    name = "cvae"
    description = (
        "Conditional VAE (Kingma & Welling, 2014): encoder + the cgan generator as decoder, "
        "calibrated Gaussian likelihood; no discriminator."
    )
    # no adversary: nothing reads the discriminator's learning rate or step count
    unsupported: ClassVar[frozenset[str]] = frozenset({"lr_d", "d_steps"})
    Params = CVAEParams.with_defaults(lr_g=1e-3, betas=(0.9, 0.999))
    params: CVAEParams

    def build_generator(self) -> nn.Module:
        return encoder_decoder(self.params.latent_dim, self.data, self.params.width)

    def build_discriminator(self) -> None:
        return None

    def discriminator_loss(self, batch: Batch) -> LossOutput:
        raise RuntimeError("the conditional VAE has no discriminator to train")

    def generator_loss(self, batch: Batch) -> LossOutput:
        image, label = batch["image"], batch["label"]
        mu, logvar = self.generator["encoder"](image, label).chunk(2, dim=1)  # [N, latent] each
        reconstruction = self.generator["decoder"](reparameterize(mu, logvar), label)
        nll, variance = calibrated_gaussian_nll(reconstruction, image)  # [N]
        kl = gaussian_kl(mu, logvar)  # [N]
        # per value of the image, so the loss reads the same at any image size
        values = image[0].numel()
        loss = (nll + self.params.beta * kl).mean() / values
        logs = {
            "nll": nll.mean().item() / values,
            "kl": kl.mean().item(),  # nats per image
            "sigma": float(torch.sqrt(variance)),  # the decoder's calibrated std
        }
        return LossOutput(loss, logs)

    def export_module(self, generator: nn.Module) -> nn.Module:
        return ClampedExport(generator["decoder"])


class VAEGANParams(SynthesisParams):
    """The synthesis knobs (those of its critic) plus the KL weight and the weight of the
    feature-space reconstruction against the adversarial term."""

    latent_dim: int = Field(32, ge=1)
    beta: float = Field(1.0, gt=0, description="KL weight (beta-VAE); 1: the ELBO's")
    feature_weight: float = Field(
        1.0, gt=0, description="gamma: the learned-similarity reconstruction term's weight"
    )

    @model_validator(mode="after")
    def _paired_losses(self) -> VAEGANParams:
        # relativistic losses pair each real logit with one fake; the critic sees 2 fakes each
        if self.loss in losses.RELATIVISTIC:
            raise ValueError(f"loss {self.loss!r}: vaegan's critic sees two fakes per real image")
        return self


class VAEGAN(ConditionalDCGAN):
    """VAE-GAN (Larsen et al., 2016): the conditional VAE whose reconstruction is measured
    in the critic's features, and whose decoder is also the GAN's generator.

    Networks: the cvae's encoder q(z | x, y) and decoder (the cgan generator), the sngan
    critic (projection, spectral norm, hinge). With h(x) the critic's features
    f32[N, F] (the layer before its heads; the paper takes a middle layer),

    * critic: real x against two kinds of fakes, reconstructions x~ = Dec(z ~ q(z | x))
      and prior samples x_p = Dec(z_p ~ N(0, I));
    * encoder + decoder: ``(-log N(h(x); h(x~), sigma*^2 I) + beta KL(q || N(0, I))) / F``
      (the Gaussian observation model on features, with the calibrated sigma of the cvae
      so the two terms need no weight between them) ``* feature_weight`` plus the
      generator's adversarial loss on x~ and x_p.

    Element-wise pixel losses make a VAE blur (every plausible image averaged); measuring
    the reconstruction in features the critic learned to tell real from fake keeps what
    the critic finds salient and lets the adversarial term sharpen the rest. One optimizer
    updates the encoder and decoder together (the loop's generator step), so the encoder
    also sees the adversarial gradient through x~; the paper keeps it out.
    """

    name = "vaegan"
    description = (
        "VAE-GAN (Larsen et al., 2016): the cvae's encoder and decoder with the reconstruction "
        "measured in an sngan critic's features; the decoder is the generator and is exported."
    )
    # its own losses: the shared recipe's penalties, heads and augmentation would not be used
    unsupported: ClassVar[frozenset[str]] = SHARED_LOSS_KNOBS | {"diffaugment", "mode_seeking"}
    Params = VAEGANParams.with_defaults(
        loss="hinge", spectral_norm=True, d_norm="none", conditioning="projection"
    )
    params: VAEGANParams

    def build_generator(self) -> nn.Module:
        return encoder_decoder(self.params.latent_dim, self.data, self.params.width)

    def fakes(self, image: Tensor, label: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(x~, x_p, mu, logvar): reconstructions of ``image`` and prior samples, same labels."""
        mu, logvar = self.generator["encoder"](image, label).chunk(2, dim=1)  # [N, latent] each
        decoder = self.generator["decoder"]
        reconstruction = decoder(reparameterize(mu, logvar), label)
        prior = decoder(torch.randn_like(mu), label)
        return reconstruction, prior, mu, logvar

    def discriminator_loss(self, batch: Batch) -> LossOutput:
        image, label = batch["image"], batch["label"]
        with torch.no_grad():
            reconstruction, prior, _, _ = self.fakes(image, label)
        real = self.discriminator(image, label).logits
        fake = self.discriminator(torch.cat([reconstruction, prior]), label.repeat(2)).logits
        loss = losses.discriminator_loss(self.params.loss, real, fake)
        logs = {"d_real": real.mean().item(), "d_fake": fake.mean().item()}
        return LossOutput(loss, logs)

    def generator_loss(self, batch: Batch) -> LossOutput:
        p, critic = self.params, self.discriminator
        image, label = batch["image"], batch["label"]
        reconstruction, prior, mu, logvar = self.fakes(image, label)
        with torch.no_grad():
            target = critic.features_of(image, label)  # h(x) [N, F]
        features = critic.features_of(reconstruction, label)  # h(x~) [N, F]
        nll, variance = calibrated_gaussian_nll(features, target)  # [N]
        kl = gaussian_kl(mu, logvar)  # [N]
        similarity = (nll + p.beta * kl).mean() / features.shape[1]
        fake = torch.cat([critic.score(features, label).logits, critic(prior, label).logits])
        adversarial = losses.generator_loss(p.loss, fake)
        logs = {
            "feature_nll": nll.mean().item() / features.shape[1],
            "kl": kl.mean().item(),
            "g_adv": adversarial.item(),
            "feature_sigma": float(torch.sqrt(variance)),
        }
        return LossOutput(p.feature_weight * similarity + adversarial, logs)

    def export_module(self, generator: nn.Module) -> nn.Module:
        return ClampedExport(generator["decoder"])


@hookimpl
def augment_register_variants(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    register(CVAE)
    register(VAEGAN)
