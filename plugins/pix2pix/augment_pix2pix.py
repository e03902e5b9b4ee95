"""Pix2Pix (Isola et al., 2017): paired translation from one domain into another.

A U-Net generator and a PatchGAN critic that sees the input beside the output (real pair
or generated pair); the generator also pays an L1 distance to the paired target. It needs
pairs: in the pipeline, the images of a styled domain (``mnistm-like``) and the plain
images they were made from.

The export is ``image -> image`` into the target (the last of its two domains).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augment import hookimpl, losses
from augment.nn.translate import PatchDiscriminator, UNetGenerator
from augment.tasks.translate import TranslateParams, TranslateVariant
from augment.variant import Batch, LossOutput


class Pix2Pix(TranslateVariant):
    """Pix2Pix: U-Net generator, input-conditioned PatchGAN, adversarial + L1 losses."""

    name = "pix2pix"
    multi_domain = False
    paired = True

    # learns from pairs with one U-Net: no cycle, identity, domain head, readers of
    # unpaired translations, ResNet blocks, history of fakes or penalty
    unsupported = frozenset(
        {"blocks", "cycle", "identity", "domain", "semantic", "pseudo_labels", "pseudo_from"}
        | {"pool_size", "gradient_penalty"}
    )

    Params = TranslateParams.with_defaults(loss="ns", l1=100.0, cycle=0.0)

    def build_generator(self) -> nn.Module:
        p, d = self.params, self.data
        return UNetGenerator(d.channels, p.width, p.levels, noise=p.noise)

    def build_discriminator(self) -> nn.Module:
        p, d = self.params, self.data
        return PatchDiscriminator(2 * d.channels, p.d_width, p.d_layers)

    def translate(
        self, generator: nn.Module, image: Tensor, domain: Tensor | None, noise: Tensor | None
    ) -> Tensor:
        return generator(image, noise)

    def discriminator_loss(self, batch: Batch) -> LossOutput:
        source, target = batch["image"], batch["target"]
        with torch.no_grad():
            fake = self.generator(source, self.noise_for(source))
        real_logits = self.discriminator(torch.cat([source, target], dim=1))
        fake_logits = self.discriminator(torch.cat([source, fake], dim=1))
        loss = losses.discriminator_loss(self.params.loss, real_logits, fake_logits)
        logs = {"d_real": real_logits.mean().item(), "d_fake": fake_logits.mean().item()}
        return LossOutput(loss, logs)

    def generator_loss(self, batch: Batch) -> LossOutput:
        p = self.params
        source, target = batch["image"], batch["target"]
        noise = self.noise_for(source)
        fake = self.generator(source, noise)
        adversarial = self.generator_adversarial(  # the critic sees (input, output) pairs
            self.discriminator, torch.cat([source, fake], dim=1), torch.cat([source, target], 1)
        )
        distance = F.l1_loss(fake, target)
        diversity = self.diversity_loss(lambda code: self.generator(source, code), fake, noise)
        loss = adversarial + p.l1 * distance + diversity.loss
        logs = {"g_adv": adversarial.item(), "l1": distance.item()} | diversity.logs
        return LossOutput(loss, logs)


@hookimpl
def augment_register_variants(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    register(Pix2Pix)


__all__ = ["Pix2Pix", "augment_register_variants"]
