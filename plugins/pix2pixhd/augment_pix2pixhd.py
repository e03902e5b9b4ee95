"""pix2pixHD (Wang et al., 2018), small: paired translation, coarse to fine.

A coarse-to-fine generator (a global generator on the half-size input inside a local
enhancer at full size) and multi-scale PatchGAN critics that see the input beside the
output, as in Pix2Pix (:mod:`augment.nn.pix2pixhd`). Losses (the paper's section 3.2):

* least-squares adversarial losses summed over the critics' scales;
* **feature matching** (``feature_matching``, 10): the L1 distance between a critic's
  intermediate maps on the real pair and on the generated pair, averaged over its layers
  and scales; it stabilizes training and asks for the statistics of the data at every
  scale (the paper's weights: 4 / (layers + 1) a layer, 1 / scales a critic: the same
  average up to a constant);
* ``l1`` (default 0): Pix2Pix's distance to the paired target, which pix2pixHD replaced.

Left out: the VGG perceptual loss (pretrained weights cannot be downloaded here), the
instance-boundary maps and the feature encoder for multimodal output (no instance maps
in a classification data set); the global generator is not pre-trained alone first.

The export is ``image -> image`` into the target (the last of its two domains).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from augment import hookimpl, losses
from augment.nn.pix2pixhd import CoarseToFineGenerator, MultiScaleDiscriminator
from augment.tasks.translate import TranslateParams, TranslateVariant
from augment.variant import Batch, LossOutput


class Pix2PixHDParams(TranslateParams):
    """The translate knobs plus the critics' scales, the enhancer's blocks and the
    feature-matching weight (``blocks``: the global generator's residual blocks)."""

    scales: int = Field(2, ge=1, description="critics, each on the input halved once more")
    local_blocks: int = Field(2, ge=0, description="residual blocks of the local enhancer")
    feature_matching: float = Field(10.0, ge=0, description="feature-matching weight")


class Pix2PixHD(TranslateVariant):
    """pix2pixHD: coarse-to-fine generator, multi-scale critics, feature matching."""

    name = "pix2pixhd"
    description = (
        "pix2pixHD (small): a global generator inside a local enhancer, multi-scale "
        "input-conditioned PatchGANs, feature matching."
    )
    multi_domain = False
    paired = True

    Params = Pix2PixHDParams.with_defaults(loss="lsgan", cycle=0.0, width=16, blocks=4)
    params: Pix2PixHDParams
    # no noise code, no cycle or identity, no domain head, no U-Net, no history of fakes
    unsupported = frozenset(
        {"noise", "mode_seeking", "cycle", "identity", "domain", "levels", "semantic"}
        | {"pool_size", "gradient_penalty"}
    )

    def build_generator(self) -> nn.Module:
        p, d = self.params, self.data
        return CoarseToFineGenerator(d.channels, p.width, p.blocks, p.local_blocks)

    def build_discriminator(self) -> nn.Module:
        p, d = self.params, self.data
        return MultiScaleDiscriminator(2 * d.channels, p.d_width, p.d_layers, p.scales)

    def translate(
        self, generator: nn.Module, image: Tensor, domain: Tensor | None, noise: Tensor | None
    ) -> Tensor:
        return generator(image)

    def critics(self, source: Tensor, image: Tensor) -> list[list[Tensor]]:
        """Every scale's maps and logits on the pair (source, image) stacked by channel."""
        return self.discriminator(torch.cat([source, image], dim=1))

    def discriminator_loss(self, batch: Batch) -> LossOutput:
        source, target = batch["image"], batch["target"]
        with torch.no_grad():
            fake = self.generator(source)
        real, generated = self.critics(source, target), self.critics(source, fake)
        per_scale = losses.multiscale_discriminator_losses(self.params.loss, real, generated)
        loss = torch.stack(per_scale).sum()
        return LossOutput(loss, {f"d_scale{k}": x.item() for k, x in enumerate(per_scale)})

    def generator_loss(self, batch: Batch) -> LossOutput:
        p = self.params
        source, target = batch["image"], batch["target"]
        fake = self.generator(source)
        generated = self.critics(source, fake)
        with torch.no_grad():  # constants for G: the real pair's maps and logits
            real = self.critics(source, target)
        adversarial = losses.multiscale_generator_loss(p.loss, generated, real)
        # mean over scales and layers of mean |D_k^(i)(s, x) - D_k^(i)(s, G(s))|
        matching = losses.feature_matching(real, generated)
        distance = F.l1_loss(fake, target)
        loss = adversarial + p.feature_matching * matching + p.l1 * distance
        logs = {"g_adv": adversarial.item(), "feature_matching": matching.item()}
        return LossOutput(loss, logs | {"l1": distance.item()})


@hookimpl
def augment_register_variants(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    register(Pix2PixHD)


__all__ = ["Pix2PixHD", "augment_register_variants"]
