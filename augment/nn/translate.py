"""Image-to-image networks: CycleGAN's ResNet generator, Pix2Pix's U-Net, PatchGAN
discriminators, StarGAN's two-headed critic, a history buffer of fakes and a small
classifier for the class-consistency (semantic) loss.

Every generator is fully convolutional and takes any height and width: each upsampling
step resizes to the size of the matching encoder feature map, so odd sizes round-trip
(28 -> 14 -> 7 -> 4 -> 7 -> 14 -> 28) and the ONNX export keeps height and width dynamic.
Codes (StarGAN's target domain, a stochastic translator's noise vector) modulate the
instance norms of the residual blocks and of the decoder.
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


class ModulatedNorm(nn.Module):
    """Instance norm with a per-channel scale and shift: learned constants, or with
    ``code_dim`` > 0 computed from a code vector per sample (conditional instance norm,
    Dumoulin et al., 2017), e.g. a one-hot target domain."""

    def __init__(self, width: int, code_dim: int = 0) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(width, affine=code_dim == 0)
        self.film = nn.Linear(code_dim, 2 * width) if code_dim else None
        if self.film is not None:  # codes start as small random changes of scale and shift
            nn.init.zeros_(self.film.bias)  # (zero weights: a code ignored from the start)

    def forward(self, x: Tensor, code: Tensor | None = None) -> Tensor:
        x = self.norm(x)
        if self.film is None:
            return x
        scale, shift = self.film(code)[:, :, None, None].chunk(2, dim=1)
        return x * (1 + scale) + shift


class ConvNorm(nn.Module):
    """3x3 conv (reflect padding) -> instance norm, modulated by a per-sample code when
    ``code_dim`` > 0: the layer of every step that a code must reach."""

    def __init__(self, c_in: int, c_out: int, code_dim: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, padding_mode="reflect", bias=False)
        self.norm = ModulatedNorm(c_out, code_dim)

    def forward(self, x: Tensor, code: Tensor | None = None) -> Tensor:
        return self.norm(self.conv(x), code)


class ResidualBlock(nn.Module):
    """Two 3x3 conv-IN layers plus the input (CycleGAN's block); with ``code_dim`` > 0 the
    norms are modulated by a per-sample code."""

    def __init__(self, width: int, code_dim: int = 0) -> None:
        super().__init__()
        self.first = ConvNorm(width, width, code_dim)
        self.second = ConvNorm(width, width, code_dim)

    def forward(self, x: Tensor, code: Tensor | None = None) -> Tensor:
        return x + self.second(F.relu(self.first(x, code)), code)


class ResnetGenerator(nn.Module):
    """c7-w, two stride-2 downsamplings, ``blocks`` residual blocks at 4w, two upsamplings.

    ``forward(image f32[N,C,H,W], domain i64[N] | None, noise f32[N,K] | None)
    -> f32[N,C,H,W]`` in (-1, 1). A per-sample code, the one-hot target domain
    (``num_domains`` > 0, StarGAN) and/or ``noise`` K standard normal numbers (a stochastic
    translator, like MUNIT's style code), modulates the norms of the residual blocks and
    of the decoder. Inputs are not the place for them: a map that is constant over the
    image (a one-hot domain, a global style) is erased by the first instance norm, and so
    is any per-sample global statistic of i.i.d. per-pixel noise maps; and a decoder with
    plain instance norms erases a per-sample colour shift, such as a new background.
    """

    def __init__(
        self,
        channels: int,
        width: int = 32,
        blocks: int = 6,
        num_domains: int = 0,
        noise: int = 0,
    ) -> None:
        super().__init__()
        self.num_domains, self.noise = num_domains, noise
        code = num_domains + noise
        w = width
        self.stem = conv_norm_act(channels, w, 7)
        self.down = nn.ModuleList(
            [conv_norm_act(w, 2 * w, 3, 2), conv_norm_act(2 * w, 4 * w, 3, 2)]
        )
        self.blocks = nn.ModuleList(ResidualBlock(4 * w, code) for _ in range(blocks))
        self.up = nn.ModuleList([ConvNorm(4 * w, 2 * w, code), ConvNorm(2 * w, w, code)])
        self.head = nn.Conv2d(w, channels, 7, padding=3, padding_mode="reflect")

    def forward(
        self, image: Tensor, domain: Tensor | None = None, noise: Tensor | None = None
    ) -> Tensor:
        codes = [F.one_hot(domain, self.num_domains).to(image.dtype)] if self.num_domains else []
        codes += [noise] if self.noise else []
        code = torch.cat(codes, dim=1) if codes else None
        skips = [self.stem(image)]  # sizes to return to: H, then H/2
        for down in self.down:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for block in self.blocks:
            x = block(x, code)
        for up in self.up:
            x = F.relu(up(resize_to(x, skips.pop()), code))
        return torch.tanh(self.head(x))


class UNetGenerator(nn.Module):
    """Pix2Pix's U-Net: ``levels`` stride-2 encoder steps, a decoder with skip connections.

    ``forward(image f32[N,C,H,W], noise f32[N,K] | None) -> f32[N,C,H,W]`` in (-1, 1).
    Dropout in the decoder's first steps is the paper's noise (off in eval mode, so exports
    are deterministic); ``noise`` > 0 also feeds a K-number code, spread over the image
    as K constant maps beside the input (BicycleGAN's way; the stem has no norm to erase
    them).
    """

    def __init__(
        self,
        channels: int,
        width: int = 32,
        levels: int = 3,
        dropout: float = 0.5,
        noise: int = 0,
    ) -> None:
        super().__init__()
        widths = [width * 2 ** min(i, 3) for i in range(levels + 1)]
        self.stem = conv_norm_act(channels + noise, widths[0], 3, norm=False, slope=0.2)
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

    def forward(self, image: Tensor, noise: Tensor | None = None) -> Tensor:
        x = image
        if noise is not None:
            maps = noise[:, :, None, None].expand(-1, -1, *image.shape[2:])
            x = torch.cat([image, maps], dim=1)
        skips = [self.stem(x)]
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
