"""AC-GAN (Odena et al., 2017): the discriminator gets an auxiliary classifier head.

The discriminator is unconditional; labels reach it only through the classification loss,
which both players minimize on the generated images (and D also on real ones).
"""

from __future__ import annotations

from augment import hookimpl
from augment.tasks.synthesis import ConditionalDCGAN, SynthesisParams


class ACGAN(ConditionalDCGAN):
    """Auxiliary classifier GAN on DCGAN networks."""

    name = "acgan"

    Params = SynthesisParams.with_defaults(conditioning="none", aux_weight=1.0)


@hookimpl
def augment_register_variants(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    register(ACGAN)
