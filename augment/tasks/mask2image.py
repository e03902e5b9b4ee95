"""Mask to image: :class:`Mask2ImageParams` and the family's recipe :class:`Mask2ImageVariant`
(SPADE: spatially-adaptive normalization, multi-scale critics, feature matching, and an
optional mask-consistency segmenter).

Exported contract: ``mask f32[N,K,H,W]`` (one-hot over the model's K mask labels, the
metadata ``variant.mask_labels``) and, for a stochastic model, ``noise f32[N,Z]`` ->
``image f32[N,C,H,W]`` in [-1, 1], any height and width. ``OnnxGenerator.from_mask`` takes
label maps (integers N x H x W) and one-hots them.

Training pairs come from the domains stage, as Pix2Pix's do: the target domain's images
and the plain image behind each (``data/domains/content/...``). The mask of a pair is its
plain image's foreground, ``plain > threshold`` (a digit's strokes): label 1, the rest 0.
The model learns to render the target domain's look (an MNIST-M-like photo texture)
around any given shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
from pydantic import Field
from torch import Tensor, nn
from torch.nn import functional as F

from augment import losses
from augment.errors import ConfigError, ModelError
from augment.nn.segmenter import MaskSegmenter, Threshold, foreground, mask_misread
from augment.tasks import Task
from augment.variant import (
    Batch,
    ClampedExport,
    DataSpec,
    FirstRows,
    LossOutput,
    Params,
    Preview,
    Variant,
)

if TYPE_CHECKING:
    from augment.data.batches import TrainingData

#: The mask labels the recipe learns: index -> name.
MASK_LABELS = ("background", "foreground")


class Mask2ImageParams(Params):
    """Knobs of the mask-to-image family."""

    width: int = Field(32, ge=8, description="generator channels at full size")
    d_width: int = Field(32, ge=8, description="critic channels")
    d_layers: int = Field(2, ge=1, description="stride-2 layers of each PatchGAN critic")
    scales: int = Field(2, ge=1, description="critics, each on the input halved once more")
    noise: int = Field(8, ge=0, description="style code numbers (0: one image per mask)")
    mode_seeking: float = Field(
        1.0, ge=0, description="MSGAN's term: two codes, two images (0: off)"
    )
    loss: losses.Adversarial = "hinge"
    feature_matching: float = Field(10.0, ge=0, description="feature-matching weight")
    segmentation: float = Field(
        5.0,
        ge=0,
        description="mask consistency: a segmenter trained on the real pairs must read the "
        "mask back from the made image (its cross-entropy's weight; 0: no segmenter)",
    )
    threshold: Threshold = 0.0


def one_hot_masks(labels: Tensor, count: int) -> Tensor:
    """Label maps i64[N,H,W] -> one-hot f32[N,count,H,W]."""
    return F.one_hot(labels, count).permute(0, 3, 1, 2).float()


class Mask2ImageVariant(Variant):
    """Images for label masks: hinge losses over multi-scale PatchGAN critics that read
    (mask, image) pairs, pix2pixHD's feature matching, MSGAN's term on the style code and,
    with ``segmentation`` w > 0, the mask-consistency term ``w * CE(S(G(m, z)), m)`` of a
    segmenter ``S`` that learns ``CE(S(x), m)`` on the real pairs (x, m).

    ``paired``: the train stage gives it the target domain's (plain, styled) pairs, as a
    paired translator gets them (``augment.translate.training_data``); the batch's
    ``image`` is the plain image (its mask is computed here) and ``target`` the image to
    make.
    """

    task: ClassVar[Task] = "mask2image"
    Params: ClassVar[type[Params]] = Mask2ImageParams
    params: Mask2ImageParams
    paired: ClassVar[bool] = True  # what training_data reads (as of a translator)
    max_domains: ClassVar[int | None] = 2

    def __init__(self, params: Params, data: DataSpec) -> None:
        if len(data.domains) != 2:
            raise ConfigError(
                f"{self.name} learns (plain, styled) pairs of two domains, got "
                f"{len(data.domains)}: {list(data.domains)}"
            )
        super().__init__(params, data)

    @property
    def labels(self) -> int:
        return len(MASK_LABELS)

    def metadata(self) -> dict[str, Any]:
        """The mask labels (their order is the ``mask`` input's channels) and the style
        code's size (``latent_dim``: the ``noise`` input, as for translators)."""
        return {"mask_labels": list(MASK_LABELS), "latent_dim": self.params.noise}

    def build_generator(self) -> nn.Module:
        from augment.nn.spade import SPADEGenerator

        p = self.params
        return SPADEGenerator(self.labels, self.data.channels, p.width, p.noise)

    def build_discriminator(self) -> nn.Module:
        """The multi-scale critics ("critic") and, with ``segmentation`` > 0, the mask
        segmenter ("segmenter"), both trained by the discriminator optimizer."""
        from augment.nn.pix2pixhd import MultiScaleDiscriminator

        p, channels = self.params, self.data.channels
        # the critics read (mask, image) stacked by channel
        modules = {
            "critic": MultiScaleDiscriminator(
                self.labels + channels, p.d_width, p.d_layers, p.scales
            )
        }
        if p.segmentation > 0:
            modules["segmenter"] = MaskSegmenter(channels, self.labels, p.d_width)
        return nn.ModuleDict(modules)

    def check_data(self, data: TrainingData) -> None:
        if data.domain is None or data.target is None:
            raise ModelError(f"{self.name}: needs (plain, styled) pairs: a paired target image")

    def masks(self, plain: Tensor) -> Tensor:
        """One-hot masks f32[N,K,H,W] of plain images f32[N,C,H,W]: foreground where the
        channel mean exceeds ``threshold``."""
        return one_hot_masks(foreground(plain, self.params.threshold), self.labels)

    def noise_for(self, mask: Tensor) -> Tensor | None:
        """A fresh style code a mask (None for a deterministic recipe)."""
        if self.params.noise == 0:
            return None
        return torch.randn(len(mask), self.params.noise, device=mask.device)

    def critics(self, mask: Tensor, image: Tensor) -> losses.ScaleOutputs:
        return self.discriminator["critic"](torch.cat([mask, image], dim=1))

    def mask_misread(self, image: Tensor, mask: Tensor) -> Tensor:
        """The segmenter's per-pixel cross-entropy reading ``mask`` (one-hot f32[N,K,H,W])
        from ``image`` f32[N,C,H,W] (:func:`augment.nn.segmenter.mask_misread`)."""
        return mask_misread(self.discriminator["segmenter"], image, mask.argmax(dim=1))

    def discriminator_loss(self, batch: Batch) -> LossOutput:
        mask, real = self.masks(batch["image"]), batch["target"]
        with torch.no_grad():
            fake = self.generator(mask, self.noise_for(mask))
        per_scale = losses.multiscale_discriminator_losses(
            self.params.loss, self.critics(mask, real), self.critics(mask, fake)
        )
        logs = {f"d_scale{k}": x.item() for k, x in enumerate(per_scale)}
        loss = torch.stack(per_scale).sum()
        if self.params.segmentation > 0:  # the segmenter learns from real pairs only
            misread = self.mask_misread(real, mask)
            loss, logs["segmenter"] = loss + misread, misread.item()
        return LossOutput(loss, logs)

    def generator_loss(self, batch: Batch) -> LossOutput:
        p = self.params
        mask, real = self.masks(batch["image"]), batch["target"]
        noise = self.noise_for(mask)
        fake = self.generator(mask, noise)
        generated = self.critics(mask, fake)
        with torch.no_grad():  # constants for G: the real pair's maps and logits
            reference = self.critics(mask, real)
        adversarial = losses.multiscale_generator_loss(p.loss, generated, reference)
        matching = losses.feature_matching(reference, generated)
        loss = adversarial + p.feature_matching * matching
        logs = {"g_adv": adversarial.item(), "feature_matching": matching.item()}
        if p.segmentation > 0:  # the made image must read back as its mask
            misread = self.mask_misread(fake, mask)
            loss, logs["mask_consistency"] = loss + p.segmentation * misread, misread.item()
        if noise is not None and p.mode_seeking > 0:
            other = torch.randn_like(noise)
            seeking = losses.mode_seeking(fake, self.generator(mask, other), noise, other)
            loss = loss + p.mode_seeking * seeking
            logs["mode_seeking"] = seeking.item()
        return LossOutput(loss, logs)

    def export_module(self, generator: nn.Module) -> nn.Module:
        # (mask (, noise)) -> image in [-1, 1]: the inputs of example_inputs, in order
        return ClampedExport(generator)

    def example_inputs(self, batch_size: int, seed: int = 0) -> dict[str, Tensor]:
        rng = torch.Generator().manual_seed(seed)
        size = self.data.image_size
        labels = torch.randint(0, self.labels, (batch_size, size, size), generator=rng)
        inputs = {"mask": one_hot_masks(labels, self.labels)}
        if self.params.noise:
            inputs["noise"] = torch.randn(batch_size, self.params.noise, generator=rng)
        return inputs

    def preview(self, module: nn.Module, n: int, seed: int, first_rows: FirstRows) -> Preview:
        """Rows of ``mask | made (| with two other codes) | the real styled image`` for the
        first ``n`` training pairs."""
        batch = first_rows("domain", n)
        mask, real = self.masks(batch["image"]), batch["target"]
        shown = mask[:, 1:2].expand_as(real) * 2 - 1  # the foreground, white on black
        rng = torch.Generator().manual_seed(seed)
        codes = (
            [None]
            if self.params.noise == 0
            else [
                torch.randn(len(mask), self.params.noise, generator=rng).to(mask.device)
                for _ in range(3)
            ]
        )
        columns = [shown, *(module(mask, code) for code in codes), real]
        return Preview(torch.stack(columns, dim=1).flatten(0, 1), len(columns))


__all__ = ["MASK_LABELS", "Mask2ImageParams", "Mask2ImageVariant", "one_hot_masks"]
