"""Image-to-image networks: CycleGAN's ResNet generator, Pix2Pix's U-Net, PatchGAN
discriminators, StarGAN's two-headed critic, a history buffer of fakes and a small
classifier for the class-consistency (semantic) loss.

Every generator is fully convolutional and takes any height and width: each upsampling
step resizes to the size of the matching encoder feature map, so odd sizes round-trip
(28 -> 14 -> 7 -> 4 -> 7 -> 14 -> 28) and the ONNX export keeps height and width dynamic.
Codes (StarGAN's target domain, a stochastic translator's noise vector) modulate the
instance norms of the residual blocks and of the decoder.

Shapes: N batch, C image channels, (H, W) the image size, D domains, K noise numbers;
a stride-2 3x3 conv with padding 1 maps a side H to ceil(H/2).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def conv_norm_act(
    c_in: int, c_out: int, kernel: int, stride: int = 1, norm: bool = True, slope: float = 0.0
) -> nn.Sequential:
    """conv (reflect padding) -> instance norm -> ReLU (``slope`` 0) or LeakyReLU.

    [N, c_in, H, W] -> [N, c_out, H', W'] with padding ``kernel // 2``: H' = H at stride 1
    (odd kernels), ceil(H/2) for a 3x3 at stride 2, floor(H/2) + 1 for a 4x4 at stride 2.
    """
    # no conv bias before a norm: the norm's mean subtraction would cancel it
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, padding_mode="reflect", bias=not norm)
    ]
    if norm:
        # per-sample, per-channel (x - mu) / sigma over H, W (Ulyanov et al., 2016) + affine;
        # no running statistics, so train and eval mode normalize alike
        layers.append(nn.InstanceNorm2d(c_out, affine=True))
    layers.append(nn.LeakyReLU(slope, inplace=True) if slope else nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def resize_to(x: Tensor, like: Tensor) -> Tensor:
    """``x`` upsampled (nearest) to the height and width of ``like``."""
    # [N, c, h, w] -> [N, c, H, W], (H, W) read from ``like`` at run time (dynamic in ONNX)
    return F.interpolate(x, size=like.shape[-2:], mode="nearest")


class ModulatedNorm(nn.Module):
    """Instance norm with a per-channel scale and shift: learned constants, or with
    ``code_dim`` > 0 computed from a code vector per sample (conditional instance norm,
    Dumoulin et al., 2017), e.g. a one-hot target domain.

    With a code ``c`` f32[N, code_dim]: ``[gamma, beta] = W c + b`` and
    ``y = IN(x) * (1 + gamma) + beta`` (FiLM-style: ``gamma = 0`` is the identity scale).
    """

    def __init__(self, width: int, code_dim: int = 0) -> None:
        super().__init__()
        # the affine of the plain norm is replaced by the code's scale and shift
        self.norm = nn.InstanceNorm2d(width, affine=code_dim == 0)
        self.film = nn.Linear(code_dim, 2 * width) if code_dim else None  # [N, code] -> [N, 2w]
        if self.film is not None:  # codes start as small random changes of scale and shift
            nn.init.zeros_(self.film.bias)  # (zero weights: a code ignored from the start)

    def forward(self, x: Tensor, code: Tensor | None = None) -> Tensor:
        x = self.norm(x)  # [N, width, H, W]
        if self.film is None:
            return x
        # [N, 2*width] -> [N, 2*width, 1, 1] -> scale, shift: [N, width, 1, 1] each
        scale, shift = self.film(code)[:, :, None, None].chunk(2, dim=1)
        return x * (1 + scale) + shift


class ConvNorm(nn.Module):
    """3x3 conv (reflect padding) -> instance norm, modulated by a per-sample code when
    ``code_dim`` > 0: the layer of every step that a code must reach.

    [N, c_in, H, W] -> [N, c_out, H, W]; no activation (the caller applies it).
    """

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
        # x + IN(conv(ReLU(IN(conv(x))))): [N, width, H, W] -> same; no ReLU after the sum
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

    Unlike CycleGAN's transposed convs, each upsampling is a nearest resize and a 3x3
    conv; the encoder maps are kept only for their sizes (no U-Net skips).
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
        code = num_domains + noise  # code_dim: one-hot domain ++ noise, D + K
        w = width
        self.stem = conv_norm_act(channels, w, 7)  # [N, C, H, W] -> [N, w, H, W]
        # [N, w, H, W] -> [N, 2w, H/2, W/2] -> [N, 4w, H/4, W/4] (ceil at odd sides)
        self.down = nn.ModuleList(
            [conv_norm_act(w, 2 * w, 3, 2), conv_norm_act(2 * w, 4 * w, 3, 2)]
        )
        # shape-preserving at [N, 4w, H/4, W/4]
        self.blocks = nn.ModuleList(ResidualBlock(4 * w, code) for _ in range(blocks))
        # -> [N, 2w, H/2, W/2] -> [N, w, H, W], each after a nearest resize
        self.up = nn.ModuleList([ConvNorm(4 * w, 2 * w, code), ConvNorm(2 * w, w, code)])
        self.head = nn.Conv2d(w, channels, 7, padding=3, padding_mode="reflect")  # -> [N,C,H,W]

    def forward(
        self, image: Tensor, domain: Tensor | None = None, noise: Tensor | None = None
    ) -> Tensor:
        # code [N, D + K]: one-hot target domain [N, D] ++ noise [N, K] (either may be absent)
        codes = [F.one_hot(domain, self.num_domains).to(image.dtype)] if self.num_domains else []
        codes += [noise] if self.noise else []
        code = torch.cat(codes, dim=1) if codes else None
        skips = [self.stem(image)]  # sizes to return to: H, then H/2
        for down in self.down:
            skips.append(down(skips[-1]))
        x = skips.pop()  # the bottleneck [N, 4w, H/4, W/4]
        for block in self.blocks:
            x = block(x, code)
        for up in self.up:
            # resize to the next encoder map's size (H/2, then H), conv, modulated IN, ReLU
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
        # channels per level, doubling and capped at 8*width: [w, 2w, 4w, 8w, 8w, ...]
        widths = [width * 2 ** min(i, 3) for i in range(levels + 1)]
        # [N, C+K, H, W] -> [N, w, H, W]; no norm, like Pix2Pix's first encoder layer
        self.stem = conv_norm_act(channels + noise, widths[0], 3, norm=False, slope=0.2)
        # encoder step i: [N, widths[i], h, w] -> [N, widths[i+1], ceil(h/2), ceil(w/2)]
        self.down = nn.ModuleList(
            conv_norm_act(widths[i], widths[i + 1], 3, 2, slope=0.2) for i in range(levels)
        )
        # decoder, deepest first: [N, widths[i+1] + widths[i], h, w] (upsampled ++ skip)
        # -> [N, widths[i], h, w]; dropout only in the two deepest steps (i >= levels - 2)
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
            # [N, K] -> [N, K, H, W] constant maps; [N, C, H, W] ++ maps -> [N, C+K, H, W]
            maps = noise[:, :, None, None].expand(-1, -1, *image.shape[2:])
            x = torch.cat([image, maps], dim=1)
        # encoder maps at H, H/2, ..., H/2^levels; the last one is the bottleneck
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.up:
            skip = skips.pop()
            # nearest resize to the skip's size, concatenate along channels, conv
            x = up(torch.cat([resize_to(x, skip), skip], dim=1))
        return torch.tanh(self.head(x))  # [N, w, H, W] -> [N, C, H, W]


class PatchDiscriminator(nn.Module):
    """PatchGAN: a grid of real/fake logits, each judging one patch (70x70 in the paper;
    here ``layers`` stride-2 steps, sized for small images).

    ``forward(image f32[N,C,H,W]) -> f32[N,1,h,w]``; ``num_domains`` > 0 adds StarGAN's
    domain-classification head: ``forward`` then returns (patch logits, f32[N,D]).
    ``norm`` False drops instance norm (a gradient penalty needs per-sample critics).

    Isola et al. (2017): the adversarial loss is averaged over the grid, so D only models
    local (high-frequency) structure. With the default ``layers=2`` each logit sees a
    26x26 input patch and a 28x28 image gives an 8x8 grid (28 -> 15 -> 8 -> 8 -> 8).
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
        # 4x4 stride-2 convs (padding 2: side h -> floor(h/2) + 1), no norm on the first
        trunk = [conv_norm_act(channels, width, 4, 2, norm=False, slope=0.2)]
        c = width
        for _ in range(1, layers):  # [N, c, h, w] -> [N, 2c, h/2 + 1, w/2 + 1]
            trunk.append(conv_norm_act(c, 2 * c, 4, 2, norm=norm, slope=0.2))
            c *= 2
        # one stride-1 3x3 step: [N, c, h, w] -> [N, 2c, h, w]
        trunk.append(conv_norm_act(c, 2 * c, 3, 1, norm=norm, slope=0.2))
        self.trunk = nn.Sequential(*trunk)
        self.patch = nn.Conv2d(2 * c, 1, 3, padding=1)  # [N, 2c, h, w] -> [N, 1, h, w]
        # StarGAN's D_cls: global average pool [N, 2c, h, w] -> [N, 2c] -> [N, D] logits
        self.domain = (
            nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * c, num_domains))
            if num_domains
            else None
        )

    def forward(self, image: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        h = self.trunk(image)  # shared features for both heads
        if self.domain is None:
            return self.patch(h)
        return self.patch(h), self.domain(h)

    def features(self, image: Tensor) -> list[Tensor]:
        """Every trunk step's output and, last, the patch logits f32[N,1,h,w]: what
        pix2pixHD's feature-matching loss compares between real and generated inputs."""
        maps = [image]
        for step in self.trunk:
            maps.append(step(maps[-1]))
        return [*maps[1:], self.patch(maps[-1])]


class DigitClassifier(nn.Module):
    """A small CNN over f32[N,C,H,W] -> class logits f32[N,K]: the class-consistency judge
    that PixelDA/CyCADA-style semantic losses train alongside the translator."""

    def __init__(self, channels: int, num_classes: int, width: int = 32) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            # [N, C, H, W] -> [N, w, H, W] -> max-pool [N, w, H/2, W/2] (floor)
            nn.Conv2d(channels, w, 3, padding=1),
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            # -> [N, 2w, H/2, W/2] -> [N, 2w, H/4, W/4]
            nn.Conv2d(w, 2 * w, 3, padding=1),
            nn.BatchNorm2d(2 * w),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            # -> [N, 4w, H/4, W/4] -> global average pool [N, 4w] -> logits [N, K]
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

    Zhu et al. (2017) use a buffer of 50 images; here ``images`` is f32[size, C, H, W]
    and ``count`` the number of slots filled so far.
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
        # detached: the pool feeds the discriminator's step only, never G's gradient
        out = fakes.detach().clone()
        for i in range(len(out)):
            n = int(self.count)
            # filling up: store the image and return it unchanged
            if n < self.size:
                self.images[n] = out[i]
                self.count += 1
            # full: with p = 1/2 return a uniformly chosen stored image and keep the new one
            elif torch.rand(()) < 0.5:
                k = int(torch.randint(self.size, ()))
                out[i], self.images[k] = self.images[k].clone(), out[i].clone()
        return out
