"""AC-GAN (Odena et al., 2017): the discriminator gets an auxiliary classifier head.

The discriminator is unconditional; labels reach it only through the classification loss,
which both players minimize on the generated images (and D also on real ones).
"""

from __future__ import annotations

from torch import nn

from augment.hookspecs import hookimpl
from augment.nn.dcgan import ConditionalDiscriminator, ConditionalGenerator
from augment.variant import SynthesisParams, SynthesisVariant


class ACGAN(SynthesisVariant):
    """Auxiliary classifier GAN on DCGAN networks."""

    name = "acgan"

    Params = SynthesisParams.with_defaults(conditioning="none", aux_weight=1.0)

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
            auxiliary_classifier=True,
        )


@hookimpl
def augment_register_variants(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    register(ACGAN)
