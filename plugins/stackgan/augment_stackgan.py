"""StackGAN (Zhang et al., 2017, "StackGAN: Text to Photo-realistic Image Synthesis with
Stacked Generative Adversarial Networks"), conditioned on the class: two generators
stacked, a low-resolution sketch and then its refinement, each with its own critic and
its own conditioning augmentation; exported as one graph.

Shapes (N batch, C channels, K classes, S the image side, s = S / 2, D = ``ca_dim``):

* **conditioning augmentation** (CA, section 3.1): the condition embedding e_y (a learned
  class embedding, where the paper has a sentence embedding phi_t; shared by both stages)
  goes through a linear layer to (mu, log sigma^2) [N, D] and the condition is sampled,
  ``c = mu + sigma * eps``, eps ~ N(0, I), with ``kl_weight`` x KL(N(mu, sigma^2) || N(0, I))
  in the generator's loss: many conditions near each class's, a smooth condition manifold;
* **stage I** G_1(z, c_1) -> sketch [N, C, s, s]: a linear layer to [4w, b, b], then per
  doubling nearest x2, 3x3 conv, batch norm, ReLU; a 3x3 conv and tanh;
* **stage II** G_2(sketch, c_2) -> image [N, C, S, S]: the sketch encoded to [2w, s/2, s/2]
  (3x3 conv, ReLU, 4x4 stride-2 conv, batch norm, ReLU), D one-map-per-entry planes of c_2
  beside it, a 3x3 conv, two residual blocks, then up x2 twice (nearest, 3x3 conv, batch
  norm, ReLU) and a 3x3 conv with tanh (the paper's encoder/residual/upsampler form);
* **critics** D_1 on sketches (side s) and D_2 on images (side S): the cgan critic's body
  with spectral norm and a class projection (:class:`augment.nn.dcgan.
  ConditionalDiscriminator`), trained with the **matching-aware** loss (section 3.2):
  besides generated images, real images shown with a wrong class count as fake,

      L_D = l_real(D(x, y)) + (l_fake(D(G(z, c), y)) + l_fake(D(x, y'))) / 2,   y' != y.

The exported graph is the chain: the contract's z [N, latent_dim] is split into the noise
z (its first latent_dim - D entries) and eps (its last D), so a seed fixes the condition
sample too; both stages' CAs read the same eps.

Changed from the paper: the stages train side by side in one loop step (the paper trains
stage I to the end first, then stage II on top of it, frozen); stage II refines stage I's
current sketches, detached, so no gradient reaches stage I from it, as with the paper's
frozen stage I. Spectral norm and the hinge loss in the critics (the paper's: batch norm
and the original loss). The sketch is half the side (28 px: 14 -> 28) rather than a
quarter (64 -> 256), which a 28-px image cannot spare. Mode seeking (MSGAN; ``mode_seeking``
> 0), not in the paper: one term a stage, on pairs of one class that differ in z.

Captions: conditioning on a caption column (a text encoder trained here, since no
pretrained one can be downloaded) is not built: the synthesize contract has no text input,
and a manifest has no caption column to train one on; the class takes the text's place.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from augment import hookimpl, losses
from augment.nn.dcgan import dcgan_init, spatial_plan
from augment.nn.vae import gaussian_kl
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

Gaussian = tuple[Tensor, Tensor]  # (mu, logvar), each [N, D]


def up_block(c_in: int, c_out: int) -> list[nn.Module]:
    """[N, c_in, s, s] -> [N, c_out, 2s, 2s]: nearest x2, 3x3 conv, batch norm, ReLU."""
    return [
        nn.Upsample(scale_factor=2.0, mode="nearest"),
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    ]


class ResidualBlock(nn.Module):
    """[N, c, s, s] -> the same: ReLU(x + BN(conv3x3(ReLU(BN(conv3x3(x))))))."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=1, bias=False),
            nn.BatchNorm2d(c),
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x + self.body(x))


class ConditioningAugmentation(nn.Module):
    """(e_y f32[N,E], eps f32[N,D]) -> (c f32[N,D], (mu, logvar)): c = mu + sigma * eps."""

    def __init__(self, embed_dim: int, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(embed_dim, 2 * dim)

    def forward(self, embedding: Tensor, eps: Tensor) -> tuple[Tensor, Gaussian]:
        mu, logvar = self.fc(embedding).chunk(2, dim=1)
        return mu + torch.exp(0.5 * logvar) * eps, (mu, logvar)


class StageOne(nn.Module):
    """(z f32[N,Z], c f32[N,D]) -> sketch f32[N,C,s,s] in (-1, 1)."""

    def __init__(self, z_dim: int, ca_dim: int, channels: int, side: int, width: int) -> None:
        super().__init__()
        base, doublings = spatial_plan(side)
        self.top = (4 * width, base, base)
        layers: list[nn.Module] = []
        c = 4 * width
        for _ in range(doublings):  # 4w -> 2w -> w ... (at least w)
            layers += up_block(c, max(c // 2, width))
            c = max(c // 2, width)
        self.project = nn.Sequential(
            nn.Linear(z_dim + ca_dim, 4 * width * base * base, bias=False),
            nn.BatchNorm1d(4 * width * base * base),
            nn.ReLU(),
        )
        self.upsample = nn.Sequential(*layers, nn.Conv2d(c, channels, 3, padding=1), nn.Tanh())

    def forward(self, z: Tensor, c: Tensor) -> Tensor:
        return self.upsample(self.project(torch.cat([z, c], dim=1)).view(-1, *self.top))


class StageTwo(nn.Module):
    """(sketch f32[N,C,s,s], c f32[N,D]) -> image f32[N,C,2s,2s] in (-1, 1)."""

    def __init__(self, ca_dim: int, channels: int, width: int) -> None:
        super().__init__()
        self.encode = nn.Sequential(  # [N, C, s, s] -> [N, 2w, s/2, s/2]
            nn.Conv2d(channels, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
        )
        self.joint = nn.Sequential(  # [N, 2w + D, s/2, s/2] -> [N, 2w, s/2, s/2]
            nn.Conv2d(2 * width + ca_dim, 2 * width, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            ResidualBlock(2 * width),
            ResidualBlock(2 * width),
            *up_block(2 * width, width),  # -> [N, w, s, s]
            *up_block(width, width),  # -> [N, w, 2s, 2s]
            nn.Conv2d(width, channels, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, sketch: Tensor, c: Tensor) -> Tensor:
        h = self.encode(sketch)
        planes = c[:, :, None, None].expand(-1, -1, *h.shape[2:])  # c_2 tiled: [N, D, s/2, s/2]
        return self.joint(torch.cat([h, planes], dim=1))


class StackedGenerator(nn.Module):
    """(z f32[N,latent_dim], label i64[N]) -> image f32[N,C,S,S]: stage I, then stage II."""

    def __init__(
        self,
        latent_dim: int,
        num_classes: int,
        channels: int,
        image_size: int,
        width: int,
        ca_dim: int,
    ) -> None:
        super().__init__()
        base, doublings = spatial_plan(image_size)
        if doublings < 2:
            raise ValueError(
                f"image size {image_size}: stackgan's sketch is half the side and needs an "
                "even side itself (base*2^n with n >= 2, e.g. 28, 32 or 64)"
            )
        self.noise_dim, self.ca_dim = latent_dim - ca_dim, ca_dim
        if self.noise_dim < 1:
            raise ValueError(f"latent_dim {latent_dim} leaves no noise beside ca_dim {ca_dim}")
        self.embed = nn.Embedding(num_classes, 2 * ca_dim)  # e_y, the text embedding's place
        self.ca_one = ConditioningAugmentation(2 * ca_dim, ca_dim)
        self.ca_two = ConditioningAugmentation(2 * ca_dim, ca_dim)
        self.stage_one = StageOne(self.noise_dim, ca_dim, channels, image_size // 2, width)
        self.stage_two = StageTwo(ca_dim, channels, width)
        dcgan_init(self)  # N(0, 0.02) weights, as the paper's (DCGAN's) initialization

    def sketch(self, z: Tensor, label: Tensor) -> tuple[Tensor, Gaussian]:
        """Stage I's sketch of side S/2 and its CA's Gaussian."""
        noise, eps = z.split([self.noise_dim, self.ca_dim], dim=1)
        c, gaussian = self.ca_one(self.embed(label), eps)
        return self.stage_one(noise, c), gaussian

    def refine(self, sketch: Tensor, z: Tensor, label: Tensor) -> tuple[Tensor, Gaussian]:
        """Stage II's image from a sketch and its CA's Gaussian (the same eps from z)."""
        c, gaussian = self.ca_two(self.embed(label), z[:, self.noise_dim :])
        return self.stage_two(sketch, c), gaussian

    def forward(self, z: Tensor, label: Tensor) -> Tensor:
        sketch, _ = self.sketch(z, label)
        return self.refine(sketch, z, label)[0]


class StackGANParams(SynthesisParams):
    """The synthesis knobs plus conditioning augmentation's size and KL weight and the
    matching-aware critic."""

    ca_dim: int = Field(16, ge=1, description="size of the sampled condition c (from z's end)")
    kl_weight: float = Field(1.0, ge=0, description="weight of CA's KL term (the paper: 1)")
    matching_aware: bool = Field(True, description="real images with a wrong class are fake")


class StackGAN(SynthesisVariant):
    """Two stacked class-conditional GANs: a half-side sketch, then its refinement."""

    name = "stackgan"
    description = (
        "StackGAN (Zhang et al., 2017): a half-side sketch, then a refinement stage; "
        "conditioning augmentation, matching-aware critics; class-conditioned."
    )
    unsupported: ClassVar[frozenset[str]] = STAGED_UNSUPPORTED  # its own two-stage games
    Params = StackGANParams.with_defaults(loss="hinge", betas=(0.5, 0.999))
    params: StackGANParams

    def build_generator(self) -> nn.Module:
        p, d = self.params, self.data
        return StackedGenerator(
            p.latent_dim, d.num_classes, d.channels, d.image_size, p.width, p.ca_dim
        )

    def build_discriminator(self) -> nn.Module:
        p, d = self.params, self.data
        return nn.ModuleList(  # D_1 on sketches (side S/2), D_2 on images (side S)
            projection_critic(d.num_classes, d.channels, side, p.width)
            for side in (d.image_size // 2, d.image_size)
        )

    def stages(self, z: Tensor, label: Tensor) -> tuple[list[Tensor], list[Gaussian]]:
        """([sketch, image], their CA Gaussians): stage II refines the sketch detached."""
        sketch, first = self.generator.sketch(z, label)
        image, second = self.generator.refine(sketch.detach(), z, label)
        return [sketch, image], [first, second]

    def discriminator_loss(self, batch: Batch) -> LossOutput:
        p, real, label = self.params, batch["image"], batch["label"]
        reals = [F.avg_pool2d(real, 2), real]  # what each stage's critic sees as real
        with torch.no_grad():
            fakes, _ = self.stages(self.noise(label), label)
        wrong = self.wrong_labels(label)
        games = {}
        for k, (critic, x, fake) in enumerate(zip(self.discriminator, reals, fakes, strict=True)):
            fake_logits = critic(fake, label).logits
            if wrong is not None:  # matching-aware: half generated, half mismatched real
                fake_logits = torch.cat([fake_logits, critic(x, wrong).logits])
            real_logits = critic(x, label).logits
            games[f"stage{k + 1}"] = losses.discriminator_loss(p.loss, real_logits, fake_logits)
        return summed_games(games, "d")

    def generator_loss(self, batch: Batch) -> LossOutput:
        """Both stages' generator losses and CA's KL term; with ``mode_seeking`` > 0 the
        batch is :func:`paired` and each stage pays MSGAN's term against z (one z feeds
        both stages' conditions)."""
        p = self.params
        if p.mode_seeking > 0:
            batch = paired(batch)
        real, label = batch["image"], batch["label"]
        z = self.noise(label)
        fakes, gaussians = self.stages(z, label)
        reals = [F.avg_pool2d(real, 2), real]
        games = {}
        for k, (critic, x, fake) in enumerate(zip(self.discriminator, reals, fakes, strict=True)):
            real_logits = critic(x, label).logits if p.loss in losses.RELATIVISTIC else None
            games[f"stage{k + 1}"] = losses.generator_loss(
                p.loss, critic(fake, label).logits, real_logits
            )
        adversarial = summed_games(games, "g")
        # KL(N(mu, sigma^2) || N(0, I)) of both stages' conditions, mean over the batch
        kl = torch.stack([gaussian_kl(mu, logvar).mean() for mu, logvar in gaussians]).sum()
        out = LossOutput(adversarial.loss + p.kl_weight * kl, adversarial.logs | {"kl": kl.item()})
        generated = {f"stage{k + 1}": (fake, z) for k, fake in enumerate(fakes)}
        return with_games_mode_seeking(out, generated, p.mode_seeking)

    def noise(self, label: Tensor) -> Tensor:
        return torch.randn(len(label), self.params.latent_dim, device=label.device)

    def wrong_labels(self, label: Tensor) -> Tensor | None:
        """y' != y for every image (a uniform other class), or None (off, or one class)."""
        k = self.data.num_classes
        if not self.params.matching_aware or k < 2:
            return None
        return (label + torch.randint(1, k, label.shape, device=label.device)) % k


@hookimpl
def augment_register_variants(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    register(StackGAN)
