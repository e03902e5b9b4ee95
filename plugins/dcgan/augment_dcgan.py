"""The class-conditional DCGAN family: one backbone, one recipe per classic objective.

Every variant shares the networks of :mod:`augment.nn.dcgan` and the adversarial recipe of
:class:`augment.variant.SynthesisVariant`; a variant here is only its defaults, taken from
the paper that introduced it.
"""

from __future__ import annotations

from torch import nn

from augment.hookspecs import hookimpl
from augment.nn.dcgan import ConditionalDiscriminator, ConditionalGenerator
from augment.variant import SynthesisParams, SynthesisVariant


class ConditionalDCGAN(SynthesisVariant):
    """Shared networks of the family; subclasses set ``name`` and ``Params`` defaults."""

    params: SynthesisParams

    def build_generator(self) -> nn.Module:
        p, d = self.params, self.data
        return ConditionalGenerator(p.latent_dim, d.num_classes, d.channels, d.image_size, p.width)

    def build_discriminator(self) -> nn.Module:
        p, d = self.params, self.data
        return ConditionalDiscriminator(
            d.num_classes,
            d.channels,
            d.image_size,
            p.width,
            conditioning=p.conditioning,
            norm=p.d_norm,
            use_spectral_norm=p.spectral_norm,
            auxiliary_classifier=p.aux_weight > 0,
        )


class CGAN(ConditionalDCGAN):
    """Conditional GAN (Mirza & Osindero, 2014) on DCGAN networks, non-saturating loss."""

    name = "cgan"

    Params = SynthesisParams.with_defaults(loss="ns")


class WGAN(ConditionalDCGAN):
    """Wasserstein GAN with weight clipping (Arjovsky et al., 2017): RMSprop, 5 critic steps."""

    name = "wgan"

    Params = SynthesisParams.with_defaults(
        loss="wasserstein", weight_clip=0.01, optimizer="rmsprop", lr_g=5e-5, lr_d=5e-5, d_steps=5
    )


class WGANGP(ConditionalDCGAN):
    """WGAN with gradient penalty (Gulrajani et al., 2017): layer-normed critic, lambda 10."""

    name = "wgan-gp"

    Params = SynthesisParams.with_defaults(
        loss="wasserstein",
        gradient_penalty=10.0,
        d_norm="layer",
        lr_g=1e-4,
        lr_d=1e-4,
        betas=(0.0, 0.9),
        d_steps=5,
    )


class SNGAN(ConditionalDCGAN):
    """Spectral normalization (Miyato et al., 2018), hinge loss and a projection discriminator."""

    name = "sngan"

    Params = SynthesisParams.with_defaults(
        loss="hinge", spectral_norm=True, d_norm="none", conditioning="projection"
    )


class LSGAN(ConditionalDCGAN):
    """Least-squares GAN (Mao et al., 2017)."""

    name = "lsgan"

    Params = SynthesisParams.with_defaults(loss="lsgan")


class HingeGAN(ConditionalDCGAN):
    """Hinge loss (Lim & Ye, 2017) with a projection discriminator, no spectral norm."""

    name = "hinge"

    Params = SynthesisParams.with_defaults(loss="hinge", conditioning="projection")


class RaGAN(ConditionalDCGAN):
    """Relativistic average GAN (Jolicoeur-Martineau, 2019)."""

    name = "ragan"

    Params = SynthesisParams.with_defaults(loss="ragan")


VARIANTS: tuple[type[ConditionalDCGAN], ...] = (CGAN, WGAN, WGANGP, SNGAN, LSGAN, HingeGAN, RaGAN)


@hookimpl
def augment_register_variants(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    for variant in VARIANTS:
        register(variant)


__all__ = ["ConditionalDCGAN", "VARIANTS", "augment_register_variants"]
