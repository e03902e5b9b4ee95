"""A small BigGAN (Brock et al., 2019): residual networks, class-conditional batch norm
from a shared class embedding and hierarchical z, spectral norm in both networks, a
projection discriminator, hinge loss and an EMA of the generator.

The networks are :mod:`augment.nn.resnet_gan`, put together by
:class:`augment.tasks.synthesis.ResidualGAN`; the adversarial recipe (hinge, LeCam,
DiffAugment/ADA, mode seeking, transitional conditioning) is the synthesis family's
:class:`augment.tasks.synthesis.SynthesisVariant`. Sized for a CPU: ``width`` 32 gives
128/64/32 generator channels at 7/14/28 px. Left out of the paper: self-attention (the
``sagan`` plugin has it), orthogonal regularization and the truncation trick (samples are
drawn with z ~ N(0, I)).
"""

from __future__ import annotations

from augment import hookimpl
from augment.tasks.synthesis import ResidualGAN, ResidualParams


class BigGAN(ResidualGAN):
    """Residual class-conditional GAN with shared conditional batch norm."""

    name = "biggan"
    description = (
        "Small BigGAN (Brock et al., 2019): residual networks, shared class-conditional "
        "batch norm, projection critic."
    )

    Params = ResidualParams.with_defaults(
        loss="hinge",
        conditioning="projection",
        spectral_norm=True,
        d_norm="none",
        betas=(0.0, 0.999),
        mode_seeking=0.2,
    )
    params: ResidualParams


@hookimpl
def augment_register_variants(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    register(BigGAN)
