"""CycleGAN (Zhu et al., 2017): unpaired translation between two domains.

Two ResNet generators (A -> B and B -> A), two PatchGAN critics with least-squares
losses, cycle-consistency and identity losses, and a history of generated images for the
critics. With ``semantic`` > 0, a classifier trained alongside on the labeled source
images must still recognise each translated image's class (the class-consistency loss of
PixelDA/CyCADA), which is what keeps digits the same digits when the domains differ a lot.

Domain 0 is A (the labeled source), domain 1 is B (the target). The export holds both
directions: ``(image, domain) -> image`` translates into ``domain``. With ``noise`` > 0 the
A -> B generator also takes a noise code (``(image, domain, noise) -> image``), so one
digit can land on many backgrounds; the B -> A -> B cycle is then dropped, since a
background drawn from noise cannot be reconstructed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augment import hookimpl
from augment.nn.translate import ResnetGenerator
from augment.tasks.translate import TranslateParams, TranslateVariant
from augment.variant import Batch, LossOutput


class CycleGAN(TranslateVariant):
    """CycleGAN: two generators and critics, cycle + identity losses, a history of fakes."""

    name = "cyclegan"

    # two generators and least-squares critics: no paired L1, domain head, U-Net or penalty
    unsupported = frozenset({"l1", "domain", "levels", "gradient_penalty"})

    Params = TranslateParams.with_defaults(
        loss="lsgan", cycle=10.0, identity=5.0, pool_size=50, lr_decay="linear", decay_from=0.5
    )

    def build_generator(self) -> nn.Module:
        p, d = self.params, self.data
        return nn.ModuleDict(
            {
                "ab": ResnetGenerator(d.channels, p.width, p.blocks, noise=p.noise),
                "ba": ResnetGenerator(d.channels, p.width, p.blocks),
            }
        )

    def build_discriminator(self) -> nn.Module:
        return self.domain_critics(history=self.params.pool_size)

    def translate(
        self, generator: nn.Module, image: Tensor, domain: Tensor | None, noise: Tensor | None
    ) -> Tensor:
        into_b = (domain == 1).view(-1, 1, 1, 1)
        return torch.where(into_b, generator["ab"](image, None, noise), generator["ba"](image))

    def a_to_b(self, image: Tensor) -> Tensor:
        return self.generator["ab"](image, None, self.noise_for(image))

    def discriminator_loss(self, batch: Batch) -> LossOutput:
        real_a, real_b, labels = self.halves(batch)
        with torch.no_grad():
            fake_b, fake_a = self.a_to_b(real_a), self.generator["ba"](real_b)
        return self.domain_critics_loss(
            real_a, real_b, labels, fake_a, fake_b, self.layout_halves(batch)
        )

    def generator_loss(self, batch: Batch) -> LossOutput:
        p = self.params
        real_a, real_b, labels = self.halves(batch)
        g = self.generator
        noise = self.noise_for(real_a)
        fake_b, fake_a = g["ab"](real_a, None, noise), g["ba"](real_b)
        adversarial = self.domain_critics_adversarial(real_a, real_b, fake_a, fake_b)
        cycle = F.l1_loss(g["ba"](fake_b), real_a)
        if p.noise == 0:
            cycle = cycle + F.l1_loss(g["ab"](fake_a), real_b)
        semantic = self.semantic_loss(fake_b, labels)
        shape = self.domain_shape_loss(fake_a, fake_b, self.layout_halves(batch))
        diversity = self.diversity_loss(lambda code: g["ab"](real_a, None, code), fake_b, noise)
        loss = adversarial + p.cycle * cycle + semantic.loss + shape.loss + diversity.loss
        logs = {"g_adv": adversarial.item(), "cycle": cycle.item()} | semantic.logs
        logs |= shape.logs | diversity.logs
        if p.identity > 0:
            identity = F.l1_loss(self.a_to_b(real_b), real_b) + F.l1_loss(g["ba"](real_a), real_a)
            loss = loss + p.identity * identity
            logs["identity"] = identity.item()
        return LossOutput(loss, logs)


@hookimpl
def augment_register_variants(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    register(CycleGAN)


__all__ = ["CycleGAN", "augment_register_variants"]
