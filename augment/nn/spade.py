"""SPADE (Park et al., 2019, "Semantic Image Synthesis with Spatially-Adaptive
Normalization"), sized for 28-64 px images: an image made for a label mask.

* **Spatially-adaptive normalization**: ``SPADE(x, m) = IN(x) * (1 + gamma(m)) + beta(m)``
  with ``gamma``, ``beta`` f32[N, c, h, w] computed per pixel from the mask ``m`` (resized
  to the feature map) by a small conv net. A plain norm followed by convolutions washes a
  mask given as input away on uniform regions (the paper's section 3.1: a one-label
  region normalizes to zero); modulating every norm with it keeps the layout at every
  depth.
* **Style code**: the paper encodes a style image into ``z`` (its VAE); here ``z`` (``noise``
  numbers, standard normal) is broadcast to planes beside the mask wherever ``gamma`` and
  ``beta`` are computed, so one mask gets many renderings. At the generator's input it
  would be erased by the first instance norm (a per-sample constant map), as
  :mod:`augment.nn.translate` notes for its codes.
* **Generator**: the mask downsampled to a quarter of the side goes through a 3x3 conv,
  then SPADE residual blocks (the paper's Figure 4) at 1/4, 1/2 and full side, each
  level reached by a nearest resize to the mask pyramid's size, so any height and width
  round-trips (``ceil`` halving, as in :mod:`augment.nn.pix2pixhd`).

The critic is pix2pixHD's multi-scale PatchGAN on (mask, image) stacked by channel
(:class:`augment.nn.pix2pixhd.MultiScaleDiscriminator`), with its feature-matching loss.
The optional mask segmenter of the recipe (mask consistency) is
:class:`augment.nn.segmenter.MaskSegmenter`.

Shapes: N batch, K mask labels (one-hot channels), Z style numbers, C image channels,
(H, W) the image size, w the generator's width.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from augment.nn.pix2pixhd import downsample
from augment.nn.translate import resize_to

__all__ = [
    "SPADE",
    "SPADEGenerator",
    "SPADEResBlock",
    "condition_planes",
    "instance_normalize",
]


def condition_planes(mask: Tensor, noise: Tensor | None, like: Tensor) -> Tensor:
    """The mask f32[N,K,H,W] resized (nearest) to ``like``'s height and width, and the
    style code f32[N,Z] broadcast to Z constant planes beside it: f32[N, K + Z, h, w]."""
    planes = F.interpolate(mask, size=like.shape[-2:], mode="nearest")
    if noise is None:
        return planes
    h, w = like.shape[-2:]
    return torch.cat([planes, noise[:, :, None, None].expand(-1, -1, h, w)], dim=1)


def instance_normalize(x: Tensor, eps: float = 1e-5) -> Tensor:
    """Parameter-free instance norm, ``(x - mu) / sqrt(var + eps)`` over each map's pixels,
    written out: after a resize the ONNX exporter no longer knows the channel count that
    ``nn.InstanceNorm2d(affine=False)`` needs, and these ops do not ask for it."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True)
    return (x - mean) * torch.rsqrt(var + eps)


class SPADE(nn.Module):
    """``IN(x) * (1 + gamma) + beta``, ``gamma`` and ``beta`` from the condition planes.

    x f32[N, c, h, w], condition f32[N, K + Z, h, w] -> f32[N, c, h, w]. The shared 3x3
    conv (``hidden`` channels, ReLU) reads the condition; two 3x3 convs give ``gamma`` and
    ``beta`` per pixel and channel (zero-initialised: the block starts as a plain norm).
    """

    def __init__(self, channels: int, condition: int, hidden: int = 32) -> None:
        super().__init__()
        self.shared = nn.Sequential(nn.Conv2d(condition, hidden, 3, padding=1), nn.ReLU())
        self.gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden, channels, 3, padding=1)
        for conv in (self.gamma, self.beta):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        features = self.shared(condition)  # [N, hidden, h, w]
        return instance_normalize(x) * (1 + self.gamma(features)) + self.beta(features)


class SPADEResBlock(nn.Module):
    """SPADE -> LeakyReLU(0.2) -> 3x3 conv, twice, plus a shortcut (SPADE -> 1x1 conv when
    the width changes): [N, c_in, h, w] -> [N, c_out, h, w] (Park et al., Figure 4)."""

    def __init__(self, c_in: int, c_out: int, condition: int, hidden: int = 32) -> None:
        super().__init__()
        middle = min(c_in, c_out)
        self.norm_0 = SPADE(c_in, condition, hidden)
        self.conv_0 = nn.Conv2d(c_in, middle, 3, padding=1)
        self.norm_1 = SPADE(middle, condition, hidden)
        self.conv_1 = nn.Conv2d(middle, c_out, 3, padding=1)
        self.shortcut: nn.Module | None = None
        if c_in != c_out:
            self.norm_s = SPADE(c_in, condition, hidden)
            self.shortcut = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        skip = x if self.shortcut is None else self.shortcut(self.norm_s(x, condition))
        h = self.conv_0(F.leaky_relu(self.norm_0(x, condition), 0.2))
        h = self.conv_1(F.leaky_relu(self.norm_1(h, condition), 0.2))
        return skip + h


class SPADEGenerator(nn.Module):
    """(mask f32[N,K,H,W] one-hot, noise f32[N,Z] | None) -> image f32[N,C,H,W] in (-1, 1).

    The mask pyramid: ``m0`` the mask, ``m1 = downsample(m0)``, ``m2 = downsample(m1)``
    (sides ``ceil(H/2)``, ``ceil(H/4)``). A 3x3 conv reads ``m2`` into [N, 4w, H/4, W/4];
    one SPADE block at 4w; resize to ``m1``'s size, a block to 2w; resize to ``m0``'s, a
    block to w; LeakyReLU, 3x3 conv to C, tanh. Every SPADE reads the mask (and the
    style planes) at its own resolution through ``hidden`` channels (the paper's 128;
    here the block's output width, which keeps the full-size block cheap).
    """

    def __init__(self, labels: int, channels: int, width: int = 32, noise: int = 0) -> None:
        super().__init__()
        self.noise = noise
        condition, w = labels + noise, width
        self.stem = nn.Conv2d(condition, 4 * w, 3, padding=1)  # [N, K+Z, H/4, W/4] -> 4w
        self.blocks = nn.ModuleList(
            [
                SPADEResBlock(4 * w, 4 * w, condition, 4 * w),  # at H/4
                SPADEResBlock(4 * w, 2 * w, condition, 2 * w),  # at H/2
                SPADEResBlock(2 * w, w, condition, w),  # at H
            ]
        )
        self.head = nn.Conv2d(w, channels, 3, padding=1)

    def forward(self, mask: Tensor, noise: Tensor | None = None) -> Tensor:
        pyramid = [mask, downsample(mask)]
        pyramid.append(downsample(pyramid[-1]))  # sizes H, H/2, H/4 (ceil)
        code = noise if self.noise else None
        x = self.stem(condition_planes(pyramid[2], code, pyramid[2]))
        for block, level in zip(self.blocks, reversed(pyramid), strict=True):
            x = resize_to(x, level)  # no-op at the first level
            x = block(x, condition_planes(mask, code, x))
        return torch.tanh(self.head(F.leaky_relu(x, 0.2)))
