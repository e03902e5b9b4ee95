"""UNIT (Liu et al., 2017): unpaired translation through a shared latent space.

Two VAE-GANs, one a domain, whose encoders end in one *shared* residual block and whose
decoders start with another (:mod:`augment.nn.content_style`): the weight sharing is the
paper's assumption that a pair of corresponding images, one in each domain, has one code.
A -> B encodes with A's encoder and decodes with B's decoder.

The encoder outputs the mean ``mu`` of a Gaussian with identity covariance (as the
authors' code does), so a sample is ``z = mu + eps`` and ``KL(N(mu, I) || N(0, I)) =
|mu|^2 / 2`` (the authors average ``mu^2``; that is what ``kl`` weighs, 0.01 in their
configs). Losses, weighted as their configs:

* within a domain, the VAE: ``|G_a(z_a) - x_a|_1`` (``reconstruction``, 10) and the KL;
* across: least-squares adversarial losses on ``G_b(z_a)`` and ``G_a(z_b)``, one PatchGAN
  critic a domain;
* the cycle ``x_a -> G_b(z_a) -> encode -> G_a -> x_a`` (``cycle``, 10) and the KL of the
  translation's code;
* ``semantic`` > 0: the family's class-consistency loss on A -> B translations.

Deterministic: the export translates with ``mu`` (no sampling): ``(image, domain) ->
image``, into ``domain``. Domain 0 is A (the labeled source), domain 1 is B.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from augment import hookimpl
from augment.nn.content_style import Content, ContentEncoder, Decoder
from augment.nn.translate import ResidualBlock
from augment.tasks.translate import TranslateParams, TranslateVariant
from augment.variant import Batch, LossOutput

DOMAINS = ("a", "b")


class UNITParams(TranslateParams):
    """The translate knobs plus UNIT's VAE weights."""

    reconstruction: float = Field(10.0, ge=0, description="image reconstruction weight")
    kl: float = Field(0.01, ge=0, description="weight of the codes' KL term (mean mu^2)")


class UNIT(TranslateVariant):
    """UNIT: two VAE-GANs whose encoders' last and decoders' first blocks are shared."""

    name = "unit"
    description = (
        "UNIT: two VAE-GANs sharing their innermost blocks, so both domains have one latent space."
    )

    Params = UNITParams.with_defaults(loss="lsgan", cycle=10.0, blocks=4)
    params: UNITParams
    # deterministic (translates with mu), no identity or paired term, no domain head, ...
    unsupported = frozenset(
        {"noise", "mode_seeking", "identity", "l1", "domain", "levels", "pool_size"}
        | {"gradient_penalty"}
    )

    def build_generator(self) -> nn.Module:
        p, d = self.params, self.data
        # ``blocks`` residual blocks: half in each encoder, half in each decoder, the
        # innermost of each half shared by the two domains
        private = max(p.blocks // 2, 1) - 1
        modules: dict[str, nn.Module] = {
            "shared_encoder": ResidualBlock(4 * p.width),
            "shared_decoder": ResidualBlock(4 * p.width),
        }
        for x in DOMAINS:
            modules[f"encoder_{x}"] = ContentEncoder(d.channels, p.width, private)
            modules[f"decoder_{x}"] = Decoder(d.channels, p.width, private)
        return nn.ModuleDict(modules)

    def build_discriminator(self) -> nn.Module:
        return self.domain_critics()

    @staticmethod
    def encode(generator: nn.Module, domain: str, image: Tensor) -> Content:
        """``mu`` of ``image`` (of ``domain``), f32[N, 4w, H/4, W/4], in the shared space."""
        content = generator[f"encoder_{domain}"](image)
        return content.with_code(generator["shared_encoder"](content.code))

    @staticmethod
    def decode(generator: nn.Module, domain: str, code: Content) -> Tensor:
        """Domain ``domain``'s image of a code of the shared space."""
        return generator[f"decoder_{domain}"](
            code.with_code(generator["shared_decoder"](code.code))
        )

    @staticmethod
    def sampled(mu: Content) -> Content:
        """``z = mu + eps``, eps ~ N(0, I): a sample of the encoder's Gaussian."""
        return mu.with_code(mu.code + torch.randn_like(mu.code))

    def translate(
        self, generator: nn.Module, image: Tensor, domain: Tensor | None, noise: Tensor | None
    ) -> Tensor:
        into_b = (domain == 1).view(-1, 1, 1, 1)
        to_b = self.decode(generator, "b", self.encode(generator, "a", image))
        to_a = self.decode(generator, "a", self.encode(generator, "b", image))
        return torch.where(into_b, to_b, to_a)

    def discriminator_loss(self, batch: Batch) -> LossOutput:
        real_a, real_b, labels = self.halves(batch)
        g = self.generator
        with torch.no_grad():
            fake_b = self.decode(g, "b", self.sampled(self.encode(g, "a", real_a)))
            fake_a = self.decode(g, "a", self.sampled(self.encode(g, "b", real_b)))
        return self.domain_critics_loss(
            real_a, real_b, labels, fake_a, fake_b, self.layout_halves(batch)
        )

    def generator_loss(self, batch: Batch) -> LossOutput:
        p, g = self.params, self.generator
        real_a, real_b, labels = self.halves(batch)
        reals = {"a": real_a, "b": real_b}
        mu = {x: self.encode(g, x, reals[x]) for x in DOMAINS}
        z = {x: self.sampled(mu[x]) for x in DOMAINS}
        # the VAE of each domain: its own decoder gives the image back
        reconstruction = sum(F.l1_loss(self.decode(g, x, z[x]), reals[x]) for x in DOMAINS)
        kl = sum(mu[x].code.pow(2).mean() for x in DOMAINS)
        fake_b, fake_a = self.decode(g, "b", z["a"]), self.decode(g, "a", z["b"])
        adversarial = self.domain_critics_adversarial(real_a, real_b, fake_a, fake_b)
        # the cycle: each translation encoded in its new domain and decoded back
        again = {"a": self.encode(g, "b", fake_b), "b": self.encode(g, "a", fake_a)}
        cycle = sum(F.l1_loss(self.decode(g, x, self.sampled(again[x])), reals[x]) for x in DOMAINS)
        kl_cycle = sum(again[x].code.pow(2).mean() for x in DOMAINS)
        semantic = self.semantic_loss(fake_b, labels)
        shape = self.domain_shape_loss(fake_a, fake_b, self.layout_halves(batch))
        loss = (
            adversarial
            + p.reconstruction * reconstruction
            + p.cycle * cycle
            + p.kl * (kl + kl_cycle)
            + semantic.loss
            + shape.loss
        )
        logs = {
            "g_adv": adversarial.item(),
            "reconstruction": reconstruction.item(),
            "cycle": cycle.item(),
            "kl": (kl + kl_cycle).item(),
        }
        return LossOutput(loss, logs | semantic.logs | shape.logs)


@hookimpl
def augment_register_variants(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    register(UNIT)


__all__ = ["UNIT", "augment_register_variants"]
