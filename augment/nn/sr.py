"""Super-resolution networks: SRResNet (Ledig et al., 2017), RRDB (Wang et al., 2018), a
VGG-style discriminator that also returns its features, and ESRGAN's network interpolation.

Both generators are fully convolutional (any input height and width) and predict a
residual over bicubic upsampling of their input, so an untrained network starts from
bicubic quality instead of from noise.

Shapes: N batch, C image channels, (h, w) the low-resolution size, s = ``scale``,
``width`` the feature channels of the generator (the same at every block).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def check_scale(scale: int) -> int:
    """The number of x2 pixel-shuffle stages for ``scale`` (a power of two >= 2)."""
    stages = int(math.log2(scale)) if scale >= 2 else 0
    if stages == 0 or 2**stages != scale:
        raise ValueError(f"scale must be a power of two >= 2 (2, 4, 8), got {scale}")
    return stages


def bicubic_downscale(images: Tensor, scale: int) -> Tensor:
    """f32[N,C,H,W] -> f32[N,C,H/s,W/s]: anti-aliased bicubic (the degradation's core)."""
    # antialias=True widens the kernel by s (a low-pass before subsampling, as PIL and
    # MATLAB's imresize do); the clamp cuts bicubic's overshoot beyond [-1, 1]
    return F.interpolate(
        images, scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False
    ).clamp(-1.0, 1.0)


class Upsampler(nn.Sequential):
    """[N, width, h, w] -> [N, width, h*scale, w*scale] by conv + pixel shuffle x2 stages.

    Sub-pixel convolution (Shi et al., 2016): a 3x3 conv makes ``r^2 * width`` channels
    (r = 2) and ``PixelShuffle(r)`` rearranges each group of r^2 channels into an r x r
    block of pixels, [N, 4*width, h, w] -> [N, width, 2h, 2w], so the convolution runs at
    the low resolution.
    """

    def __init__(self, width: int, scale: int, activation: type[nn.Module]) -> None:
        layers: list[nn.Module] = []
        # log2(scale) stages; ``activation()`` is built with its defaults (PReLU: one
        # shared slope; LeakyReLU: slope 0.01)
        for _ in range(check_scale(scale)):
            layers += [nn.Conv2d(width, 4 * width, 3, padding=1), nn.PixelShuffle(2), activation()]
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """conv-BN-PReLU-conv-BN plus the input (SRResNet's block).

    [N, width, h, w] -> [N, width, h, w]: ``x + BN(conv(PReLU(BN(conv(x)))))``, 3x3 convs.
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1),
            nn.BatchNorm2d(width),
            # one learned negative slope per channel
            nn.PReLU(width),
            nn.Conv2d(width, width, 3, padding=1),
            nn.BatchNorm2d(width),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class DenseBlock(nn.Module):
    """Five convs, each seeing all previous features; no batch norm; residual scaled 0.2.

    ESRGAN's residual dense block, [N, width, h, w] -> [N, width, h, w]: conv ``i`` reads
    ``width + i * growth`` channels (the input and the ``i`` earlier outputs concatenated)
    and writes ``growth`` channels, the fifth writes ``width``; the output is
    ``x + beta * conv_5(...)`` with residual scaling ``beta = 0.2`` (Wang et al., 2018).
    """

    def __init__(self, width: int, growth: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(width + i * growth, growth if i < 4 else width, 3, padding=1)
            for i in range(5)
        )

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for i, conv in enumerate(self.convs):
            # [N, width + i*growth, h, w] -> [N, growth, h, w] (the last: [N, width, h, w])
            out = conv(torch.cat(features, dim=1))
            if i < 4:
                # LeakyReLU 0.2 on the four inner convs; the fifth stays linear
                features.append(F.leaky_relu(out, 0.2))
        return x + 0.2 * out


class RRDB(nn.Module):
    """Residual-in-residual dense block: three dense blocks, residual scaled 0.2.

    ``x + 0.2 * DB_3(DB_2(DB_1(x)))`` (ESRGAN, Wang et al., 2018); shape-preserving.
    """

    def __init__(self, width: int, growth: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(DenseBlock(width, growth) for _ in range(3)))

    def forward(self, x: Tensor) -> Tensor:
        return x + 0.2 * self.blocks(x)


class SRGenerator(nn.Module):
    """image f32[N,C,h,w] in [-1,1] -> f32[N,C,h*scale,w*scale]: bicubic + learned residual.

    ``body`` is SRResNet's residual blocks (``rrdb=False``) or ESRGAN's RRDBs. The output
    is not clamped or squashed, so it can leave [-1, 1].
    """

    def __init__(
        self, channels: int, scale: int, width: int, blocks: int, rrdb: bool, growth: int = 16
    ) -> None:
        super().__init__()
        self.scale = scale
        self.head = nn.Conv2d(channels, width, 3, padding=1)  # [N, width, h, w]
        # ``blocks`` shape-preserving blocks, then a 3x3 conv closing the long skip
        body = [RRDB(width, growth) if rrdb else ResidualBlock(width) for _ in range(blocks)]
        self.body = nn.Sequential(*body, nn.Conv2d(width, width, 3, padding=1))
        activation = nn.LeakyReLU if rrdb else nn.PReLU
        self.upsample = Upsampler(width, scale, activation)  # [N, width, sh, sw]
        self.tail = nn.Conv2d(width, channels, 3, padding=1)  # [N, C, sh, sw]
        nn.init.zeros_(self.tail.weight)  # start exactly at bicubic
        nn.init.zeros_(self.tail.bias)

    def forward(self, image: Tensor) -> Tensor:
        # [N, C, h, w] -> [N, C, sh, sw]; the residual below only adds the missing detail
        base = F.interpolate(image, scale_factor=self.scale, mode="bicubic", align_corners=False)
        features = self.head(image)  # [N, width, h, w]
        # long (global) skip over the body; upsample -> [N, width, sh, sw]; tail -> [N, C, sh, sw]
        residual = self.tail(self.upsample(features + self.body(features)))
        return base + residual


class Critique(NamedTuple):
    logits: Tensor  # [N]
    features: list[Tensor]  # one per block, for the feature (perceptual) loss


class SRDiscriminator(nn.Module):
    """VGG-style: conv pairs (stride 1, then 2) with LeakyReLU, global pooling, linear.

    Batch norm is left out so the relativistic and feature losses see per-image features.
    ``forward(image f32[N,C,S,S]) -> Critique``: logits f32[N] and the output of each
    block, f32[N, width * 2^i, S / 2^(i+1), S / 2^(i+1)] for block i.
    """

    def __init__(self, channels: int, width: int, image_size: int) -> None:
        super().__init__()
        # at most 4 halvings (S/16), each only while its input is still >= 4 px
        blocks, c, size = [], channels, image_size
        while size >= 4 and len(blocks) < 4:  # [N, c, s, s] -> [N, out, s/2, s/2]
            out = width * 2 ** len(blocks)
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(c, out, 3, padding=1),
                    nn.LeakyReLU(0.2),
                    # k4 s2 p1: halves the side
                    nn.Conv2d(out, out, 4, stride=2, padding=1),
                    nn.LeakyReLU(0.2),
                )
            )
            c, size = out, size // 2
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(c, 1)

    def forward(self, image: Tensor) -> Critique:
        features, x = [], image
        for block in self.blocks:
            x = block(x)
            features.append(x)
        # global average pool [N, c, s, s] -> [N, c] (any input size) -> [N, 1] -> [N]
        return Critique(self.head(x.mean(dim=(2, 3))).squeeze(1), features)


class WithSnapshot(nn.Module):
    """A generator plus a copy of its weights frozen at ``snapshot()`` (as buffers).

    ESRGAN takes the snapshot at the end of pixel-loss pre-training; exporting then
    interpolates ``alpha * snapshot + (1 - alpha) * current`` weights. Buffers are saved
    in checkpoints and copied (not averaged) by EMA, so resume and EMA keep it exact.

    ESRGAN's network interpolation (Wang et al., 2018, section 3.4) is written
    ``theta = (1 - a) * theta_PSNR + a * theta_GAN``: ``alpha`` here weights the snapshot
    (the PSNR-oriented net), so it is the paper's ``1 - a``; ``alpha = 0`` is the GAN net.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        # one buffer per parameter, same shape (names flattened by _key)
        for name, weight in net.named_parameters():
            self.register_buffer(_key(name), weight.detach().clone())
        self._register_load_state_dict_pre_hook(_drop_step_counter)

    def forward(self, image: Tensor) -> Tensor:
        return self.net(image)

    @torch.no_grad()
    def snapshot(self) -> None:
        for name, weight in self.net.named_parameters():
            getattr(self, _key(name)).copy_(weight)

    @torch.no_grad()
    def interpolated(self, alpha: float) -> nn.Module:
        """A copy of ``net`` with ``alpha * snapshot + (1 - alpha) * current`` weights."""
        import copy

        net = copy.deepcopy(self.net)
        if alpha == 0:
            return net
        for name, weight in net.named_parameters():
            # lerp: weight + alpha * (snapshot - weight); BN buffers stay the current ones
            weight.lerp_(getattr(self, _key(name)), alpha)
        return net


def _key(name: str) -> str:
    # buffer names may not contain ".": "head.weight" -> "snapshot__head__weight"
    return "snapshot__" + name.replace(".", "__")


def _drop_step_counter(state: dict[str, Any], prefix: str, *_: Any) -> None:
    """Older checkpoints kept the generator steps in a ``steps`` buffer here; the
    loop now tells the variant the step (``Variant.at_step``), so the key is dropped."""
    state.pop(prefix + "steps", None)
