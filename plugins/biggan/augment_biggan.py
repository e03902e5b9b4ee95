"""A small BigGAN (Brock et al., 2019): residual networks, class-conditional batch norm
from a shared class embedding and hierarchical z, spectral norm in both networks, a
projection discriminator, hinge loss and an EMA of the generator.

The networks are :mod:`augment.nn.resnet_gan`; the adversarial recipe (hinge, LeCam,
DiffAugment/ADA, mode seeking, transitional conditioning) is the synthesis family's
:class:`augment.tasks.synthesis.SynthesisVariant`. Sized for a CPU: ``width`` 32 gives
128/64/32 generator channels at 7/14/28 px. Left out of the paper: self-attention,
orthogonal regularization and the truncation trick (samples are drawn with z ~ N(0, I)).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from torch import nn

from augment import hookimpl
from augment.nn.resnet_gan import ResNetDiscriminator, ResNetGenerator
from augment.tasks.synthesis import SynthesisParams, SynthesisVariant


class BigGANParams(SynthesisParams):
    """The synthesis knobs plus the size of the shared class embedding."""

    embed_dim: int = Field(32, ge=1, description="size of the class embedding shared by blocks")


class BigGAN(SynthesisVariant):
    """Residual class-conditional GAN with shared conditional batch norm."""

    name = "biggan"
    description = (
        "Small BigGAN (Brock et al., 2019): residual networks, shared class-conditional "
        "batch norm, projection critic."
    )
    # the residual discriminator has no normalization layer to choose and no minibatch std
    unsupported: ClassVar[frozenset[str]] = frozenset({"d_norm", "minibatch_std"})

    Params = BigGANParams.with_defaults(
        loss="hinge",
        conditioning="projection",
        spectral_norm=True,
        d_norm="none",
        betas=(0.0, 0.999),
        mode_seeking=0.2,
    )
    params: BigGANParams

    def build_generator(self) -> nn.Module:
        p, d = self.params, self.data
        return ResNetGenerator(
            p.latent_dim,
            d.num_classes,
            d.channels,
            d.image_size,
            p.width,
            embed_dim=p.embed_dim,
            spectral_norm=p.spectral_norm,
        )

    def build_discriminator(self) -> nn.Module:
        p, d = self.params, self.data
        return ResNetDiscriminator(
            d.num_classes,
            d.channels,
            d.image_size,
            p.width,
            conditioning=p.conditioning,
            spectral_norm=p.spectral_norm,
            auxiliary_classifier=p.aux_weight > 0,
        )


@hookimpl
def augment_register_variants(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    register(BigGAN)
