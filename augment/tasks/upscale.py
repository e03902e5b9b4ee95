"""Super-resolution: :class:`UpscaleParams` and the family's recipe :class:`UpscaleVariant`
(SRResNet, SRGAN, ESRGAN differ only in params and networks).

Exported contract: ``image f32[N,C,h,w] -> f32[N,C,h*scale,w*scale]``, both in [-1, 1].
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator
from torch import Tensor, nn

from augment import losses
from augment.errors import ConfigError
from augment.tasks import Task
from augment.variant import (
    Batch,
    ClampedExport,
    DataSpec,
    LossOutput,
    Params,
    PretrainPhase,
    Variant,
)


class UpscaleParams(Params):
    """Knobs of the super-resolution family (SRResNet, SRGAN, ESRGAN).

    Degradation model (how low-resolution inputs are made from the training images):
    Gaussian blur of ``blur`` sigma (high-resolution pixels), bicubic downscaling with
    anti-aliasing by the data's ``scale``, then Gaussian noise of std ``noise`` (on the
    [-1, 1] scale).
    """

    scale: int = Field(2, description="upscaling factor: a power of two (2, 4, 8)")
    lr_g: float = Field(1e-4, gt=0)
    lr_d: float = Field(1e-4, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    width: int = Field(32, ge=8, description="generator channels")
    blocks: int = Field(4, ge=1, description="residual blocks (RRDBs for rrdb)")
    rrdb: bool = Field(False, description="ESRGAN's residual-in-residual dense blocks")
    pixel_loss: Literal["l1", "mse"] = "l1"
    adversarial: float = Field(0.0, ge=0, description="adversarial weight; 0: no discriminator")
    loss: losses.Adversarial = "ns"
    feature: float = Field(
        0.0, ge=0, description="feature-loss weight, in the discriminator's features"
    )
    d_width: int = Field(32, ge=8, description="discriminator channels")
    pretrain_steps: int = Field(
        0, ge=0, description="generator steps with the pixel loss only (ESRGAN's PSNR phase)"
    )
    interpolation: float = Field(
        0.0, ge=0, le=1, description="exported weights: alpha * PSNR + (1 - alpha) * GAN"
    )
    blur: float = Field(0.0, ge=0)
    noise: float = Field(0.0, ge=0)

    @field_validator("scale")
    @classmethod
    def _power_of_two(cls, scale: int) -> int:
        if scale < 2 or scale & (scale - 1):
            raise ValueError("must be a power of two >= 2 (2, 4, 8)")
        return scale

    @model_validator(mode="after")
    def _check(self) -> UpscaleParams:
        if self.feature > 0 and self.adversarial == 0:
            raise ValueError("feature > 0 needs adversarial > 0 (features of the discriminator)")
        if self.interpolation > 0 and self.pretrain_steps == 0:
            raise ValueError("interpolation > 0 needs pretrain_steps > 0 (the PSNR weights)")
        return self


class UpscaleVariant(PretrainPhase, Variant):
    """Super-resolution by ``params.scale``: pixel loss, optionally adversarial + feature loss.

    The training images are the high-resolution targets; each batch is degraded on the fly
    (:meth:`degrade`) into the network's input. ``generator`` is a
    :class:`~augment.nn.sr.WithSnapshot`, which keeps the PSNR-phase weights for ESRGAN's
    network interpolation.
    """

    task: ClassVar[Task] = "upscale"
    Params: ClassVar[type[Params]] = UpscaleParams
    params: UpscaleParams

    def __init__(self, params: Params, data: DataSpec) -> None:
        super().__init__(params, data)
        if data.image_size % self.scale:
            raise ConfigError(
                f"{self.name}: image size {data.image_size} is not a multiple of scale {self.scale}"
            )

    @property
    def scale(self) -> int:
        return self.params.scale

    def metadata(self) -> dict[str, Any]:
        return {"scale": self.scale}

    def build_generator(self) -> nn.Module:
        from augment.nn.sr import SRGenerator, WithSnapshot

        p, d = self.params, self.data
        return WithSnapshot(SRGenerator(d.channels, p.scale, p.width, p.blocks, p.rrdb))

    def build_discriminator(self) -> nn.Module | None:
        from augment.nn.sr import SRDiscriminator

        if self.params.adversarial == 0:
            return None
        return SRDiscriminator(self.data.channels, self.params.d_width, self.data.image_size)

    def degrade(self, hr: Tensor) -> Tensor:
        """Low-resolution inputs for high-resolution images (the documented degradation)."""
        from augment.nn.sr import bicubic_downscale

        p = self.params
        if p.blur > 0:
            hr = gaussian_blur(hr, p.blur)
        lr = bicubic_downscale(hr, self.scale)
        if p.noise > 0:
            lr = lr + p.noise * torch.randn_like(lr)
        return lr.clamp(-1.0, 1.0)

    def discriminator_loss(self, batch: Batch) -> LossOutput:
        real = batch["image"]
        with torch.no_grad():
            fake = self.generator(self.degrade(real))
        real_logits = self.discriminator(real).logits
        fake_logits = self.discriminator(fake).logits
        loss = losses.discriminator_loss(self.params.loss, real_logits, fake_logits)
        logs = {"d_real": real_logits.mean().item(), "d_fake": fake_logits.mean().item()}
        return LossOutput(loss, logs)

    def generator_loss(self, batch: Batch) -> LossOutput:
        p = self.params
        generator = self.generator
        if p.pretrain_steps and self.step == p.pretrain_steps:
            generator.snapshot()  # the PSNR-phase weights, for network interpolation
        adversarial_phase = self.trains_discriminator()
        hr = batch["image"]
        sr = generator(self.degrade(hr))
        distance = F.l1_loss if p.pixel_loss == "l1" else F.mse_loss
        pixel = distance(sr, hr)
        loss, logs = pixel, {"pixel": pixel.item()}
        if adversarial_phase:
            fake = self.discriminator(sr)
            needs_real = p.feature > 0 or p.loss in losses.RELATIVISTIC
            real = self.discriminator(hr) if needs_real else None
            real_logits = None if real is None else real.logits.detach()
            adversarial = losses.generator_loss(p.loss, fake.logits, real_logits)
            loss = loss + p.adversarial * adversarial
            logs["g_adv"] = adversarial.item()
            if p.feature > 0 and real is not None:
                pairs = zip(fake.features, real.features, strict=True)
                feature = sum(F.l1_loss(f, r.detach()) for f, r in pairs)
                loss = loss + p.feature * feature
                logs["feature"] = float(feature.detach())
        return LossOutput(loss, logs)

    def export_module(self, generator: nn.Module) -> nn.Module:
        p = self.params  # (self.step: the last step trained, so the snapshot ran if >=)
        snapshot_taken = p.pretrain_steps and self.step >= p.pretrain_steps
        return ClampedExport(generator.interpolated(p.interpolation if snapshot_taken else 0.0))

    def example_inputs(self, batch_size: int, seed: int = 0) -> dict[str, Tensor]:
        rng = torch.Generator().manual_seed(seed)
        size = self.data.image_size // self.scale
        image = torch.rand(batch_size, self.data.channels, size, size, generator=rng) * 2 - 1
        return {"image": image}


def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur (reflect padding) of f32[N,C,H,W]."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
