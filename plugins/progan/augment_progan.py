"""ProGAN (Karras et al., 2018): progressive growing with fade-in, equalized learning rate,
pixel-wise normalization and minibatch standard deviation, trained with WGAN-GP; made
class-conditional (a class embedding beside z, a projection critic).

The networks (:mod:`augment.nn.progan`) always exchange full-size images; which level they
run and how far the newest level is faded in is the ``growth`` buffer, set here from the
step alone (:func:`augment.nn.progan.growth_at`: the run cut into one equal span per level,
the first ``fade`` of each new span blending it in). A run killed mid-growth therefore
resumes exactly where it was, and the export (after the last step: every level, alpha 1)
is an ordinary synthesize model. The adversarial losses, the gradient penalty, EMA, mode
seeking and DiffAugment are the synthesis family's (:class:`SynthesisVariant`).

Left out of the paper: the drift term 0.001 E[D(x)^2] (the critic's output stays bounded
here through the gradient penalty alone) and the learning-rate and minibatch schedules
per resolution (one schedule for the run).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from torch import nn

from augment import hookimpl
from augment.nn.progan import ProgressiveDiscriminator, ProgressiveGenerator, growth_at
from augment.tasks.synthesis import SynthesisParams, SynthesisVariant


class ProGANParams(SynthesisParams):
    """The synthesis knobs plus the share of each new level's span spent fading it in."""

    fade: float = Field(
        0.5, ge=0, le=1, description="fraction of each new level's steps that blends it in"
    )


class ProGAN(SynthesisVariant):
    """Progressive growing of the generator and critic, base side to full side."""

    name = "progan"
    description = (
        "ProGAN (Karras et al., 2018): progressive growing with fade-in, equalized lr, pixel "
        "norm, minibatch std, WGAN-GP; class-conditional; resumes mid-growth."
    )
    # the networks fix these: equalized lr instead of spectral norm, no norm layer in the
    # critic, minibatch std always on, projection conditioning, no class head or fading
    unsupported: ClassVar[frozenset[str]] = frozenset(
        {"spectral_norm", "d_norm", "minibatch_std", "conditioning", "aux_weight", "transition"}
    )
    Params = ProGANParams.with_defaults(
        loss="wasserstein",
        gradient_penalty=10.0,
        d_norm="none",
        conditioning="projection",
        lr_g=1e-3,
        lr_d=1e-3,
        betas=(0.0, 0.99),
    )
    params: ProGANParams

    def build_generator(self) -> nn.Module:
        p, d = self.params, self.data
        return ProgressiveGenerator(p.latent_dim, d.num_classes, d.channels, d.image_size, p.width)

    def build_discriminator(self) -> nn.Module:
        d = self.data
        return ProgressiveDiscriminator(d.num_classes, d.channels, d.image_size, self.params.width)

    def at_step(self, step: int, steps: int) -> None:
        level, alpha = growth_at((step + 1) / steps, self.generator.levels, self.params.fade)
        self.generator.grow(level, alpha)
        self.discriminator.grow(level, alpha)


@hookimpl
def augment_register_variants(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    register(ProGAN)
