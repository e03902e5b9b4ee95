"""MUNIT (Huang et al., 2018): multimodal unpaired translation between two domains.

Each domain has a content encoder, a style encoder and a decoder
(:mod:`augment.nn.content_style`). An image splits into a content map (the layout: which
digit, where its strokes are), which the domains share, and a style vector of ``noise``
numbers (the rest: a background photo, colours), whose prior is N(0, I) in each domain.
A -> B decodes A's content with B's decoder and a style drawn from that prior, so one
digit gets as many translations as there are style codes: the translate contract's
``noise`` input *is* the style. Losses (MUNIT section 3.2, weights as its configs):

* image reconstruction within a domain, ``|G_a(c_a, s_a) - x_a|_1`` (``reconstruction``, 10);
* latent reconstruction across domains: the content and the style of a translation
  encoded again, ``|E^c_b(x_ab) - c_a|_1`` (``content``, 1) and ``|E^s_b(x_ab) - s_b|_1``
  (``style``, 1), which is what makes the decoder use its style code (a diversity term
  of its own, beside the optional mode seeking of the family);
* least-squares adversarial losses on both translations, one PatchGAN critic a domain
  (MUNIT uses multi-scale critics; sized for 28-64 px here, one scale);
* an optional cycle ``|G_a(E^c_b(x_ab), s_a) - x_a|_1`` (``cycle``; 0 in the paper's
  MNIST-free configs, the explicit cycle of its "x_cyc_w");
* ``semantic`` > 0: the family's class-consistency loss on A -> B translations.

Domain 0 is A (the labeled source), domain 1 is B. The export is ``(image, domain, noise)
-> image``: ``image`` translated into ``domain`` with the style ``noise``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from augment import hookimpl
from augment.nn.content_style import Content, ContentEncoder, Decoder, StyleEncoder, StyleMLP
from augment.tasks.translate import TranslateParams, TranslateVariant
from augment.variant import Batch, LossOutput

DOMAINS = ("a", "b")


class MUNITParams(TranslateParams):
    """The translate knobs plus MUNIT's loss weights; ``noise`` is the style's size."""

    reconstruction: float = Field(10.0, ge=0, description="image reconstruction weight")
    content: float = Field(1.0, ge=0, description="content reconstruction weight")
    style: float = Field(1.0, ge=0, description="style reconstruction weight")

    @model_validator(mode="after")
    def _style_needs_numbers(self) -> MUNITParams:
        if self.noise == 0:
            raise ValueError("noise is the size of MUNIT's style code: needs >= 1 (8 in the paper)")
        return self


class MUNIT(TranslateVariant):
    """MUNIT: content and style encoders and a decoder per domain; styles from N(0, I)."""

    name = "munit"
    description = (
        "MUNIT: per-domain content and style encoders and AdaIN decoders; a new style code, "
        "a new translation."
    )

    Params = MUNITParams.with_defaults(loss="lsgan", noise=8, cycle=0.0, blocks=4)
    params: MUNITParams
    # no identity or paired term, no domain head, no U-Net, no history of fakes, no penalty
    unsupported = frozenset({"identity", "l1", "domain", "levels", "pool_size", "gradient_penalty"})

    def build_generator(self) -> nn.Module:
        p, d = self.params, self.data
        # the style reaches every decoder norm through a 4w-wide hidden vector
        hidden = 4 * p.width
        half = max(p.blocks // 2, 1)  # residual blocks: half in the encoder, half in the decoder
        modules: dict[str, nn.Module] = {}
        for x in DOMAINS:
            modules[f"content_{x}"] = ContentEncoder(d.channels, p.width, half)
            modules[f"style_{x}"] = StyleEncoder(d.channels, p.width, p.noise)
            modules[f"mlp_{x}"] = StyleMLP(p.noise, hidden)
            modules[f"decoder_{x}"] = Decoder(d.channels, p.width, half, code_dim=hidden)
        return nn.ModuleDict(modules)

    def build_discriminator(self) -> nn.Module:
        return self.domain_critics()

    @staticmethod
    def decode(generator: nn.Module, domain: str, content: Content, style: Tensor) -> Tensor:
        """Domain ``domain``'s image of ``content`` with ``style`` f32[N, S]."""
        return generator[f"decoder_{domain}"](content, generator[f"mlp_{domain}"](style))

    def translate(
        self, generator: nn.Module, image: Tensor, domain: Tensor | None, noise: Tensor | None
    ) -> Tensor:
        into_b = (domain == 1).view(-1, 1, 1, 1)
        to_b = self.decode(generator, "b", generator["content_a"](image), noise)
        to_a = self.decode(generator, "a", generator["content_b"](image), noise)
        return torch.where(into_b, to_b, to_a)

    def discriminator_loss(self, batch: Batch) -> LossOutput:
        real_a, real_b, labels = self.halves(batch)
        g = self.generator
        with torch.no_grad():
            fake_b = self.decode(g, "b", g["content_a"](real_a), self.noise_for(real_a))
            fake_a = self.decode(g, "a", g["content_b"](real_b), self.noise_for(real_b))
        return self.domain_critics_loss(
            real_a, real_b, labels, fake_a, fake_b, self.layout_halves(batch)
        )

    def generator_loss(self, batch: Batch) -> LossOutput:
        p, g = self.params, self.generator
        real_a, real_b, labels = self.halves(batch)
        reals = {"a": real_a, "b": real_b}
        contents = {x: g[f"content_{x}"](reals[x]) for x in DOMAINS}  # c_a, c_b
        styles = {x: g[f"style_{x}"](reals[x]) for x in DOMAINS}  # s_a, s_b (encoded)
        # x -> x: the image from its own content and style
        reconstruction = sum(
            F.l1_loss(self.decode(g, x, contents[x], styles[x]), reals[x]) for x in DOMAINS
        )
        # across: a's content with a style of b drawn from the prior, and the other way
        drawn = {"b": self.noise_for(real_a), "a": self.noise_for(real_b)}  # s_b, s_a ~ N(0, I)
        fake_b = self.decode(g, "b", contents["a"], drawn["b"])
        fake_a = self.decode(g, "a", contents["b"], drawn["a"])
        adversarial = self.domain_critics_adversarial(real_a, real_b, fake_a, fake_b)
        # the translations encoded again: their content is the source's, their style the drawn one
        again = {"b": g["content_b"](fake_b), "a": g["content_a"](fake_a)}
        content = F.l1_loss(again["b"].code, contents["a"].code) + F.l1_loss(
            again["a"].code, contents["b"].code
        )
        style = F.l1_loss(g["style_b"](fake_b), drawn["b"]) + F.l1_loss(
            g["style_a"](fake_a), drawn["a"]
        )
        semantic = self.semantic_loss(fake_b, labels)
        shape = self.domain_shape_loss(fake_a, fake_b, self.layout_halves(batch))
        diversity = self.diversity_loss(
            lambda code: self.decode(g, "b", contents["a"], code), fake_b, drawn["b"]
        )
        loss = (
            adversarial
            + p.reconstruction * reconstruction
            + p.content * content
            + p.style * style
            + semantic.loss
            + shape.loss
            + diversity.loss
        )
        logs = {
            "g_adv": adversarial.item(),
            "reconstruction": reconstruction.item(),
            "content": content.item(),
            "style": style.item(),
        }
        if p.cycle > 0:  # back with the source's own style: a -> b -> a and b -> a -> b
            cycle = F.l1_loss(self.decode(g, "a", again["b"], styles["a"]), real_a) + F.l1_loss(
                self.decode(g, "b", again["a"], styles["b"]), real_b
            )
            loss = loss + p.cycle * cycle
            logs["cycle"] = cycle.item()
        return LossOutput(loss, logs | semantic.logs | shape.logs | diversity.logs)


@hookimpl
def augment_register_variants(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    register(MUNIT)


__all__ = ["MUNIT", "augment_register_variants"]
