"""The conditional VAE (Kingma & Welling, 2014; Sohn et al., 2015): the likelihood-based
generator the GAN literature measures against, trained without a discriminator.

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
from pydantic import Field
from torch import nn

from augment import hookimpl
from augment.nn.dcgan import ConditionalEncoder, ConditionalGenerator
from augment.nn.vae import calibrated_gaussian_nll, gaussian_kl, reparameterize
from augment.tasks.synthesis import SynthesisContract
from augment.variant import Batch, ClampedExport, LossOutput, Params, Variant


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
        p, d = self.params, self.data
        return nn.ModuleDict(
            {
                # q(z | x, y): [N, 2 * latent] = mu ++ logvar
                "encoder": ConditionalEncoder(
                    2 * p.latent_dim, d.num_classes, d.channels, d.image_size, p.width
                ),
                "decoder": ConditionalGenerator(
                    p.latent_dim, d.num_classes, d.channels, d.image_size, p.width
                ),
            }
        )

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


@hookimpl
def augment_register_variants(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    register(CVAE)
