"""StyleGAN2 (Karras et al., 2020) with ADA (Karras et al., 2020, "Training Generative
Adversarial Networks with Limited Data"), small and class-conditional.

The networks are :mod:`augment.nn.stylegan`: a mapping network from (z, class) to a style
w, a synthesis network of modulated/demodulated convolutions with noise inputs and skip
toRGB outputs, and a residual discriminator with minibatch std and StyleGAN2-ADA's
projection onto a class embedding. The recipe is the paper's: the non-saturating logistic
loss, R1 on real images, Adam (0, 0.99) with the same learning rate for both networks, an
EMA of the generator; and ADA: the discriminator sees augmented images (real and fake
alike) with a probability ``p`` that rises while its sign on real images says it is
overfitting (``ada_target``; :class:`augment.nn.diffaugment.AugmentProbability`). The
augmentations are DiffAugment's differentiable ops (translation, cutout) rather than ADA's
18-op pipeline.

Sized as the paper's own small-image configuration (CIFAR-10): a 2-layer mapping network,
no style mixing, no path length regularization; R1 every step (no lazy regularization).
R1's gamma is 1: on the default long-tailed digits (600 steps, width 16) gamma 0.05 let
the critic win (D(real) - D(fake) 2.7) and the samples lost their class and variety, 4
made them noisy; the paper's own gammas run from 0.01 (CIFAR-10) to 10 and more. The
exported model uses each layer's fixed noise map (``noise_mode='const'``): a function of
(z, label), like every synthesize model.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from torch import nn

from augment import hookimpl
from augment.nn.stylegan import StyleDiscriminator, StyleGenerator
from augment.tasks.synthesis import SynthesisParams, SynthesisVariant


class StyleGAN2Params(SynthesisParams):
    """The synthesis knobs plus the size of the style w and the depth of the mapping network."""

    style_dim: int = Field(128, ge=1, description="size of w (and of the class embeddings)")
    mapping_layers: int = Field(2, ge=1, description="layers of the mapping network (paper: 8)")


class StyleGAN2(SynthesisVariant):
    """Style-based generator (mapping + modulated convolutions), residual critic, R1, ADA."""

    name = "stylegan2"
    description = (
        "Small StyleGAN2 (Karras et al., 2020): mapping network, modulated convs, noise, "
        "residual critic, R1; ADA's adaptive augmentation."
    )
    # the networks fix these: equalized lr instead of spectral norm, no norm layer in the
    # critic, minibatch std always on, a projection output, no class head, no fading
    unsupported: ClassVar[frozenset[str]] = frozenset(
        {"spectral_norm", "d_norm", "minibatch_std", "conditioning", "aux_weight", "transition"}
    )
    Params = StyleGAN2Params.with_defaults(
        loss="ns",
        r1=1.0,
        d_norm="none",
        conditioning="projection",
        lr_g=2.5e-3,
        lr_d=2.5e-3,
        betas=(0.0, 0.99),
        diffaugment="translation,cutout",
        ada_target=0.6,
    )
    params: StyleGAN2Params

    def build_generator(self) -> nn.Module:
        p, d = self.params, self.data
        return StyleGenerator(
            p.latent_dim,
            d.num_classes,
            d.channels,
            d.image_size,
            p.width,
            style_dim=p.style_dim,
            mapping_layers=p.mapping_layers,
        )

    def build_discriminator(self) -> nn.Module:
        p, d = self.params, self.data
        return StyleDiscriminator(
            d.num_classes, d.channels, d.image_size, p.width, cmap_dim=p.style_dim
        )


@hookimpl
def augment_register_variants(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    register(StyleGAN2)
