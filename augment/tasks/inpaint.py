"""Inpainting: :class:`InpaintParams`, the random holes it trains on, and the family's
recipe :class:`InpaintVariant` (a context encoder with global + local critics).

Exported contract: ``image f32[N,C,H,W]`` in [-1, 1] and ``mask f32[N,1,H,W]`` (1: a
hole to fill, 0: a known pixel) ``-> image f32[N,C,H,W]``; outside the holes the output
*is* the input, exactly (the exported module composites, and the runtime again).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from augment import losses
from augment.nn.inpaint import blank, composite, reconstruction_loss
from augment.tasks import Task
from augment.variant import (
    Batch,
    FirstRows,
    LossOutput,
    Params,
    PretrainPhase,
    Preview,
    Variant,
    device_of,
)

#: Rows of the training preview (one training image of each class, up to this many).
PREVIEW_ROWS = 10


class InpaintParams(Params):
    """Knobs of the inpainting family.

    Holes: each training image gets ``holes`` axis-aligned rectangles, each side drawn
    uniformly between ``hole_min`` and ``hole_max`` of the image side (Iizuka et al.:
    96-128 of 256 px, 0.375-0.5), placed uniformly inside the image.
    """

    width: int = Field(32, ge=8, description="completion network channels")
    dilations: tuple[int, ...] = Field(
        (2, 4, 8), min_length=1, description="dilated 3x3 convs in the middle, at 1/4 side"
    )
    d_width: int = Field(32, ge=8, description="critic channels")
    adversarial: float = Field(
        4e-4, ge=0, description="adversarial weight (Iizuka's alpha); 0: reconstruction only"
    )
    loss: losses.Adversarial = "ns"
    local_critic: bool = Field(True, description="add the local critic on the hole's patch")
    pretrain_steps: int = Field(
        0, ge=0, description="generator steps on the reconstruction loss alone first"
    )
    holes: int = Field(1, ge=1, le=8, description="holes per training image")
    hole_min: float = Field(0.25, gt=0, le=1, description="smallest hole side / image side")
    hole_max: float = Field(0.5, gt=0, le=1, description="largest hole side / image side")

    @model_validator(mode="after")
    def _check(self) -> InpaintParams:
        if self.hole_min > self.hole_max:
            raise ValueError(f"hole_min {self.hole_min} exceeds hole_max {self.hole_max}")
        if any(d < 1 for d in self.dilations):
            raise ValueError(f"dilations must be >= 1, got {list(self.dilations)}")
        return self


def random_holes(
    count: int,
    height: int,
    width: int,
    holes: int,
    hole_range: tuple[float, float],
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor]:
    """Masks of ``holes`` random rectangles per image and each image's first rectangle:
    (f32[count,1,H,W] with 1 inside a hole, i64[count,4] as (top, left, bottom, right)).

    Sides are ``round(u * side)`` for ``u`` uniform in ``hole_range`` (at least 1 pixel,
    at most the side); corners uniform over the positions that keep the hole inside.
    Drawn from ``generator`` (None: torch's global generator, which checkpoints restore).
    """
    low, high = hole_range

    def draw(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=generator).to(device)

    sides = torch.tensor([height, width], device=device)  # [2]
    extent = (low + (high - low) * draw(count, holes, 2)) * sides  # [count, holes, 2]
    extent = extent.round().long().clamp(1).minimum(sides)
    corner = (draw(count, holes, 2) * (sides - extent + 1)).long()  # top-left, inside
    boxes = torch.cat([corner, corner + extent], dim=2)  # [count, holes, 4]
    ys = torch.arange(height, device=device)[None, None, :]  # [1, 1, H]
    xs = torch.arange(width, device=device)[None, None, :]
    in_rows = (ys >= boxes[..., 0:1]) & (ys < boxes[..., 2:3])  # [count, holes, H]
    in_cols = (xs >= boxes[..., 1:2]) & (xs < boxes[..., 3:4])  # [count, holes, W]
    inside = in_rows[..., :, None] & in_cols[..., None, :]  # [count, holes, H, W]
    return inside.any(dim=1, keepdim=True).float(), boxes[:, 0]


class Inpainter(nn.Module):
    """The exported module: (image f32[N,C,H,W], mask f32[N,1,H,W]) -> f32[N,C,H,W].

    ``x (1 - m) + clamp(G(x (1 - m), m), -1, 1) m``: the completion network sees only
    the known pixels, and where ``m`` is 0 the output is ``x`` exactly."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        predicted = self.network(blank(image, mask), mask).clamp(-1.0, 1.0)
        return composite(image, predicted, mask)


class InpaintVariant(PretrainPhase, Variant):
    """Fill holes: reconstruction loss in the holes plus, weighted by ``adversarial``, a
    critic's verdict on the completed image (global, and local around the hole).

    Every batch of real training images gets fresh random holes
    (:func:`random_holes`); the critic compares the real images with their completions,
    both read around the same box. ``pretrain_steps`` train the completion network on
    the reconstruction loss alone before the critic starts (Iizuka et al.'s first phase).
    """

    task: ClassVar[Task] = "inpaint"
    Params: ClassVar[type[Params]] = InpaintParams
    params: InpaintParams

    def metadata(self) -> dict[str, Any]:
        """The training holes' side range (what the model has learnt to fill)."""
        return {"hole_range": [self.params.hole_min, self.params.hole_max]}

    def build_generator(self) -> nn.Module:
        from augment.nn.inpaint import CompletionNetwork

        p = self.params
        return CompletionNetwork(self.data.channels, p.width, tuple(p.dilations))

    def build_discriminator(self) -> nn.Module | None:
        from augment.nn.inpaint import GlobalLocalCritic

        p, d = self.params, self.data
        if p.adversarial == 0:
            return None
        return GlobalLocalCritic(d.channels, d.image_size, p.d_width, p.local_critic)

    def holes(
        self, image: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Random training holes for a batch f32[N,C,H,W]: (mask, first boxes)."""
        p = self.params
        n, _, h, w = image.shape
        return random_holes(n, h, w, p.holes, (p.hole_min, p.hole_max), generator, image.device)

    def complete(self, network: nn.Module, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """(the completed image, the network's raw prediction of every pixel)."""
        predicted = network(blank(image, mask), mask)
        return composite(image, predicted, mask), predicted

    def discriminator_loss(self, batch: Batch) -> LossOutput:
        real = batch["image"]
        mask, boxes = self.holes(real)
        with torch.no_grad():
            fake, _ = self.complete(self.generator, real, mask)
        real_logits = self.discriminator(real, boxes)
        fake_logits = self.discriminator(fake, boxes)
        loss = losses.discriminator_loss(self.params.loss, real_logits, fake_logits)
        logs = {"d_real": real_logits.mean().item(), "d_fake": fake_logits.mean().item()}
        return LossOutput(loss, logs)

    def generator_loss(self, batch: Batch) -> LossOutput:
        p = self.params
        real = batch["image"]
        mask, boxes = self.holes(real)
        completed, predicted = self.complete(self.generator, real, mask)
        reconstruction = reconstruction_loss(predicted, real, mask)
        loss, logs = reconstruction, {"hole_mse": reconstruction.item()}
        if self.trains_discriminator():
            fake_logits = self.discriminator(completed, boxes)
            real_logits = None
            if p.loss in losses.RELATIVISTIC:
                real_logits = self.discriminator(real, boxes).detach()
            adversarial = losses.generator_loss(p.loss, fake_logits, real_logits)
            loss = loss + p.adversarial * adversarial
            logs["g_adv"] = adversarial.item()
        return LossOutput(loss, logs)

    def export_module(self, generator: nn.Module) -> nn.Module:
        return Inpainter(generator)

    def example_inputs(self, batch_size: int, seed: int = 0) -> dict[str, Tensor]:
        rng = torch.Generator().manual_seed(seed)
        size, channels = self.data.image_size, self.data.channels
        image = torch.rand(batch_size, channels, size, size, generator=rng) * 2 - 1
        mask, _ = self.holes(image, rng)
        return {"image": image, "mask": mask}

    def preview(self, module: nn.Module, n: int, seed: int, first_rows: FirstRows) -> Preview:
        """Rows of ``with holes | filled | original`` for the first training image of each
        class (up to :data:`PREVIEW_ROWS`), holes drawn from ``seed``."""
        image = first_rows("label", 1)["image"][:PREVIEW_ROWS].to(device_of(module))
        mask, _ = self.holes(image, torch.Generator().manual_seed(seed))  # drawn on the CPU
        filled = module(image, mask)
        columns = [image * (1 - mask), filled, image]
        return Preview(torch.stack(columns, dim=1).flatten(0, 1), len(columns))


__all__ = ["InpaintParams", "InpaintVariant", "Inpainter", "random_holes"]
