"""SAGAN (Zhang et al., 2019, "Self-Attention Generative Adversarial Networks"): the
residual class-conditional networks of :mod:`augment.nn.resnet_gan` with a self-attention
block (:mod:`augment.nn.attention`) in both the generator and the discriminator at one
middle resolution, spectral norm in both networks, hinge loss, a projection
discriminator, and the two time-scale update rule (TTUR; Heusel et al., 2017): the
discriminator learns 4x faster than the generator (4e-4 vs 1e-4, Adam betas (0, 0.9)),
one discriminator step per generator step.

Where it differs from the paper: the class-conditional batch norm takes its gains from a
class embedding shared by the blocks (BigGAN's form, :class:`augment.tasks.synthesis.
ResidualGAN`), z is split across the blocks, and an EMA of the generator is exported. The
attention sits at half the image side (14 px for 28 px images, 32 for 64): SAGAN's
ablation found the later, larger feature maps the place where attention helps most.
"""

from __future__ import annotations

from pydantic import Field

from augment import hookimpl
from augment.tasks.synthesis import ResidualGAN, ResidualParams


class SAGANParams(ResidualParams):
    """The residual synthesis knobs plus where the networks attend."""

    attention: int | None = Field(
        None, ge=2, description="feature-map side with self-attention (None: half the image side)"
    )


class SAGAN(ResidualGAN):
    """Residual class-conditional GAN with self-attention in both networks."""

    name = "sagan"
    description = (
        "SAGAN (Zhang et al., 2019): residual networks with self-attention at one middle "
        "resolution, spectral norm, hinge, projection critic, TTUR."
    )

    Params = SAGANParams.with_defaults(
        loss="hinge",
        conditioning="projection",
        spectral_norm=True,
        d_norm="none",
        lr_g=1e-4,
        lr_d=4e-4,
        betas=(0.0, 0.9),
    )
    params: SAGANParams

    def attention_side(self) -> int:
        return self.params.attention or self.data.image_size // 2


@hookimpl
def augment_register_variants(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    register(SAGAN)
