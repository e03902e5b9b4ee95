"""Super-resolution networks: SRResNet (Ledig et al., 2017), RRDB (Wang et al., 2018), a
VGG-style discriminator that also returns its features, and ESRGAN's network interpolation.

Both generators are fully convolutional (any input height and width) and predict a
residual over bicubic upsampling of their input, so an untrained network starts from
bicubic quality instead of from noise.
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
    return F.interpolate(
        images, scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False
    ).clamp(-1.0, 1.0)


class Upsampler(nn.Sequential):
    """[N, w, h, w] -> [N, w, h*scale, w*scale] by conv + pixel shuffle x2 stages."""

    def __init__(self, width: int, scale: int, activation: type[nn.Module]) -> None:
        layers: list[nn.Module] = []
        for _ in range(check_scale(scale)):
            layers += [nn.Conv2d(width, 4 * width, 3, padding=1), nn.PixelShuffle(2), activation()]
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """conv-BN-PReLU-conv-BN plus the input (SRResNet's block)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.PReLU(width),
            nn.Conv2d(width, width, 3, padding=1),
            nn.BatchNorm2d(width),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class DenseBlock(nn.Module):
    """Five convs, each seeing all previous features; no batch norm; residual scaled 0.2."""

    def __init__(self, width: int, growth: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(width + i * growth, growth if i < 4 else width, 3, padding=1)
            for i in range(5)
        )

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for i, conv in enumerate(self.convs):
            out = conv(torch.cat(features, dim=1))
            if i < 4:
                features.append(F.leaky_relu(out, 0.2))
        return x + 0.2 * out


class RRDB(nn.Module):
    """Residual-in-residual dense block: three dense blocks, residual scaled 0.2."""

    def __init__(self, width: int, growth: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(DenseBlock(width, growth) for _ in range(3)))

    def forward(self, x: Tensor) -> Tensor:
        return x + 0.2 * self.blocks(x)


class SRGenerator(nn.Module):
    """image f32[N,C,h,w] in [-1,1] -> f32[N,C,h*scale,w*scale]: bicubic + learned residual.

    ``body`` is SRResNet's residual blocks (``rrdb=False``) or ESRGAN's RRDBs.
    """

    def __init__(
        self, channels: int, scale: int, width: int, blocks: int, rrdb: bool, growth: int = 16
    ) -> None:
        super().__init__()
        self.scale = scale
        self.head = nn.Conv2d(channels, width, 3, padding=1)  # [N, w, h, w]
        body = [RRDB(width, growth) if rrdb else ResidualBlock(width) for _ in range(blocks)]
        self.body = nn.Sequential(*body, nn.Conv2d(width, width, 3, padding=1))
        activation = nn.LeakyReLU if rrdb else nn.PReLU
        self.upsample = Upsampler(width, scale, activation)  # [N, w, sh, sw]
        self.tail = nn.Conv2d(width, channels, 3, padding=1)  # [N, C, sh, sw]
        nn.init.zeros_(self.tail.weight)  # start exactly at bicubic
        nn.init.zeros_(self.tail.bias)

    def forward(self, image: Tensor) -> Tensor:
        base = F.interpolate(image, scale_factor=self.scale, mode="bicubic", align_corners=False)
        features = self.head(image)
        residual = self.tail(self.upsample(features + self.body(features)))
        return base + residual


class Critique(NamedTuple):
    logits: Tensor  # [N]
    features: list[Tensor]  # one per block, for the feature (perceptual) loss


class SRDiscriminator(nn.Module):
    """VGG-style: conv pairs (stride 1, then 2) with LeakyReLU, global pooling, linear.

    Batch norm is left out so the relativistic and feature losses see per-image features.
    """

    def __init__(self, channels: int, width: int, image_size: int) -> None:
        super().__init__()
        blocks, c, size = [], channels, image_size
        while size >= 4 and len(blocks) < 4:  # [N, c, s, s] -> [N, out, s/2, s/2]
            out = width * 2 ** len(blocks)
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(c, out, 3, padding=1),
                    nn.LeakyReLU(0.2),
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
        return Critique(self.head(x.mean(dim=(2, 3))).squeeze(1), features)


class WithSnapshot(nn.Module):
    """A generator plus a copy of its weights frozen at ``snapshot()`` (as buffers).

    ESRGAN takes the snapshot at the end of pixel-loss pre-training; exporting then
    interpolates ``alpha * snapshot + (1 - alpha) * current`` weights. Buffers are saved
    in checkpoints and copied (not averaged) by EMA, so resume and EMA keep it exact.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
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
            weight.lerp_(getattr(self, _key(name)), alpha)
        return net


def _key(name: str) -> str:
    return "snapshot__" + name.replace(".", "__")


def _drop_step_counter(state: dict[str, Any], prefix: str, *_: Any) -> None:
    """Older checkpoints kept the generator steps in a ``steps`` buffer here; the
    loop now tells the variant the step (``Variant.at_step``), so the key is dropped."""
    state.pop(prefix + "steps", None)
