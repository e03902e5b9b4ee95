"""Self-attention over the positions of a feature map (SAGAN, Zhang et al., 2019).

A convolution sees a 3x3 neighbourhood; a GAN built of them draws textures well and
structures that span the image (a sleeve and its twin, a digit's two loops) badly.
Self-attention lets every position read from every other one in a single layer:

    f = W_f x, g = W_g x          queries, keys  [N, C/8, HW]
    h = W_h x                     values         [N, C/2, HW]
    beta = softmax_j(f_i^T g_j)   attention      [N, HW, HW]  (each row sums to 1)
    o = W_v (h beta^T)            the attended values, back to C channels
    y = x + gamma * o             gamma a learned scalar, 0 at the start

``gamma = 0`` makes the block the identity at initialization, so the network first learns
local features and lets attention in as it pays (SAGAN section 4). Keys and values are
max-pooled 2x2 as in BigGAN's implementation of the same block (Brock et al., 2019), which
cuts the attention matrix to [HW, HW/4]; values take C/2 channels, also as there. Every
1x1 conv is spectrally normalized when asked (SAGAN normalizes both networks).

Cost: ``HW * HW/4 * (C/8 + C/2)`` multiply-adds per image: 14x14 features of 64 channels
are about 0.3 M, the size of one 3x3 conv; at 64x64 it would be 1000x more, so a network
attends at one middle resolution (SAGAN's ablation: 32x32 of 128 was best, the late
feature maps).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

__all__ = ["SelfAttention2d"]


class SelfAttention2d(nn.Module):
    """x f32[N,C,H,W] -> f32[N,C,H,W]: ``x + gamma * attention(x)`` (an odd side's last
    row or column is left out of the pooled keys and values, not out of the queries)."""

    def __init__(self, channels: int, spectral_norm: bool = True) -> None:
        super().__init__()
        if channels < 8:
            raise ValueError(f"self-attention needs >= 8 channels (C/8 queries), got {channels}")
        sn = _spectral_norm if spectral_norm else (lambda module: module)
        key_dim, value_dim = channels // 8, channels // 2
        self.query = sn(nn.Conv2d(channels, key_dim, 1, bias=False))  # W_f
        self.key = sn(nn.Conv2d(channels, key_dim, 1, bias=False))  # W_g
        self.value = sn(nn.Conv2d(channels, value_dim, 1, bias=False))  # W_h
        self.out = sn(nn.Conv2d(value_dim, channels, 1, bias=False))  # W_v
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        query = self.query(x).flatten(2)  # [N, C/8, HW]
        key = F.max_pool2d(self.key(x), 2).flatten(2)  # [N, C/8, HW/4]
        value = F.max_pool2d(self.value(x), 2).flatten(2)  # [N, C/2, HW/4]
        # beta[n, i, j]: how much position i reads from pooled position j
        beta = torch.softmax(query.transpose(1, 2) @ key, dim=-1)  # [N, HW, HW/4]
        attended = (value @ beta.transpose(1, 2)).reshape(n, -1, h, w)  # [N, C/2, H, W]
        return x + self.gamma * self.out(attended)
