"""LAPGAN (Denton et al., 2015, "Deep Generative Image Models using a Laplacian Pyramid of
Adversarial Networks"), class-conditional: one conditional GAN per level of a Laplacian
pyramid, coarse to fine, exported as one graph.

The pyramid of an image I of side S = b 2^L (28 px: b = 7, L = 2), with d(.) a 2x2
average pooling and u(.) a bilinear x2 upsampling:

    I_L = I,   I_{k-1} = d(I_k),   h_k = I_k - u(I_{k-1})   (the band-pass of level k)

so that I_k = u(I_{k-1}) + h_k exactly, and I = u(...u(I_0)...) + the band-passes.

One conditional GAN per level (y the class, K classes, C channels, s_k = b 2^k):

* level 0: G_0(z_0, y) -> I_0 [N, C, b, b], an MLP (:class:`CoarseGenerator`); its critic
  D_0(I_0, y) an MLP with a class projection (:class:`CoarseCritic`);
* level k >= 1: G_k(u(I_{k-1}), z_k, y) -> h_k [N, C, s_k, s_k], a 3-layer convnet whose
  input is the upsampled coarse image, one noise plane and K one-hot class maps
  (:class:`BandPassGenerator`); its critic D_k sees (u(I_{k-1}), h_k) stacked as 2C
  channels, the low-pass image being its condition, through the cgan critic's body with a
  class projection (:class:`augment.nn.dcgan.ConditionalDiscriminator`).

Training, as in the paper: every level learns from the *real* pyramid (G_k refines the real
coarse image u(I_{k-1}) of the batch), so the levels are independent games; they train side
by side in one loop step (disjoint parameters, the levels' losses summed).

Sampling, the exported graph: the chain from generated images,

    I_0 = G_0(z_0, y),   I_k = u(I_{k-1}) + G_k(u(I_{k-1}), z_k, y),   image = I_L.

The contract's one z [N, latent_dim] is split: its last L * ``noise_dim`` entries are the
refinement levels' z_k (``noise_dim`` each), each mapped to its noise plane [N, 1, s_k, s_k]
by a learned linear layer (the paper drew the plane itself; the contract has one vector);
the rest is z_0.

Changed from the paper: the critics use spectral norm and the hinge loss (the paper's were
trained with dropout and the original loss), the class enters as one-hot maps and a
projection rather than a "conditioning vector", and the pyramid filters are average pooling
and bilinear upsampling rather than Gaussian ones.

Mode seeking (MSGAN, Mao et al., 2019; ``mode_seeking`` > 0), not in the paper: one term a
level, on pairs that share the class and the real u(I_{k-1}) and differ in z_k, measured on
what that level generates (I_0, or h_k), so a level that ignores its own noise pays for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from augment import hookimpl, losses
from augment.nn.dcgan import DiscriminatorOutput, spatial_plan, with_class_maps
from augment.tasks.synthesis import (
    STAGED_UNSUPPORTED,
    SynthesisParams,
    SynthesisVariant,
    paired,
    projection_critic,
    summed_games,
    with_games_mode_seeking,
)
from augment.variant import Batch, LossOutput


def up2(x: Tensor) -> Tensor:
    """u(.): [N, C, s, s] -> [N, C, 2s, 2s], bilinear."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def gaussian_pyramid(image: Tensor, levels: int) -> list[Tensor]:
    """[I_0, ..., I_L] of ``image`` = I_L [N, C, S, S]: each level the 2x2 average pooling
    of the next, I_k of side S / 2^(L-k)."""
    pyramid = [image]
    for _ in range(levels):
        pyramid.insert(0, F.avg_pool2d(pyramid[0], 2))
    return pyramid


class CoarseGenerator(nn.Module):
    """(z_0 f32[N,Z_0], label i64[N]) -> I_0 f32[N,C,b,b] in (-1, 1): [z_0, e_y] through
    two hidden layers (batch norm, ReLU) and a tanh output."""

    def __init__(self, z_dim: int, num_classes: int, channels: int, base: int, hidden: int):
        super().__init__()
        self.shape = (channels, base, base)
        self.embed = nn.Embedding(num_classes, z_dim)
        self.net = nn.Sequential(
            nn.Linear(2 * z_dim, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, channels * base * base),
            nn.Tanh(),
        )

    def forward(self, z: Tensor, label: Tensor) -> Tensor:
        return self.net(torch.cat([z, self.embed(label)], dim=1)).view(-1, *self.shape)


class BandPassGenerator(nn.Module):
    """(low f32[N,C,s,s] = u(I_{k-1}), z_k f32[N,noise_dim], label i64[N]) -> h_k
    f32[N,C,s,s]: [low, noise plane, K class maps] through 3x3 convs (batch norm, ReLU),
    the last one linear (a band-pass is signed)."""

    def __init__(self, noise_dim: int, num_classes: int, channels: int, side: int, width: int):
        super().__init__()
        self.side, self.num_classes = side, num_classes
        self.noise = nn.Linear(noise_dim, side * side)  # z_k -> its plane [N, 1, s, s]
        self.net = nn.Sequential(
            nn.Conv2d(channels + 1 + num_classes, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, channels, 3, padding=1),
        )

    def forward(self, low: Tensor, z: Tensor, label: Tensor) -> Tensor:
        plane = self.noise(z).view(-1, 1, self.side, self.side)
        return self.net(with_class_maps(torch.cat([low, plane], dim=1), label, self.num_classes))


class LaplacianGenerator(nn.Module):
    """(z f32[N,latent_dim], label i64[N]) -> image f32[N,C,S,S]: G_0, then each G_k adds
    its band-pass to the upsampled image (module docstring)."""

    def __init__(
        self,
        latent_dim: int,
        num_classes: int,
        channels: int,
        image_size: int,
        width: int,
        noise_dim: int,
    ) -> None:
        super().__init__()
        base, levels = spatial_plan(image_size)
        self.coarse_dim = latent_dim - levels * noise_dim
        if self.coarse_dim < 1:
            raise ValueError(
                f"latent_dim {latent_dim} leaves no z for the coarsest level: {levels} "
                f"refinement levels take noise_dim {noise_dim} each (raise latent_dim)"
            )
        self.noise_dim = noise_dim
        self.coarse = CoarseGenerator(self.coarse_dim, num_classes, channels, base, 8 * width)
        self.refiners = nn.ModuleList(
            BandPassGenerator(noise_dim, num_classes, channels, base * 2**k, width)
            for k in range(1, levels + 1)
        )

    def split(self, z: Tensor) -> list[Tensor]:
        """[z_0, z_1, ..., z_L]: z's first entries for level 0, then ``noise_dim`` a level."""
        sizes = [self.coarse_dim] + [self.noise_dim] * len(self.refiners)
        return list(torch.split(z, sizes, dim=1))

    def forward(self, z: Tensor, label: Tensor) -> Tensor:
        codes = self.split(z)
        image = self.coarse(codes[0], label)  # I_0
        for refine, code in zip(self.refiners, codes[1:], strict=True):
            low = up2(image)
            image = low + refine(low, code, label)  # I_k = u(I_{k-1}) + h_k
        return image


class CoarseCritic(nn.Module):
    """(I_0 f32[N,C,b,b], label i64[N]) -> DiscriminatorOutput: an MLP (spectral norm,
    LeakyReLU) to features h [N, F], then ``psi(h) + <e_y, h>`` (projection)."""

    def __init__(self, num_classes: int, channels: int, base: int, hidden: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Flatten(),
            spectral_norm(nn.Linear(channels * base * base, hidden)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Linear(hidden, hidden)),
            nn.LeakyReLU(0.2),
        )
        self.adversarial = spectral_norm(nn.Linear(hidden, 1))
        self.projection = spectral_norm(nn.Embedding(num_classes, hidden))

    def forward(self, image: Tensor, label: Tensor) -> DiscriminatorOutput:
        h = self.features(image)
        logits = self.adversarial(h).squeeze(1) + (self.projection(label) * h).sum(dim=1)
        return DiscriminatorOutput(logits, None)


class LAPGANParams(SynthesisParams):
    """The synthesis knobs plus the share of z each refinement level's noise plane takes."""

    noise_dim: int = Field(8, ge=1, description="entries of z per refinement level's noise")


class LAPGAN(SynthesisVariant):
    """A Laplacian pyramid of class-conditional GANs, each level trained on the real one."""

    name = "lapgan"
    description = (
        "LAPGAN (Denton et al., 2015): a Laplacian pyramid of conditional generators, "
        "coarse to fine, one critic per level; exported as one graph."
    )
    unsupported: ClassVar[frozenset[str]] = STAGED_UNSUPPORTED  # its own per-level games
    Params = LAPGANParams.with_defaults(loss="hinge", betas=(0.0, 0.999))
    params: LAPGANParams

    def build_generator(self) -> nn.Module:
        p, d = self.params, self.data
        return LaplacianGenerator(
            p.latent_dim, d.num_classes, d.channels, d.image_size, p.width, p.noise_dim
        )

    def build_discriminator(self) -> nn.Module:
        p, d = self.params, self.data
        base, levels = spatial_plan(d.image_size)
        # D_k reads (u(I_{k-1}), h_k) stacked: 2C channels at side b 2^k
        return nn.ModuleList(
            [CoarseCritic(d.num_classes, d.channels, base, 8 * p.width)]
            + [
                projection_critic(d.num_classes, 2 * d.channels, base * 2**k, p.width)
                for k in range(1, levels + 1)
            ]
        )

    def games(
        self, batch: Batch, train_generator: bool, z: Tensor | None = None
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """Each level's critic inputs (real, generated): (I_0, G_0(z_0)) and, for k >= 1,
        ([u(I_{k-1}), h_k], [u(I_{k-1}), G_k(u(I_{k-1}), z_k)]), from the batch's real
        pyramid and ``z`` [N, latent_dim] (fresh N(0, I) when None); the generators run
        without gradients unless ``train_generator``."""
        real, label = batch["image"], batch["label"]
        generator = self.generator
        pyramid = gaussian_pyramid(real, len(generator.refiners))
        if z is None:
            z = torch.randn(len(label), self.params.latent_dim, device=label.device)
        codes = generator.split(z)
        with torch.set_grad_enabled(train_generator):
            fake = generator.coarse(codes[0], label)
        yield pyramid[0], fake
        for k, (refine, code) in enumerate(zip(generator.refiners, codes[1:], strict=True), 1):
            low = up2(pyramid[k - 1])
            with torch.set_grad_enabled(train_generator):
                band = refine(low, code, label)
            yield torch.cat([low, pyramid[k] - low], 1), torch.cat([low, band], 1)

    def discriminator_loss(self, batch: Batch) -> LossOutput:
        label, loss = batch["label"], self.params.loss
        levels = [
            losses.discriminator_loss(loss, critic(real, label).logits, critic(fake, label).logits)
            for critic, (real, fake) in zip(
                self.discriminator, self.games(batch, train_generator=False), strict=True
            )
        ]
        return summed_games({f"level{k}": x for k, x in enumerate(levels)}, "d")

    def generator_loss(self, batch: Batch) -> LossOutput:
        """The levels' generator losses summed; with ``mode_seeking`` > 0 the batch is
        :func:`paired`, and each level pays MSGAN's term on what it generates (I_0, or the
        band-pass h_k) against its own z_k: pairs share the class and the real u(I_{k-1})."""
        p = self.params
        relativistic = p.loss in losses.RELATIVISTIC  # these compare with the real logits
        if p.mode_seeking > 0:
            batch = paired(batch)
        label = batch["label"]
        z = torch.randn(len(label), p.latent_dim, device=label.device)
        games = list(self.games(batch, train_generator=True, z=z))
        levels = [
            losses.generator_loss(
                p.loss,
                critic(fake, label).logits,
                critic(real, label).logits if relativistic else None,
            )
            for critic, (real, fake) in zip(self.discriminator, games, strict=True)
        ]
        out = summed_games({f"level{k}": x for k, x in enumerate(levels)}, "g")
        channels = self.data.channels  # a refinement level's fake: [u(I_{k-1}), h_k]
        generated = {
            f"level{k}": (fake if k == 0 else fake[:, channels:], code)
            for k, ((_, fake), code) in enumerate(zip(games, self.generator.split(z), strict=True))
        }
        return with_games_mode_seeking(out, generated, p.mode_seeking)


@hookimpl
def augment_register_variants(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    register(LAPGAN)
