"""StyleGAN2's networks (Karras et al., 2020, "Analyzing and Improving the Image Quality of
StyleGAN"), small and class-conditional as in StyleGAN2-ADA (Karras et al., 2020,
"Training Generative Adversarial Networks with Limited Data").

Generator ``(z f32[N,Z], label i64[N]) -> image f32[N,C,S,S]`` (linear output; the export
clamps it), on the spatial plan of the other generators (28 px: base 7, levels 7/14/28):

* **mapping network** f: z and the class embedding e_y [N, W] are each scaled to unit mean
  square (PixelNorm), concatenated and passed through ``mapping_layers`` equalized linear
  layers with LeakyReLU(0.2) and a learning-rate multiplier of 0.01: ``w = f(z, y)`` [N, W];
* **synthesis network** g: a learned constant [C_0, b, b]; one styled 3x3 conv at the base
  side, then per level a x2 bilinear upsampling and two styled 3x3 convs; every level has
  a toRGB (a modulated 1x1 conv, not demodulated), and the image is the sum of every
  level's output, each upsampled to the next side ("skip" generator, the paper's fig. 7b):
  ``rgb_k = up2(rgb_{k-1}) + toRGB_k(h_k)``;
* **modulated convolution** (section 2.2): styles ``s = A(w)`` [N, C_in] (an affine layer
  whose bias starts at 1), weights ``w'_ijk = s_i w_ijk`` demodulated to
  ``w''_ijk = w'_ijk / sqrt(sum_{i,k} w'_ijk^2 + 1e-8)``, which replaces StyleGAN's AdaIN
  (no more droplet artefacts). Computed as ``y_j = d_j conv(x * s, w)_j`` with
  ``d_j = rsqrt(sum_i s_i^2 sum_k w_ijk^2 + 1e-8)`` (an [N, C_in] x [C_in, C_out] product):
  the same values as per-sample weights, one convolution for the batch, and an ONNX
  graph whose batch axis stays dynamic (a grouped convolution's group count would be
  fixed when traced);
* **noise inputs**: after every styled conv, ``strength * n`` with a learned scalar strength
  (starting at 0) and one noise map per image, ``n`` ~ N(0, 1) [N, 1, H, W], while training.
  In eval mode (previews, export) ``n`` is a map drawn once at construction and kept with
  the weights (the authors' ``noise_mode='const'``), so an exported model is a function of
  (z, label) alone, as the synthesize contract requires.

Discriminator ``(image f32[N,C,S,S], label i64[N]) -> DiscriminatorOutput(logits f32[N],
None)``, residual (fig. 7c): fromRGB at the full side, per level
``(conv3x3 -> conv3x3 -> avgpool2 + avgpool2 -> conv1x1) / sqrt(2)``, then at the base side
minibatch standard deviation, a 3x3 conv, a dense layer and a conditional output as in
StyleGAN2-ADA: ``D(x, y) = <phi(x), e_y> / sqrt(M)`` with ``phi(x)`` [N, M] and e_y a class
embedding of M dims (a projection with no unconditional term).

Every weight uses the equalized learning rate of :mod:`augment.nn.progan`. Convolutions
that are not modulated (the discriminator) fold LeakyReLU's gain sqrt(2) into their He
constant, as ProGAN's do; the modulated ones are normalized by demodulation, so their
activation carries the gain (``sqrt(2) * LeakyReLU``), as in the paper.

Left out of the paper at this size (as its own small-image configuration, for CIFAR-10,
leaves them out): style mixing, path length regularization and lazy regularization;
upsampling is bilinear rather than the [1, 3, 3, 1] FIR filter.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augment.nn.dcgan import DiscriminatorOutput, MinibatchStd, spatial_plan
from augment.nn.progan import EqualizedConv2d, EqualizedLinear, PixelNorm, level_channels

#: LeakyReLU's slope and the gain that keeps its output at unit variance (He et al., 2015)
SLOPE, ACTIVATION_GAIN = 0.2, math.sqrt(2)


def up2(x: Tensor) -> Tensor:
    """[N, C, H, W] -> [N, C, 2H, 2W], bilinear."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class MappingNetwork(nn.Module):
    """(z f32[N,Z], label i64[N]) -> w f32[N,W]: PixelNorm(z) and PixelNorm(e_y) side by
    side through ``layers`` equalized linear layers (lr multiplier ``lr_mul``)."""

    def __init__(
        self, latent_dim: int, num_classes: int, style_dim: int, layers: int, lr_mul: float = 0.01
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, style_dim)
        nn.init.normal_(self.embed.weight)
        self.norm = PixelNorm(style_dim)  # [N, D] rows to unit mean square
        dims = [latent_dim + style_dim] + [style_dim] * layers
        self.net = nn.Sequential(
            *(
                module
                for d_in, d_out in zip(dims[:-1], dims[1:], strict=True)
                for module in (EqualizedLinear(d_in, d_out, lr_mul=lr_mul), nn.LeakyReLU(SLOPE))
            )
        )

    def forward(self, z: Tensor, label: Tensor) -> Tensor:
        return self.net(torch.cat([self.norm(z), self.norm(self.embed(label))], dim=1))


class ModulatedConv2d(nn.Module):
    """(x f32[N,C_in,H,W], w f32[N,W]) -> f32[N,C_out,H,W]: a same-padded k x k conv whose
    weights are scaled per image by the styles ``A(w)`` and, if ``demodulate``, normalized
    back to unit output variance (module docstring)."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, style_dim: int, demodulate: bool = True
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.scale = 1 / math.sqrt(c_in * kernel * kernel)  # equalized learning rate
        self.affine = EqualizedLinear(style_dim, c_in, gain=1.0, bias_init=1.0)  # A
        self.demodulate = demodulate

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        styles = self.affine(w)  # s [N, C_in]
        weight = self.weight * self.scale  # [C_out, C_in, k, k]
        y = F.conv2d(x * styles[:, :, None, None], weight, padding=weight.shape[-1] // 2)
        if not self.demodulate:
            return y
        # sum_{i,k} (s_i w_jik)^2 = sum_i s_i^2 (sum_k w_jik^2): [N, C_in] @ [C_in, C_out]
        energy = styles.square() @ weight.square().sum(dim=(2, 3)).t()
        return y * torch.rsqrt(energy + 1e-8)[:, :, None, None]


class StyledConv(nn.Module):
    """[N, C_in, s, s] (x2 upsampled first if ``upsample``: side ``side``) -> modulated 3x3
    conv -> + strength * noise -> + bias -> sqrt(2) LeakyReLU(0.2): [N, C_out, side, side]."""

    def __init__(self, c_in: int, c_out: int, style_dim: int, side: int, upsample: bool) -> None:
        super().__init__()
        self.upsample = upsample
        self.conv = ModulatedConv2d(c_in, c_out, 3, style_dim)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("noise_const", torch.randn(1, 1, side, side))  # eval mode's n
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        y = self.conv(up2(x) if self.upsample else x, w)
        if self.training:  # a fresh map per image and layer
            noise = torch.randn(y.shape[0], 1, y.shape[2], y.shape[3], device=y.device)
        else:
            noise = self.noise_const
        y = y + self.noise_strength * noise + self.bias[None, :, None, None]
        return F.leaky_relu(y, SLOPE) * ACTIVATION_GAIN


class ToRGB(nn.Module):
    """[N, C, s, s] -> [N, channels, s, s]: a modulated 1x1 conv (not demodulated) + bias."""

    def __init__(self, c_in: int, channels: int, style_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(c_in, channels, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None]


class StyleGenerator(nn.Module):
    """(z f32[N,Z], label i64[N]) -> image f32[N,C,S,S]: mapping, then synthesis from a
    learned constant (module docstring). Channels per level as ProGAN's
    (:func:`augment.nn.progan.level_channels`: 28 px, width 32 -> 128/64/32)."""

    def __init__(
        self,
        latent_dim: int,
        num_classes: int,
        channels: int,
        image_size: int,
        width: int = 32,
        style_dim: int = 128,
        mapping_layers: int = 2,
    ) -> None:
        super().__init__()
        base, doublings = spatial_plan(image_size)
        widths = level_channels(width, doublings + 1)
        self.mapping = MappingNetwork(latent_dim, num_classes, style_dim, mapping_layers)
        self.const = nn.Parameter(torch.randn(1, widths[0], base, base))
        self.base_conv = StyledConv(widths[0], widths[0], style_dim, base, upsample=False)
        # level k >= 1: [N, C_{k-1}, s, s] -> [N, C_k, 2s, 2s] through two styled convs
        self.blocks = nn.ModuleList(
            nn.ModuleList(
                [
                    StyledConv(c_in, c_out, style_dim, base * 2**k, upsample=True),
                    StyledConv(c_out, c_out, style_dim, base * 2**k, upsample=False),
                ]
            )
            for k, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:], strict=True), 1)
        )
        self.to_rgb = nn.ModuleList(ToRGB(c, channels, style_dim) for c in widths)

    def forward(self, z: Tensor, label: Tensor) -> Tensor:
        w = self.mapping(z, label)  # [N, W]: one w for every layer (no style mixing)
        # a copy per image, not an expanded view: a view of a parameter made under
        # inference mode requires grad without a graph, which module hooks (torch's flop
        # counter) cannot follow
        h = self.base_conv(self.const.repeat(z.shape[0], 1, 1, 1), w)  # [N, C_0, b, b]
        rgb = self.to_rgb[0](h, w)
        for (first, second), to_rgb in zip(self.blocks, self.to_rgb[1:], strict=True):
            h = second(first(h, w), w)
            rgb = up2(rgb) + to_rgb(h, w)  # the skip generator's running image
        return rgb


class ResidualDown(nn.Module):
    """[N, C_in, 2s, 2s] -> [N, C_out, s, s]: ``(main + skip) / sqrt(2)`` with main = 3x3
    conv, LeakyReLU, 3x3 conv to C_out, LeakyReLU, avgpool2 and skip = avgpool2, 1x1 conv
    to C_out (linear); the 1/sqrt(2) keeps the sum at the branches' variance."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            EqualizedConv2d(c_in, c_in, 3),
            nn.LeakyReLU(SLOPE),
            EqualizedConv2d(c_in, c_out, 3),
            nn.LeakyReLU(SLOPE),
            nn.AvgPool2d(2),
        )
        self.skip = nn.Sequential(nn.AvgPool2d(2), EqualizedConv2d(c_in, c_out, 1, gain=1.0))

    def forward(self, x: Tensor) -> Tensor:
        return (self.main(x) + self.skip(x)) / math.sqrt(2)


class StyleDiscriminator(nn.Module):
    """(image f32[N,C,S,S], label i64[N]) -> DiscriminatorOutput(logits f32[N], None):
    the residual discriminator with StyleGAN2-ADA's conditional output (module docstring)."""

    def __init__(
        self, num_classes: int, channels: int, image_size: int, width: int = 32, cmap_dim: int = 128
    ) -> None:
        super().__init__()
        base, doublings = spatial_plan(image_size)
        widths = level_channels(width, doublings + 1)  # base side first
        self.from_rgb = nn.Sequential(EqualizedConv2d(channels, widths[-1], 1), nn.LeakyReLU(SLOPE))
        # full side down to the base: C_L -> C_{L-1} -> ... -> C_0
        self.blocks = nn.Sequential(
            *(
                ResidualDown(c_in, c_out)
                for c_in, c_out in zip(widths[:0:-1], widths[-2::-1], strict=True)
            )
        )
        first = widths[0]
        self.epilogue = nn.Sequential(
            MinibatchStd(),
            EqualizedConv2d(first + 1, first, 3),
            nn.LeakyReLU(SLOPE),
            nn.Flatten(),
            EqualizedLinear(first * base**2, first),
            nn.LeakyReLU(SLOPE),
            EqualizedLinear(first, cmap_dim, gain=1.0),  # phi(x) [N, M]
        )
        self.embed = nn.Embedding(num_classes, cmap_dim)  # e_y
        nn.init.normal_(self.embed.weight)
        self.cmap_dim = cmap_dim

    def forward(self, image: Tensor, label: Tensor) -> DiscriminatorOutput:
        features = self.epilogue(self.blocks(self.from_rgb(image)))  # [N, M]
        logits = (features * self.embed(label)).sum(dim=1) / math.sqrt(self.cmap_dim)
        return DiscriminatorOutput(logits, None)
