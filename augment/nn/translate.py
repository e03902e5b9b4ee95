"""Image-to-image networks: CycleGAN's ResNet generator, Pix2Pix's U-Net, PatchGAN
discriminators, StarGAN's two-headed critic, a history buffer of fakes and a small
classifier for the class-consistency (semantic) loss.

Every generator is fully convolutional and takes any height and width: each upsampling
step resizes to the size of the matching encoder feature map, so odd sizes round-trip
(28 -> 14 -> 7 -> 4 -> 7 -> 14 -> 28) and the ONNX export keeps height and width dynamic.
Domain conditioning (StarGAN) is a one-hot map per domain concatenated to the input.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def conv_norm_act(
    c_in: int, c_out: int, kernel: int, stride: int = 1, norm: bool = True, slope: float = 0.0
) -> nn.Sequential:
    """conv (reflect padding) -> instance norm -> ReLU (``slope`` 0) or LeakyReLU."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, padding_mode="reflect", bias=not norm)
    ]
    if norm:
        layers.append(nn.InstanceNorm2d(c_out, affine=True))
    layers.append(nn.LeakyReLU(slope, inplace=True) if slope else nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def resize_to(x: Tensor, like: Tensor) -> Tensor:
    """``x`` upsampled (nearest) to the height and width of ``like``."""
    return F.interpolate(x, size=like.shape[-2:], mode="nearest")


def domain_maps(image: Tensor, domain: Tensor, num_domains: int) -> Tensor:
    """``image`` f32[N,C,H,W] with one constant one-hot map per domain: f32[N,C+D,H,W]."""
    onehot = F.one_hot(domain, num_domains).to(image.dtype)[:, :, None, None]
    return torch.cat([image, onehot * torch.ones_like(image[:, :1])], dim=1)


class ResidualBlock(nn.Module):
    """Two 3x3 conv-IN layers plus the input (CycleGAN's block)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_norm_act(width, width, 3),
            nn.Conv2d(width, width, 3, padding=1, padding_mode="reflect", bias=False),
            nn.InstanceNorm2d(width, affine=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """c7-w, two stride-2 downsamplings, ``blocks`` residual blocks at 4w, two upsamplings.

    ``forward(image f32[N,C,H,W] (+ domain i64[N])) -> f32[N,C,H,W]`` in (-1, 1);
    ``num_domains`` > 0 adds StarGAN's target-domain maps to the input.
    """

    def __init__(self, channels: int, width: int = 32, blocks: int = 6, num_domains: int = 0):
        super().__init__()
        self.num_domains = num_domains
        w = width
        self.stem = conv_norm_act(channels + num_domains, w, 7)
        self.down = nn.ModuleList(
            [conv_norm_act(w, 2 * w, 3, 2), conv_norm_act(2 * w, 4 * w, 3, 2)]
        )
        self.blocks = nn.Sequential(*(ResidualBlock(4 * w) for _ in range(blocks)))
        self.up = nn.ModuleList([conv_norm_act(4 * w, 2 * w, 3), conv_norm_act(2 * w, w, 3)])
        self.head = nn.Conv2d(w, channels, 7, padding=3, padding_mode="reflect")

    def forward(self, image: Tensor, domain: Tensor | None = None) -> Tensor:
        x = image if domain is None else domain_maps(image, domain, self.num_domains)
        skips = [self.stem(x)]  # sizes to return to: H, then H/2
        for down in self.down:
            skips.append(down(skips[-1]))
        x = self.blocks(skips.pop())
        for up in self.up:
            x = up(resize_to(x, skips.pop()))
        return torch.tanh(self.head(x))


class UNetGenerator(nn.Module):
    """Pix2Pix's U-Net: ``levels`` stride-2 encoder steps, a decoder with skip connections.

    ``forward(image f32[N,C,H,W]) -> f32[N,C,H,W]`` in (-1, 1). Dropout in the decoder's
    first steps is the only noise, as in the paper (off in eval mode, so exports are
    deterministic).
    """

    def __init__(self, channels: int, width: int = 32, levels: int = 3, dropout: float = 0.5):
        super().__init__()
        widths = [width * 2 ** min(i, 3) for i in range(levels + 1)]
        self.stem = conv_norm_act(channels, widths[0], 3, norm=False, slope=0.2)
        self.down = nn.ModuleList(
            conv_norm_act(widths[i], widths[i + 1], 3, 2, slope=0.2) for i in range(levels)
        )
        self.up = nn.ModuleList(
            nn.Sequential(
                conv_norm_act(widths[i + 1] + widths[i], widths[i], 3),
                nn.Dropout(dropout if i >= levels - 2 else 0.0),
            )
            for i in reversed(range(levels))
        )
        self.head = nn.Conv2d(widths[0], channels, 3, padding=1, padding_mode="reflect")

    def forward(self, image: Tensor) -> Tensor:
        skips = [self.stem(image)]
        for down in self.down:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.up:
            skip = skips.pop()
            x = up(torch.cat([resize_to(x, skip), skip], dim=1))
        return torch.tanh(self.head(x))


class PatchDiscriminator(nn.Module):
    """PatchGAN: a grid of real/fake logits, each judging one patch (70x70 in the paper;
    here ``layers`` stride-2 steps, sized for small images).

    ``forward(image f32[N,C,H,W]) -> f32[N,1,h,w]``; ``num_domains`` > 0 adds StarGAN's
    domain-classification head: ``forward`` then returns (patch logits, f32[N,D]).
    ``norm`` False drops instance norm (a gradient penalty needs per-sample critics).
    """

    def __init__(
        self,
        channels: int,
        width: int = 32,
        layers: int = 2,
        num_domains: int = 0,
        norm: bool = True,
    ) -> None:
        super().__init__()
        trunk = [conv_norm_act(channels, width, 4, 2, norm=False, slope=0.2)]
        c = width
        for _ in range(1, layers):
            trunk.append(conv_norm_act(c, 2 * c, 4, 2, norm=norm, slope=0.2))
            c *= 2
        trunk.append(conv_norm_act(c, 2 * c, 3, 1, norm=norm, slope=0.2))
        self.trunk = nn.Sequential(*trunk)
        self.patch = nn.Conv2d(2 * c, 1, 3, padding=1)
        self.domain = (
            nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * c, num_domains))
            if num_domains
            else None
        )

    def forward(self, image: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        h = self.trunk(image)
        if self.domain is None:
            return self.patch(h)
        return self.patch(h), self.domain(h)


class DigitClassifier(nn.Module):
    """A small CNN over f32[N,C,H,W] -> class logits f32[N,K]: the class-consistency judge
    that PixelDA/CyCADA-style semantic losses train alongside the translator."""

    def __init__(self, channels: int, num_classes: int, width: int = 32) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(channels, w, 3, padding=1),
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1),
            nn.BatchNorm2d(2 * w),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1),
            nn.BatchNorm2d(4 * w),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4 * w, num_classes),
        )

    def forward(self, image: Tensor) -> Tensor:
        return self.net(image)


class ImagePool(nn.Module):
    """CycleGAN's history of generated images (Shrivastava et al., 2017): the critic sees a
    mix of current fakes and older ones, which damps oscillation.

    The history is a buffer, so it is saved and restored with the discriminator's state
    and a resumed run draws exactly what an uninterrupted one would (the torch RNG is
    checkpointed too).
    """

    def __init__(self, size: int, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, *shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def forward(self, fakes: Tensor) -> Tensor:
        """A batch like ``fakes``: each image, with probability 1/2 once the history is
        full, swapped for a stored one (which the new image replaces)."""
        if self.size == 0:
            return fakes
        out = fakes.detach().clone()
        for i in range(len(out)):
            n = int(self.count)
            if n < self.size:
                self.images[n] = out[i]
                self.count += 1
            elif torch.rand(()) < 0.5:
                k = int(torch.randint(self.size, ()))
                out[i], self.images[k] = self.images[k].clone(), out[i].clone()
        return out
