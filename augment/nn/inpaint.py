"""Inpainting networks: a completion network and a global + local critic, after Iizuka,
Simo-Serra and Ishikawa, 2017 ("Globally and Locally Consistent Image Completion"), which
extends Pathak et al.'s context encoder (2016), sized for 28-64 px images.

* **Completion network**: an encoder-decoder that never goes below 1/4 of the image side
  (detail survives) and widens its receptive field with *dilated* convolutions in the
  middle instead: a 3x3 conv of dilation d covers (2d + 1)^2 pixels with 9 weights, so
  dilations 2, 4, 8 at 1/4 resolution let a pixel in the middle of a hole see the
  context around the hole (Iizuka et al., section 3.1). Its input is the image with the
  holes blanked (0, mid-grey on the [-1, 1] scale) and the hole mask as one more channel.
* **Global + local critic**: one convolutional body reads the whole completed image
  (is the scene coherent?), a second reads a patch of half the image's side around the
  hole (is the filled region sharp and consistent with its border?); their pooled
  features are concatenated and a linear layer gives one logit (section 3.2).

Shapes: N batch, C image channels, (H, W) the image size, w the completion network's
width; sides halve as ``ceil(h/2)`` and come back with a resize to the encoder map's
size, so any height and width round-trips (as in :mod:`augment.nn.translate`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from augment.nn.dcgan import downsampling_stack
from augment.nn.translate import conv_norm_act, resize_to

__all__ = [
    "CompletionNetwork",
    "GlobalLocalCritic",
    "blank",
    "composite",
    "critic_doublings",
    "crop_around",
    "reconstruction_loss",
]


def dilated(width: int, dilation: int) -> nn.Sequential:
    """3x3 conv of ``dilation`` (zero padding ``dilation``: the side is kept even where
    the dilation exceeds the map, which reflect padding cannot do) -> IN -> ReLU:
    [N, width, h, w] -> same."""
    return nn.Sequential(
        nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation, bias=False),
        nn.InstanceNorm2d(width, affine=True),
        nn.ReLU(inplace=True),
    )


class CompletionNetwork(nn.Module):
    """(image f32[N,C,H,W] with holes blanked, mask f32[N,1,H,W], 1 = hole) -> f32[N,C,H,W]
    in (-1, 1): a prediction of every pixel (the caller keeps the known ones).

    5x5 conv at w; two stride-2 steps to 2w and 4w; one 3x3 conv and the ``dilations`` at
    4w on side H/4; one 3x3 conv; two upsampling steps (nearest resize to the encoder
    map's size, 3x3 conv) back to w at full size; a 3x3 conv to C channels and tanh.
    """

    def __init__(self, channels: int, width: int = 32, dilations: tuple[int, ...] = (2, 4, 8)):
        super().__init__()
        w = width
        self.stem = conv_norm_act(channels + 1, w, 5)  # [N, C+1, H, W] -> [N, w, H, W]
        # [N, w, H, W] -> [N, 2w, H/2, W/2] -> [N, 4w, H/4, W/4] (ceil at odd sides)
        self.down = nn.ModuleList(
            [conv_norm_act(w, 2 * w, 3, 2), conv_norm_act(2 * w, 4 * w, 3, 2)]
        )
        # shape-preserving at [N, 4w, H/4, W/4]: receptive field grows by 2d per layer
        self.middle = nn.Sequential(
            conv_norm_act(4 * w, 4 * w, 3),
            *(dilated(4 * w, d) for d in dilations),
            conv_norm_act(4 * w, 4 * w, 3),
        )
        # -> [N, 2w, H/2, W/2] -> [N, w, H, W], each after a nearest resize
        self.up = nn.ModuleList([conv_norm_act(4 * w, 2 * w, 3), conv_norm_act(2 * w, w, 3)])
        self.head = nn.Conv2d(w, channels, 3, padding=1, padding_mode="reflect")

    def forward(self, blanked: Tensor, mask: Tensor) -> Tensor:
        skips = [self.stem(torch.cat([blanked, mask], dim=1))]  # sizes to return to
        for down in self.down:
            skips.append(down(skips[-1]))
        x = self.middle(skips.pop())  # [N, 4w, H/4, W/4]
        for up in self.up:
            x = up(resize_to(x, skips.pop()))
        return torch.tanh(self.head(x))


def critic_doublings(side: int) -> int:
    """Stride-2 steps of a critic body reading ``side`` pixels: down to about 4 px
    (28 -> 7 after 2, 64 -> 4 after 4), at least 1."""
    return max(1, int(math.log2(max(side, 8) / 4)))


def crop_around(images: Tensor, boxes: Tensor, side: int) -> Tensor:
    """The ``side`` x ``side`` patch of each image centred on its box, shifted inside the
    image: images f32[N,C,H,W], boxes i64[N,4] as (top, left, bottom, right) ->
    f32[N,C,side,side]. Differentiable in ``images`` (advanced indexing)."""
    n, _, h, w = images.shape
    span = torch.arange(side, device=images.device)
    top = ((boxes[:, 0] + boxes[:, 2]) // 2 - side // 2).clamp(0, h - side)  # [N]
    left = ((boxes[:, 1] + boxes[:, 3]) // 2 - side // 2).clamp(0, w - side)
    rows = (top[:, None] + span)[:, :, None]  # [N, side, 1]
    cols = (left[:, None] + span)[:, None, :]  # [N, 1, side]
    index = torch.arange(n, device=images.device)[:, None, None]  # [N, 1, 1]
    # advanced indices on dims 0, 2, 3 broadcast to [N, side, side]; the sliced channel
    # dim goes last: [N, side, side, C] -> [N, C, side, side]
    return images[index, :, rows, cols].permute(0, 3, 1, 2)


class GlobalLocalCritic(nn.Module):
    """(image f32[N,C,S,S], boxes i64[N,4]) -> logits f32[N]: is the image real?

    Global body: ``critic_doublings(S)`` stride-2 4x4 convs (spectral norm, LeakyReLU)
    from ``width``; local body: the same on the ``S // 2`` patch around each image's box
    (:func:`crop_around`). Each body's map is averaged over its positions, the two
    vectors concatenated and mapped to one logit (spectral-normed linear). With
    ``local=False`` only the global body (Pathak et al.'s single critic).
    """

    def __init__(self, channels: int, image_size: int, width: int = 32, local: bool = True):
        super().__init__()
        self.patch = image_size // 2 if local else 0
        n = critic_doublings(image_size)
        # [N, C, S, S] -> [N, width * 2^(n-1), S / 2^n, S / 2^n]
        self.global_body = nn.Sequential(*downsampling_stack(channels, width, n, "none", True))
        features = width * 2 ** (n - 1)
        self.local_body: nn.Sequential | None = None
        if local:
            m = critic_doublings(self.patch)
            self.local_body = nn.Sequential(*downsampling_stack(channels, width, m, "none", True))
            features += width * 2 ** (m - 1)
        self.head = spectral_norm(nn.Linear(features, 1))  # [N, features] -> [N, 1]

    def forward(self, image: Tensor, boxes: Tensor) -> Tensor:
        parts = [self.global_body(image).mean(dim=(2, 3))]  # [N, c_global]
        if self.local_body is not None:
            patch = crop_around(image, boxes, self.patch)  # [N, C, S/2, S/2]
            parts.append(self.local_body(patch).mean(dim=(2, 3)))  # [N, c_local]
        return self.head(torch.cat(parts, dim=1)).squeeze(1)


def blank(image: Tensor, mask: Tensor) -> Tensor:
    """``image`` with its holes (``mask`` 1) set to 0, mid-grey on the [-1, 1] scale."""
    return image * (1 - mask)


def composite(image: Tensor, predicted: Tensor, mask: Tensor) -> Tensor:
    """The known pixels of ``image`` and the ``predicted`` ones in the holes: where ``mask``
    is 0 the result is ``image`` exactly (``x * 1 + p * 0 = x`` for finite ``p``)."""
    return image * (1 - mask) + predicted * mask


def reconstruction_loss(predicted: Tensor, image: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error over the hole pixels only (Pathak et al.'s masked L2, Iizuka et
    al.'s weighted MSE): ``sum(M * (P - X)^2) / (C * sum(M))``."""
    channels = image.shape[1]
    return (mask * (predicted - image) ** 2).sum() / (channels * mask.sum()).clamp_min(1.0)
