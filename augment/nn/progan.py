"""Progressive growing (Karras et al., 2018, "Progressive Growing of GANs"), class-conditional.

Both networks start at the base side of the image's spatial plan (28 = 7*2^2: 7 px) and
grow a level at a time to the full side (7 -> 14 -> 28). A new level fades in: with
``alpha`` rising from 0 to 1 the generator's output is

    rgb = (1 - alpha) * up2(toRGB_{L-1}(h_{L-1})) + alpha * toRGB_L(block_L(h_{L-1}))

and the critic's input path the mirror image (``fromRGB`` of the half-size image blended
with the new block's output). The generator's image at level L (side base*2^L) is
nearest-upsampled to the full side, and the critic average-pools every image (real ones
too) to side base*2^L first, so both players always exchange full-size images and the
loop, the losses and the export contract never see the growth; it lives in one buffer,
``growth = [level, alpha]``, that the recipe sets from the step (``at_step``), so a run
resumes mid-growth exactly.

The paper's other pieces:

* **equalized learning rate**: weights drawn from N(0, 1) and scaled at run time by He's
  constant ``c = gain / sqrt(fan_in)`` (:class:`EqualizedConv2d`, :class:`EqualizedLinear`),
  so Adam's per-weight step sizes are equal relative to each layer's dynamic range;
* **pixel-wise feature normalization** in the generator after every conv:
  ``b = a / sqrt(mean_c(a^2) + 1e-8)`` (:class:`PixelNorm`);
* **minibatch standard deviation** before the critic's last block
  (:class:`augment.nn.dcgan.MinibatchStd`);
* no batch norm anywhere (WGAN-GP's penalty needs a per-sample critic).

Conditioning (not in the paper): a class embedding concatenated to z, as in
:class:`augment.nn.dcgan.ConditionalGenerator`, and a projection critic (Miyato & Koyama,
2018). Shapes: N batch, C image channels, K classes, S full side, ``width`` the channels
at the full side (doubling per level down, capped at 8 x width).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augment.nn.dcgan import DiscriminatorOutput, MinibatchStd, spatial_plan


class EqualizedLinear(nn.Module):
    """y = x (c W)^T + b with W ~ N(0, 1) and c = gain / sqrt(fan_in) applied per forward.

    ``lr_mul`` (StyleGAN's mapping network: 0.01) stores W and b divided by it and
    multiplies them back per forward, so Adam's steps on this layer are ``lr_mul`` times
    smaller relative to its values; ``bias_init`` is b's value at construction (StyleGAN's
    style affines start at 1: unmodulated)."""

    def __init__(
        self,
        d_in: int,
        d_out: int,
        gain: float = math.sqrt(2),
        lr_mul: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_out, d_in) / lr_mul)
        self.bias = nn.Parameter(torch.full((d_out,), bias_init / lr_mul))
        self.scale = gain / math.sqrt(d_in) * lr_mul
        self.lr_mul = lr_mul

    def forward(self, x: Tensor) -> Tensor:
        bias = self.bias if self.lr_mul == 1 else self.bias * self.lr_mul
        return F.linear(x, self.weight * self.scale, bias)


class EqualizedConv2d(nn.Module):
    """A k x k, stride-1, same-padded conv with W ~ N(0, 1) scaled by c = gain / sqrt(C_in k^2)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, gain: float = math.sqrt(2)) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.scale = gain / math.sqrt(c_in * kernel * kernel)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.weight.shape[-1] // 2)


class PixelNorm(nn.Module):
    """[N, C, H, W] -> the same, each pixel's feature vector scaled to unit mean square:
    ``x / sqrt(mean_c x^2 + 1e-8)``.

    The channel mean is a 1x1 convolution with weights 1/C rather than a mean over dim 1:
    onnxruntime's ReduceMean over a middle axis sums in an order that depends on the batch
    size (differences of ~1e-6 between a batch of 1 and of 5), while a convolution handles
    each image alike, so a seed gives the same images however a job is batched.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.full((1, channels, 1, 1), 1.0 / channels), False)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:  # [N, D]: a mean over the last, contiguous axis is batch-invariant
            return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)
        return x * torch.rsqrt(F.conv2d(x.square(), self.mean) + 1e-8)


def level_channels(width: int, levels: int) -> list[int]:
    """Channels at each level 0..levels-1: ``width`` at the full side, doubling per level
    down, capped at 8 x width (28 px, width 32: [128, 64, 32])."""
    return [min(width * 2 ** (levels - 1 - k), 8 * width) for k in range(levels)]


class Growing(nn.Module):
    """What both networks share: the level plan and the ``growth`` buffer [level, alpha]
    (persistent: checkpoints and the generator's EMA copy carry it)."""

    def __init__(self, image_size: int) -> None:
        super().__init__()
        self.base, doublings = spatial_plan(image_size)
        self.levels = doublings + 1  # sides base, 2 base, ..., image_size
        # full size from the start: a network built for export is the grown one
        self.register_buffer("growth", torch.tensor([float(self.levels - 1), 1.0]))

    def grow(self, level: int, alpha: float) -> None:
        self.growth.copy_(torch.tensor([float(level), alpha]))

    @property
    def stage(self) -> tuple[int, float]:
        """(level, alpha) as Python numbers: the graph a forward builds depends on them."""
        return int(self.growth[0]), float(self.growth[1])


class ProgressiveGenerator(Growing):
    """(z f32[N,latent], label i64[N]) -> image f32[N,C,S,S] (linear output; the export
    clamps it), drawn at the current level's side and nearest-upsampled to S."""

    def __init__(
        self, latent_dim: int, num_classes: int, channels: int, image_size: int, width: int = 32
    ) -> None:
        super().__init__(image_size)
        widths = level_channels(width, self.levels)
        self.embed = nn.Embedding(num_classes, latent_dim)
        nn.init.normal_(self.embed.weight)
        first = widths[0]
        # [N, 2 latent] -> [N, C_0 * base^2] -> [N, C_0, base, base] -> 3x3 conv
        self.project = nn.Sequential(
            PixelNorm(2 * latent_dim),
            EqualizedLinear(2 * latent_dim, first * self.base**2, gain=math.sqrt(2) / 4),
        )
        self.head = nn.Sequential(
            nn.LeakyReLU(0.2),
            PixelNorm(first),
            EqualizedConv2d(first, first, 3),
            nn.LeakyReLU(0.2),
            PixelNorm(first),
        )
        # level k >= 1: [N, C_{k-1}, s, s] -> up x2 -> two 3x3 convs -> [N, C_k, 2s, 2s]
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Upsample(scale_factor=2.0, mode="nearest"),
                EqualizedConv2d(c_in, c_out, 3),
                nn.LeakyReLU(0.2),
                PixelNorm(c_out),
                EqualizedConv2d(c_out, c_out, 3),
                nn.LeakyReLU(0.2),
                PixelNorm(c_out),
            )
            for c_in, c_out in zip(widths[:-1], widths[1:], strict=True)
        )
        # toRGB_k: 1x1 conv, linear (gain 1), one per level
        self.to_rgb = nn.ModuleList(EqualizedConv2d(c, channels, 1, gain=1.0) for c in widths)
        self.top = first

    def forward(self, z: Tensor, label: Tensor) -> Tensor:
        level, alpha = self.stage
        h = self.project(torch.cat([z, self.embed(label)], dim=1))
        h = self.head(h.view(-1, self.top, self.base, self.base))
        previous = h
        for block in self.blocks[:level]:
            previous, h = h, block(h)
        rgb = self.to_rgb[level](h)  # [N, C, base 2^L, base 2^L]
        if level > 0 and alpha < 1:  # fading in: blend with the last level's image, upsampled
            old = F.interpolate(self.to_rgb[level - 1](previous), scale_factor=2.0, mode="nearest")
            rgb = torch.lerp(old, rgb, alpha)
        factor = 2 ** (self.levels - 1 - level)
        return F.interpolate(rgb, scale_factor=float(factor), mode="nearest") if factor > 1 else rgb


class ProgressiveDiscriminator(Growing):
    """(image f32[N,C,S,S], label i64[N]) -> DiscriminatorOutput(logits f32[N], None): the
    image average-pooled to the current level's side, read from that level down."""

    def __init__(self, num_classes: int, channels: int, image_size: int, width: int = 32) -> None:
        super().__init__(image_size)
        widths = level_channels(width, self.levels)
        self.from_rgb = nn.ModuleList(
            nn.Sequential(EqualizedConv2d(channels, c, 1), nn.LeakyReLU(0.2)) for c in widths
        )
        # level k >= 1: [N, C_k, 2s, 2s] -> two 3x3 convs -> avg pool -> [N, C_{k-1}, s, s]
        self.blocks = nn.ModuleList(
            nn.Sequential(
                EqualizedConv2d(c_out, c_out, 3),
                nn.LeakyReLU(0.2),
                EqualizedConv2d(c_out, c_in, 3),
                nn.LeakyReLU(0.2),
                nn.AvgPool2d(2),
            )
            for c_in, c_out in zip(widths[:-1], widths[1:], strict=True)
        )
        first = widths[0]
        # the base block: minibatch std (+1 channel), 3x3 conv, dense, then the logit
        self.features = nn.Sequential(
            MinibatchStd(),
            EqualizedConv2d(first + 1, first, 3),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            EqualizedLinear(first * self.base**2, first),
            nn.LeakyReLU(0.2),
        )
        self.adversarial = EqualizedLinear(first, 1, gain=1.0)
        self.projection = nn.Embedding(num_classes, first)  # e_y: D = psi(h) + <e_y, h>
        nn.init.normal_(self.projection.weight, 0.0, 1.0 / math.sqrt(first))

    def forward(self, image: Tensor, label: Tensor) -> DiscriminatorOutput:
        level, alpha = self.stage
        factor = 2 ** (self.levels - 1 - level)
        x = F.avg_pool2d(image, factor) if factor > 1 else image  # [N, C, base 2^L, ...]
        h = self.from_rgb[level](x)
        if level > 0:
            h = self.blocks[level - 1](h)
            if alpha < 1:  # fading in: the half-size image through the last level's fromRGB
                h = torch.lerp(self.from_rgb[level - 1](F.avg_pool2d(x, 2)), h, alpha)
        for block in reversed(self.blocks[: level - 1] if level > 0 else []):
            h = block(h)
        h = self.features(h)  # [N, C_0]
        logits = self.adversarial(h).squeeze(1) + (self.projection(label) * h).sum(dim=1)
        return DiscriminatorOutput(logits, None)


def growth_at(progress: float, levels: int, fade: float) -> tuple[int, float]:
    """(level, alpha) after a fraction ``progress`` of the run: the run is cut into
    ``levels`` equal spans, one per level; a new level's first ``fade`` of its span blends
    it in (alpha 0 -> 1), the rest trains it at full strength; level 0 starts at alpha 1."""
    position = min(progress, 1.0) * levels
    level = min(int(position), levels - 1)
    within = position - level
    alpha = 1.0 if level == 0 or fade == 0 else min(within / fade, 1.0)
    return level, alpha
