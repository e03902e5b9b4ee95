"""BiGAN (Donahue et al., 2017) and ALI (Dumoulin et al., 2017): a generator and an encoder
trained together against one critic of (image, code) pairs, so the encoder learns to
invert the generator and real images can be mapped to the codes that make them.

Three networks, all class-conditional:

* the generator G(z, y) -> x, cgan's conditional DCGAN generator;
* the encoder E(x, y) -> z, DCGAN's discriminator body with one-hot class maps
  (:class:`augment.nn.dcgan.ConditionalEncoder`); deterministic in BiGAN, a Gaussian
  q(z | x, y) = N(mu, diag sigma^2) sampled by reparameterization in ALI (``stochastic_
  encoder``; the exported encoder returns mu);
* the joint critic D(x, z, y) (:class:`JointCritic`), which tells real pairs (x, E(x, y))
  from generated ones (G(z, y), z).

With s = D's logits, the critic minimizes the task's adversarial loss with real pairs as
"real" and generated pairs as "fake"; generator and encoder, one module for the loop's
generator step, play the same game with the roles swapped:

    L_D  = l(s(x, E(x)), s(G(z), z))          l = losses.discriminator_loss
    L_GE = l(s(G(z), z), s(x, E(x)))

At the optimum the two joint distributions p(x) q(z | x) and p(z) p(x | z) are equal, so E
inverts G (E = G^-1 almost everywhere; BiGAN's Theorem 2). The loss must treat real and
fake symmetrically for the swap to be the same game (``ns``, ``hinge``). BigBiGAN's unary
scores (Donahue & Simonyan, 2019; ``unary_scores``) add s_x(x) and s_z(z) beside the joint
s_xz, each with its own loss term: s_x is an ordinary image critic, which sharpens G's
samples, and s_z pulls the encoder's codes towards the prior that G is sampled from.

The critic is spectrally normalized with the hinge loss by default (a modern joint
critic, as in BigBiGAN); the papers used batch norm, dropout and the non-saturating loss.

Within a CPU budget the adversarial game alone does not make E invert G. Measured on 1000
MNIST digits, 1500 steps, width 16: the class-conditional G ignores z (the spread of its
samples over z is 0.04 against the data's 0.33, conditional mode collapse) until
``mode_seeking`` (MSGAN, as sngan's recipe) is on; then G(E(x)) is still no nearer x than
G of a random z (pixel error ratio 1.09). Two optional cycle terms, added to the
generator-and-encoder step, close that gap:

    reconstruction     * mean |G(E(x, y), y) - x|            on real x  (ALICE's explicit
                                                                      cycle, Li et al., 2017)
    latent_regression  * mean (E(G(z, y), y) - z)^2          on G's samples (BiGAN's
                                                                      "latent regressor")

Each alone: error ratio 0.87 and 0.51; together 0.30, and G(E(x)) is nearer x than any
other image of its class for 77% of the digits (1% without). params.yaml's recipes turn
them on; the paper defaults leave them at 0.

Exported: the generator, as every synthesize model, and the encoder (``encoder_module``)
as an ``encode`` model beside it (``models/encoders/<v>/encoder.onnx``). The synthesize
stage's ``interpolate`` list turns the encoder into synthetic images near the real ones
of each class: ``z`` on the segment between the codes of two real images of the class
(:class:`augment.latent_codes.InterpolatedStream`, the DeepSMOTE idea in a GAN's latent).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from augment import hookimpl, losses
from augment.nn.dcgan import dcgan_init, downsampling_stack, encoder_and_decoder, spatial_plan
from augment.nn.vae import reparameterize
from augment.tasks.synthesis import (
    SHARED_LOSS_KNOBS,
    ConditionalDCGAN,
    SynthesisParams,
    generated_for,
    with_mode_seeking,
)
from augment.variant import Batch, ClampedExport, LossOutput

SYMMETRIC_LOSSES = ("ns", "hinge")


class BiGANParams(SynthesisParams):
    """The synthesis knobs the joint critic reads, plus the encoder's kind and BigBiGAN's
    unary scores."""

    stochastic_encoder: bool = Field(
        False, description="ALI's Gaussian q(z | x, y) (reparameterized) instead of BiGAN's E(x, y)"
    )
    unary_scores: bool = Field(
        True, description="BigBiGAN's s_x and s_z beside the joint score s_xz"
    )
    latent_width: int = Field(256, ge=8, description="width of the critic's z branch")
    reconstruction: float = Field(
        0.0, ge=0, description="ALICE's cycle term: weight of |G(E(x, y), y) - x| on real images"
    )
    latent_regression: float = Field(
        0.0, ge=0, description="weight of |E(G(z, y), y) - z|^2 (the latent regressor's term)"
    )

    @model_validator(mode="after")
    def _symmetric_loss(self) -> BiGANParams:
        if self.loss not in SYMMETRIC_LOSSES:
            raise ValueError(
                f"loss {self.loss!r}: the encoder plays the critic's game with real and fake "
                f"swapped, which needs a symmetric loss ({', '.join(SYMMETRIC_LOSSES)})"
            )
        return self


class JointCritic(nn.Module):
    """D(x, z, y) -> scores f32[N, S]: column 0 the joint score s_xz, then (with ``unary``)
    s_x and s_z.

    x f32[N,C,S,S] -> DCGAN's body (spectral norm, no norm layer) -> h_x f32[N, F];
    z f32[N, latent] -> 2 x (linear ``width``, LeakyReLU 0.2) -> h_z f32[N, width];
    [h_x, h_z] -> linear ``width``, LeakyReLU -> h f32[N, width]. Each score is
    ``psi(h) + <e_y, h>``: an unconditional linear term plus the class projection
    (Miyato & Koyama, 2018) of its own features (h, h_x or h_z).
    """

    def __init__(
        self,
        num_classes: int,
        channels: int,
        image_size: int,
        latent_dim: int,
        width: int,
        latent_width: int,
        unary: bool,
        use_spectral_norm: bool = True,
    ) -> None:
        super().__init__()
        base, doublings = spatial_plan(image_size)
        sn = spectral_norm if use_spectral_norm else (lambda m: m)
        body = downsampling_stack(channels, width, doublings, "none", use_spectral_norm)
        self.image = nn.Sequential(*body, nn.Flatten())  # -> [N, F]
        image_dim = width * 2 ** (doublings - 1) * base * base
        self.latent = nn.Sequential(
            sn(nn.Linear(latent_dim, latent_width)),
            nn.LeakyReLU(0.2),
            sn(nn.Linear(latent_width, latent_width)),
            nn.LeakyReLU(0.2),
        )
        self.joint = nn.Sequential(
            sn(nn.Linear(image_dim + latent_width, latent_width)), nn.LeakyReLU(0.2)
        )
        dims = [latent_width, image_dim, latent_width] if unary else [latent_width]
        self.heads = nn.ModuleList(sn(nn.Linear(d, 1)) for d in dims)
        self.projections = nn.ModuleList(sn(nn.Embedding(num_classes, d)) for d in dims)
        dcgan_init(self)

    def forward(self, image: Tensor, z: Tensor, label: Tensor) -> Tensor:
        h_x, h_z = self.image(image), self.latent(z)
        h = self.joint(torch.cat([h_x, h_z], dim=1))
        features = [h, h_x, h_z][: len(self.heads)]
        scores = [
            head(f).squeeze(1) + (projection(label) * f).sum(dim=1)
            for f, head, projection in zip(features, self.heads, self.projections, strict=True)
        ]
        return torch.stack(scores, dim=1)  # [N, S]


class EncoderMean(nn.Module):
    """ALI's exported encoder: the mean mu of q(z | x, y) (the first half of its output)."""

    def __init__(self, encoder: nn.Module, latent_dim: int) -> None:
        super().__init__()
        self.encoder, self.latent_dim = encoder, latent_dim

    def forward(self, image: Tensor, label: Tensor) -> Tensor:
        return self.encoder(image, label)[:, : self.latent_dim]


class BiGAN(ConditionalDCGAN):
    """BiGAN: ``generator`` holds the generator (``decoder``) and the ``encoder`` (one
    optimizer, one EMA)."""

    name = "bigan"
    description = (
        "BiGAN (Donahue et al., 2017): generator + encoder against a joint critic of (image, "
        "code) pairs; the encoder is exported too, for synthesis between real images' codes."
    )
    # the joint critic's own losses: the image critic's penalties, heads and options do not apply
    unsupported: ClassVar[frozenset[str]] = SHARED_LOSS_KNOBS | {
        "diffaugment",
        "minibatch_std",
        "conditioning",
        "d_norm",
    }
    Params = BiGANParams.with_defaults(
        loss="hinge", spectral_norm=True, conditioning="projection", d_norm="none"
    )
    params: BiGANParams

    def build_generator(self) -> nn.Module:
        p, d = self.params, self.data
        codes = 2 * p.latent_dim if p.stochastic_encoder else p.latent_dim  # ALI: mu ++ logvar
        return encoder_and_decoder(
            p.latent_dim, codes, d.num_classes, d.channels, d.image_size, p.width
        )

    def build_discriminator(self) -> nn.Module:
        p, d = self.params, self.data
        return JointCritic(
            d.num_classes,
            d.channels,
            d.image_size,
            p.latent_dim,
            p.width,
            p.latent_width,
            p.unary_scores,
            p.spectral_norm,
        )

    def encoded(self, image: Tensor, label: Tensor) -> Tensor:
        """E(x, y) f32[N, latent]: BiGAN's code, or a sample of ALI's q(z | x, y)."""
        code = self.generator["encoder"](image, label)
        if self.params.stochastic_encoder:
            return reparameterize(*code.chunk(2, dim=1))
        return code

    def pairs(
        self, batch: Batch, critic_step: bool
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """(real scores, fake scores, fake images, z, y'): the critic's scores f32[N, S] of the
        real pairs (x, E(x, y)) and of the generated pairs (G(z, y'), z), z ~ N(0, I) with
        y' the batch's labels (the first half's twice with mode seeking: MSGAN's pairs,
        :func:`generated_for`); in the critic's step without gradients to G and E."""
        p, image, label = self.params, batch["image"], batch["label"]
        with torch.set_grad_enabled(torch.is_grad_enabled() and not critic_step):
            fake, z, fake_label = generated_for(
                self.generator["decoder"], label, p.latent_dim, p.mode_seeking
            )
            code = self.encoded(image, label)
        real_scores = self.discriminator(image, code, label)
        return real_scores, self.discriminator(fake, z, fake_label), fake, z, fake_label

    def adversarial(self, real: Tensor, fake: Tensor) -> Tensor:
        """The loss summed over the score columns (s_xz, and s_x, s_z with unary scores)."""
        terms = [
            losses.discriminator_loss(self.params.loss, real[:, s], fake[:, s])
            for s in range(real.shape[1])
        ]
        return torch.stack(terms).sum()

    def discriminator_loss(self, batch: Batch) -> LossOutput:
        real, fake, *_ = self.pairs(batch, critic_step=True)
        logs = {"d_real": real[:, 0].mean().item(), "d_fake": fake[:, 0].mean().item()}
        return LossOutput(self.adversarial(real, fake), logs)

    def generator_loss(self, batch: Batch) -> LossOutput:
        p, image, label = self.params, batch["image"], batch["label"]
        real, fake, images, z, fake_label = self.pairs(batch, critic_step=False)
        adversarial = self.adversarial(fake, real)  # the same game, real and fake swapped
        loss, logs = adversarial, {"ge_adv": adversarial.item()}
        if p.reconstruction > 0:  # ALICE (Li et al., 2017): mean |G(E(x, y), y) - x| per value
            network = self.generator
            cycle = (network["decoder"](self.encoded(image, label), label) - image).abs().mean()
            loss, logs["x_cycle"] = loss + p.reconstruction * cycle, cycle.item()
        if p.latent_regression > 0:  # mean over N of |E(G(z, y'), y') - z|^2 / latent_dim
            regressed = self.encoded(images, fake_label)
            error = (regressed - z).square().mean()
            loss, logs["z_cycle"] = loss + p.latent_regression * error, error.item()
        return with_mode_seeking(LossOutput(loss, logs), images, z, p.mode_seeking)

    def sample(self, labels: Tensor) -> Tensor:
        z = torch.randn(labels.shape[0], self.params.latent_dim, device=labels.device)
        return self.generator["decoder"](z, labels)

    def export_module(self, generator: nn.Module) -> nn.Module:
        return ClampedExport(generator["decoder"])

    def encoder_module(self, generator: nn.Module) -> nn.Module:
        encoder = generator["encoder"]
        if self.params.stochastic_encoder:
            return EncoderMean(encoder, self.params.latent_dim)
        return encoder


class ALI(BiGAN):
    """ALI: BiGAN with a stochastic encoder (its mean is exported)."""

    name = "ali"
    description = (
        "ALI (Dumoulin et al., 2017): BiGAN with a Gaussian encoder q(z | x, y), sampled by "
        "reparameterization; its mean is exported as the encoder."
    )
    Params = BiGAN.Params.with_defaults(stochastic_encoder=True)


@hookimpl
def augment_register_variants(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    register(BiGAN)
    register(ALI)
