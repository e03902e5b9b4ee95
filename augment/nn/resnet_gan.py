"""Residual class-conditional GAN networks (SN-GAN's ResNets with BigGAN's conditioning).

The DCGAN networks of :mod:`augment.nn.dcgan` condition the generator once, by a class
code concatenated to ``z`` at the input, and their discriminator is two strided convs.
The networks here are the ones the class-conditional GAN literature measures with
(Miyato & Koyama, 2018; Brock et al., 2019; the long-tail GANs gSR and LeCam build on
them):

* **generator**: a linear map of the first chunk of ``z`` to ``[N, c_0, b, b]``, then one
  residual up-block per doubling of the side (``b * 2^n = S``, :func:`spatial_plan`), each
  normalized by **conditional batch norm** whose gain and bias are linear in
  ``[e_y, z_i]``: a class embedding ``e_y`` shared by every block and the block's own
  chunk ``z_i`` of the latent ("hierarchical z", BigGAN section 3). Sharing ``e_y``
  lets a tail class reuse what the head taught every block (a per-class table of gains
  would give a class with 15 images its own 2 x C parameters per layer);
* **discriminator**: residual down-blocks (average pooling; the first block without a
  pre-activation, Miyato et al.'s "optimized block"), ReLU, global **sum** pooling to
  ``h`` f32[N,F], and the projection head ``D(x, y) = psi(h) + <e'_y, h>`` (Miyato &
  Koyama, 2018), or ``psi(h)`` alone with an AC-GAN class head.

Channels: stage ``i`` of ``n`` (side ``b * 2^i``) of the generator has
``width * min(2^(n-i), 4)`` channels, and the discriminator mirrors it, so the cost of a
stage stays about constant on a CPU and 28, 32 and 64 px images share one definition.
``spectral_norm`` normalizes every conv and linear layer (both networks, as in BigGAN).
``attention`` (a side, e.g. 14) inserts a self-attention block (:mod:`augment.nn.attention`,
SAGAN) after the generator's up-block and the discriminator's down-block that output that
side.

Shapes: N batch, C image channels, S image side, K classes, ``latent`` the size of ``z``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from augment.nn.attention import SelfAttention2d
from augment.nn.dcgan import Conditioning, DiscriminatorOutput, spatial_plan

__all__ = [
    "ConditionalBatchNorm2d",
    "ResNetDiscriminator",
    "ResNetGenerator",
    "orthogonal_init",
    "stage_channels",
]


def _sn(enabled: bool):  # noqa: ANN202 - a layer -> layer wrapper
    return _spectral_norm if enabled else (lambda module: module)


def orthogonal_init(module: nn.Module) -> None:
    """BigGAN's initialization: orthogonal conv and linear weights (the original weight
    under spectral norm), zero biases; embeddings keep N(0, 1)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            weight = (
                m.parametrizations.weight.original
                if parametrize.is_parametrized(m, "weight")
                else m.weight
            )
            nn.init.orthogonal_(weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def stage_channels(width: int, doublings: int) -> list[int]:
    """Channels at sides ``b, 2b, ..., b * 2^n``: ``width * min(2^(n-i), 4)`` (i = 0..n)."""
    return [width * min(2 ** (doublings - i), 4) for i in range(doublings + 1)]


def attention_layer(
    side: int | None, sides: list[int], channels: list[int], sn: bool
) -> nn.ModuleList:
    """One module per block: a self-attention block after the block that outputs ``side``
    (block i outputs ``sides[i]`` with ``channels[i]``), an identity after the others.
    Identities hold no weights, so a network without attention keeps its state-dict keys."""
    if side is not None and side not in sides:
        valid = sorted(s for s in set(sides) if s)
        raise ValueError(f"attention at side {side}: the blocks output sides {valid}")
    return nn.ModuleList(
        SelfAttention2d(c, sn) if s == side else nn.Identity()
        for s, c in zip(sides, channels, strict=True)
    )


def latent_chunks(latent_dim: int, doublings: int) -> list[int]:
    """Sizes of ``z``'s chunks: one for the input map, one per up-block (``tensor_split``)."""
    parts = doublings + 1
    if latent_dim < parts:
        raise ValueError(f"latent_dim {latent_dim} < {parts}: one chunk of z per block needed")
    return [len(c) for c in torch.arange(latent_dim).tensor_split(parts)]


class ConditionalBatchNorm2d(nn.Module):
    """``y = BN(x) * (1 + gamma(c)) + beta(c)`` over x f32[N,C,H,W], c f32[N,D].

    Batch norm without its own affine; the gain and bias are linear maps of the condition
    (BigGAN; de Vries et al., 2017). The gain is ``1 +`` so a zero condition is a plain
    batch norm.
    """

    def __init__(self, channels: int, condition_dim: int, spectral_norm: bool = True) -> None:
        super().__init__()
        sn = _sn(spectral_norm)
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = sn(nn.Linear(condition_dim, channels, bias=False))
        self.bias = sn(nn.Linear(condition_dim, channels, bias=False))

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        gain = 1.0 + self.gain(condition)  # [N, C]
        bias = self.bias(condition)  # [N, C]
        return self.norm(x) * gain[:, :, None, None] + bias[:, :, None, None]


class UpBlock(nn.Module):
    """[N, c_in, s, s] -> [N, c_out, 2s, 2s]:
    ``conv(relu(cbn(up(conv(relu(cbn(x))))))) + conv1x1(up(x))`` (nearest upsampling)."""

    def __init__(self, c_in: int, c_out: int, condition_dim: int, spectral_norm: bool) -> None:
        super().__init__()
        sn = _sn(spectral_norm)
        self.norm1 = ConditionalBatchNorm2d(c_in, condition_dim, spectral_norm)
        self.conv1 = sn(nn.Conv2d(c_in, c_out, 3, padding=1))
        self.norm2 = ConditionalBatchNorm2d(c_out, condition_dim, spectral_norm)
        self.conv2 = sn(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.shortcut = sn(nn.Conv2d(c_in, c_out, 1))

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        h = F.interpolate(F.relu(self.norm1(x, condition)), scale_factor=2.0, mode="nearest")
        h = self.conv2(F.relu(self.norm2(self.conv1(h), condition)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class ResNetGenerator(nn.Module):
    """(z f32[N,latent], label i64[N]) -> image f32[N,C,S,S] in [-1, 1]."""

    def __init__(
        self,
        latent_dim: int,
        num_classes: int,
        channels: int,
        image_size: int,
        width: int = 32,
        embed_dim: int = 32,
        spectral_norm: bool = True,
        attention: int | None = None,
    ) -> None:
        super().__init__()
        base, doublings = spatial_plan(image_size)
        sn = _sn(spectral_norm)
        widths = stage_channels(width, doublings)
        self.chunks = latent_chunks(latent_dim, doublings)
        # e_y: [K, E], shared by every block's conditional batch norm
        self.embed = nn.Embedding(num_classes, embed_dim)
        # z_0: [N, chunk_0, 1, 1] -> [N, c_0, b, b]: a linear map to c_0 * b * b values,
        # written as a b x b transposed conv so the traced graph knows the channels
        self.project = sn(nn.ConvTranspose2d(self.chunks[0], widths[0], base))
        self.blocks = nn.ModuleList(
            UpBlock(widths[i], widths[i + 1], embed_dim + self.chunks[i + 1], spectral_norm)
            for i in range(doublings)
        )
        sides = [base * 2 ** (i + 1) for i in range(doublings)]  # each up-block's output side
        self.attention = attention_layer(attention, sides, widths[1:], spectral_norm)
        # BN -> ReLU -> 3x3 conv to the image channels -> tanh (values in (-1, 1))
        self.out_norm = nn.BatchNorm2d(widths[-1])
        self.out_conv = sn(nn.Conv2d(widths[-1], channels, 3, padding=1))
        orthogonal_init(self)
        # lambda of transitional conditioning (SynthesisVariant.at_step sets it); not saved
        self.register_buffer("condition_strength", torch.ones(()), persistent=False)

    def class_affines(self) -> list[Tensor]:
        """Every conditional batch norm's per-class gains and biases with the latent part of
        its condition at zero: ``W[:, :E] @ e_y`` for each class, f32[K, C] each (two per
        norm layer, in block order). What group spectral regularization (gSR) penalizes;
        differentiable w.r.t. the embedding and the (spectrally normalized) weights."""
        classes = self.embed.weight  # [K, E]
        width = classes.shape[1]
        return [
            classes @ affine.weight[:, :width].T  # [K, E] @ [E, C] -> [K, C]
            for block in self.blocks
            for norm in (block.norm1, block.norm2)
            for affine in (norm.gain, norm.bias)
        ]

    def forward(self, z: Tensor, label: Tensor) -> Tensor:
        ends = torch.tensor(self.chunks).cumsum(0).tolist()  # python ints: constant slices
        first, *rest = (z[:, end - size : end] for size, end in zip(self.chunks, ends, strict=True))
        code = self.condition_strength * self.embed(label)  # [N, E]
        h = self.project(first[:, :, None, None])  # [N, c_0, b, b]
        for block, attend, z_i in zip(self.blocks, self.attention, rest, strict=True):
            h = attend(block(h, torch.cat([code, z_i], dim=1)))  # [N, c_i, s, s] -> 2s
        return torch.tanh(self.out_conv(F.relu(self.out_norm(h))))


class DownBlock(nn.Module):
    """[N, c_in, s, s] -> [N, c_out, s/2, s/2] (or s, without ``down``): a pre-activation
    residual block ``conv(relu(conv(relu(x))))`` (no first ReLU in the ``first`` block),
    average-pooled, plus a pooled 1x1 conv shortcut where the shape changes."""

    def __init__(self, c_in: int, c_out: int, down: bool, first: bool, spectral_norm: bool):
        super().__init__()
        sn = _sn(spectral_norm)
        self.down, self.first = down, first
        self.conv1 = sn(nn.Conv2d(c_in, c_out, 3, padding=1))
        self.conv2 = sn(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.shortcut = sn(nn.Conv2d(c_in, c_out, 1)) if down or c_in != c_out else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        if self.down:
            h = F.avg_pool2d(h, 2)
        if self.shortcut is None:
            return h + x
        # the first block pools before its 1x1 conv (cheaper, the same map up to order)
        s = F.avg_pool2d(x, 2) if self.down and self.first else x
        s = self.shortcut(s)
        if self.down and not self.first:
            s = F.avg_pool2d(s, 2)
        return h + s


class ResNetDiscriminator(nn.Module):
    """(image f32[N,C,S,S], label i64[N]) -> DiscriminatorOutput(logits f32[N], class
    logits f32[N,K] | None): ``n`` down-blocks to the side ``b``, one block at ``b``, then
    ReLU and a sum over space; ``projection`` adds ``<e'_y, h>``."""

    def __init__(
        self,
        num_classes: int,
        channels: int,
        image_size: int,
        width: int = 32,
        conditioning: Conditioning = "projection",
        spectral_norm: bool = True,
        auxiliary_classifier: bool = False,
        attention: int | None = None,
    ) -> None:
        super().__init__()
        if conditioning == "concat":
            raise ValueError("the ResNet discriminator conditions by projection (or none)")
        base, doublings = spatial_plan(image_size)
        sn = _sn(spectral_norm)
        # the generator's plan read backwards: c_n (= width) channels at side S, ..., c_0 at b
        widths = stage_channels(width, doublings)[::-1]
        blocks = [DownBlock(channels, widths[0], True, True, spectral_norm)]  # S -> S/2
        blocks += [  # [N, c_(n-i+1), s, s] -> [N, c_(n-i), s/2, s/2] ... down to side b
            DownBlock(widths[i - 1], widths[i], True, False, spectral_norm)
            for i in range(1, doublings)
        ]
        blocks.append(DownBlock(widths[-2], widths[-1], False, False, spectral_norm))  # at b
        self.blocks = nn.Sequential(*blocks)
        # each block's output side; the last block stays at b, so attention at b comes
        # after the block that reaches it
        sides = [base * 2 ** (doublings - 1 - i) for i in range(doublings)] + [0]
        self.attention = attention_layer(attention, sides, widths, spectral_norm)
        feature_dim = widths[-1]
        self.adversarial = sn(nn.Linear(feature_dim, 1))  # psi: [N, F] -> [N, 1]
        self.projection = (  # e'_y: [K, F]
            sn(nn.Embedding(num_classes, feature_dim)) if conditioning == "projection" else None
        )
        self.classifier = nn.Linear(feature_dim, num_classes) if auxiliary_classifier else None
        orthogonal_init(self)
        self.register_buffer("condition_strength", torch.ones(()), persistent=False)

    def forward(self, image: Tensor, label: Tensor) -> DiscriminatorOutput:
        h = image
        for block, attend in zip(self.blocks, self.attention, strict=True):
            h = attend(block(h))  # [N, C, S, S] -> ... -> [N, F, b, b]
        h = F.relu(h).sum(dim=(2, 3))  # [N, F]
        logits = self.adversarial(h).squeeze(1)  # [N]
        if self.projection is not None:
            logits = logits + self.condition_strength * (self.projection(label) * h).sum(dim=1)
        classes = self.classifier(h) if self.classifier is not None else None
        return DiscriminatorOutput(logits, classes)
