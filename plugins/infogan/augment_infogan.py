"""InfoGAN (Chen et al., 2016): the class plus latent codes that a Q head recovers from the
image, so each code comes to control one factor of variation (a digit's slant, its
stroke width) without any label for it.

The generator takes ``(z, label, code)``: ``code`` f32[N, D] holds ``continuous_codes``
values c ~ U(-1, 1) and a one-hot block per entry of ``categorical_codes`` (the layout of
:mod:`augment.latent_codes`, carried in the ONNX metadata). Q shares the discriminator's
body: features h f32[N, F] -> FC 128 -> LeakyReLU -> FC to (continuous means ++ one
logit vector per categorical code). The mutual-information lower bound

    I(c; G(z, y, c)) >= E[log Q(c | G(z, y, c))] + H(c)

is maximized by both players through ``L_I = sum_i 0.5 (mu_i - c_i)^2`` (a unit-variance
Gaussian for each continuous code, up to a constant) ``+ sum_j CE(logits_j, k_j)``,
added to the discriminator's loss (training Q on the generator's samples) and to the
generator's, with weight ``info_weight`` (lambda; 1 in the paper for categorical codes).
The class is given as in cgan (embedding into the generator, projection or one-hot maps
into the critic), so the codes learn what varies *within* a class.

Exported: ``(z, label, code) -> image``; ``augment generate --code c0=0.5 --sweep c1``,
``OnnxGenerator.generate(..., codes=CodeChoice(...))`` and ``GANSynthesize(codes=...)``
set codes, and every other path draws them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from augment import hookimpl, losses
from augment.latent_codes import CodeLayout
from augment.nn.dcgan import ConditionalDiscriminator, ConditionalGenerator, DiscriminatorOutput
from augment.tasks.synthesis import (
    SHARED_LOSS_KNOBS,
    ConditionalDCGAN,
    SynthesisParams,
    generated_for,
    with_mode_seeking,
)
from augment.variant import Batch, LossOutput


class InfoGANParams(SynthesisParams):
    """The synthesis knobs plus the latent codes and the weight of their information term."""

    continuous_codes: int = Field(2, ge=0, le=16, description="codes c ~ U(-1, 1)")
    categorical_codes: tuple[int, ...] = Field(
        (), description="the number of values of each categorical code (each >= 2)"
    )
    info_weight: float = Field(1.0, ge=0, description="lambda of the mutual-information term")

    @model_validator(mode="after")
    def _codes(self) -> InfoGANParams:
        if self.continuous_codes + len(self.categorical_codes) == 0:
            raise ValueError("infogan needs at least one code (continuous_codes or categorical)")
        if any(k < 2 for k in self.categorical_codes):
            raise ValueError(f"categorical_codes {list(self.categorical_codes)}: each needs >= 2")
        return self

    @property
    def layout(self) -> CodeLayout:
        return CodeLayout(self.continuous_codes, tuple(self.categorical_codes))


class InfoGenerator(nn.Module):
    """(z f32[N,latent], label i64[N], code f32[N,D]) -> image: the conditional DCGAN
    generator fed ``z ++ code`` as its noise."""

    def __init__(self, network: ConditionalGenerator) -> None:
        super().__init__()
        self.network = network

    def forward(self, z: Tensor, label: Tensor, code: Tensor) -> Tensor:
        return self.network(torch.cat([z, code], dim=1), label)


class InfoDiscriminator(ConditionalDiscriminator):
    """The conditional critic plus Q: ``judge(image, label) -> (DiscriminatorOutput, q)``,
    q f32[N, continuous + sum(categorical)] from the same features."""

    def __init__(self, q_outputs: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.q = nn.Sequential(
            nn.Linear(self.feature_dim, 128), nn.LeakyReLU(0.2), nn.Linear(128, q_outputs)
        )

    def judge(self, image: Tensor, label: Tensor) -> tuple[DiscriminatorOutput, Tensor]:
        h = self.features_of(image, label)
        return self.score(h, label), self.q(h)


def draw_codes(layout: CodeLayout, n: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """(code f32[N,D], u f32[N, continuous + categorical]) for a batch: u ~ U(0, 1) and, as
    :meth:`CodeLayout.codes` does it, continuous ``2u - 1``, categorical ``floor(u k)`` one-hot."""
    u = torch.rand(n, layout.continuous + len(layout.categorical), device=device)
    blocks = [2.0 * u[:, : layout.continuous] - 1.0]
    for j, k in enumerate(layout.categorical):
        index = (u[:, layout.continuous + j] * k).long().clamp(max=k - 1)
        blocks.append(F.one_hot(index, k).to(u.dtype))
    return torch.cat(blocks, dim=1), u


def information_loss(layout: CodeLayout, q: Tensor, code: Tensor) -> Tensor:
    """-E[log Q(c | x)] up to a constant: 0.5 (mu - c)^2 summed over the continuous codes
    (unit-variance Gaussians) + the cross-entropy of each categorical code; mean over N."""
    c = layout.continuous
    loss = 0.5 * (q[:, :c] - code[:, :c]).pow(2).sum(dim=1).mean()
    offset = c
    for k in layout.categorical:
        target = code[:, offset : offset + k].argmax(dim=1)
        loss = loss + F.cross_entropy(q[:, offset : offset + k], target)
        offset += k
    return loss


class InfoGAN(ConditionalDCGAN):
    """InfoGAN on the conditional DCGAN networks (cgan's recipe plus codes and Q)."""

    name = "infogan"
    description = (
        "InfoGAN (Chen et al., 2016): class + latent codes (continuous, categorical) a Q head "
        "recovers; codes settable or swept at generation (the ONNX code input)."
    )
    # the recipe's own losses replace the penalties and heads the shared ones add
    unsupported: ClassVar[frozenset[str]] = SHARED_LOSS_KNOBS
    Params = InfoGANParams.with_defaults(
        conditioning="projection", spectral_norm=True, loss="hinge", d_norm="none"
    )
    params: InfoGANParams

    def build_generator(self) -> nn.Module:
        p, d = self.params, self.data
        noise = p.latent_dim + p.layout.dim
        return InfoGenerator(
            ConditionalGenerator(noise, d.num_classes, d.channels, d.image_size, p.width)
        )

    def build_discriminator(self) -> nn.Module:
        # Q: a mean per continuous code, a logit per value of each categorical one
        return InfoDiscriminator(self.params.layout.dim, **self.discriminator_args())

    def generated(self, labels: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(images, z, code, labels) with fresh z and codes; with mode seeking, two halves
        with the same labels and codes and different z (the pairs MSGAN compares; the
        halves and z as :func:`generated_for` draws them for every synthesis recipe)."""
        p = self.params
        half = p.mode_seeking > 0
        code, _ = draw_codes(p.layout, len(labels) // 2 if half else len(labels), labels.device)
        code = torch.cat([code, code]) if half else code
        fake, z, labels = generated_for(
            lambda z, y: self.generator(z, y, code), labels, p.latent_dim, p.mode_seeking
        )
        return fake, z, code, labels

    def discriminator_loss(self, batch: Batch) -> LossOutput:
        p = self.params
        real, labels = batch["image"], batch["label"]
        with torch.no_grad():
            fake, _, code, fake_labels = self.generated(labels)
        real_out = self.discriminator(self.augmented(real), labels)
        fake_out, q = self.discriminator.judge(self.augmented(fake), fake_labels)
        adversarial = losses.discriminator_loss(p.loss, real_out.logits, fake_out.logits)
        info = information_loss(p.layout, q, code)
        logs = {
            "d_adv": adversarial.item(),
            "d_real": real_out.logits.mean().item(),
            "d_fake": fake_out.logits.mean().item(),
            "q_info": info.item(),
        }
        return LossOutput(adversarial + p.info_weight * info, logs)

    def generator_loss(self, batch: Batch) -> LossOutput:
        p = self.params
        fake, z, code, labels = self.generated(batch["label"])
        fake_out, q = self.discriminator.judge(self.augmented(fake), labels)
        real_logits = None
        if p.loss in losses.RELATIVISTIC:
            real_logits = self.discriminator(self.augmented(batch["image"]), labels).logits
        adversarial = losses.generator_loss(p.loss, fake_out.logits, real_logits)
        info = information_loss(p.layout, q, code)
        out = LossOutput(
            adversarial + p.info_weight * info, {"g_adv": adversarial.item(), "g_info": info.item()}
        )
        return with_mode_seeking(out, fake, z, p.mode_seeking)

    def sample(self, labels: Tensor) -> Tensor:
        return self.generated(labels)[0]

    def example_inputs(self, batch_size: int, seed: int = 0) -> dict[str, Tensor]:
        inputs = super().example_inputs(batch_size, seed)
        layout = self.params.layout
        rng = torch.Generator().manual_seed(seed + 1)
        u = torch.rand(batch_size, layout.continuous + len(layout.categorical), generator=rng)
        return inputs | {"code": torch.from_numpy(layout.codes(u.numpy()))}

    def metadata(self) -> dict[str, Any]:
        return super().metadata() | {"codes": self.params.layout.to_json()}


@hookimpl
def augment_register_variants(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    register(InfoGAN)
