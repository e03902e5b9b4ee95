"""The class-conditional DCGAN family: one backbone, one recipe per classic objective.

Every variant shares the networks of :mod:`augment.nn.dcgan` and the adversarial recipe of
:class:`augment.tasks.synthesis.SynthesisVariant`; a variant here is only its defaults, taken from
the paper that introduced it.
"""

from __future__ import annotations

from augment import hookimpl
from augment.tasks.synthesis import ConditionalDCGAN, SynthesisParams


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


__all__ = ["VARIANTS", "augment_register_variants"]
