"""Reading a layout back from an image: the foreground of a plain image, and a small
segmenter that finds it in a styled one.

Mask consistency: a segmenter ``S`` learns ``CE(S(x), m)`` on real images ``x`` whose
masks ``m`` are known (the foreground of each one's plain original), and a generator pays
``w * CE(S(G(...)), m)`` on the images it makes for the layout ``m``: every region must
*read* as its label, so a stroke has to stand out from the background it is painted on.
OASIS (Schonfeld et al., 2021) reaches the same end by making the critic an
(N+1)-class segmenter; the shape-consistency loss of Zhang et al. (2018, CT <-> MRI
translation with cycle- and shape-consistency) uses a segmenter per domain as here.
The segmenter never learns from a fake, so a generator cannot teach it its own mistakes.

Shapes: N batch, C image channels, K mask labels, (H, W) the image size.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from torch import Tensor, nn
from torch.nn import functional as F

from augment.nn.inpaint import dilated
from augment.nn.translate import conv_norm_act

__all__ = ["MaskSegmenter", "Threshold", "foreground", "mask_misread"]

#: The recipes' ``threshold`` parameter of :func:`foreground`.
Threshold = Annotated[
    float,
    Field(ge=-1, lt=1, description="a plain pixel above this ([-1, 1] scale) is foreground"),
]


def foreground(plain: Tensor, threshold: float) -> Tensor:
    """Label maps i64[N,H,W] of plain images f32[N,C,H,W] in [-1, 1]: 1 where the channel
    mean exceeds ``threshold`` (a digit's strokes), 0 elsewhere."""
    return (plain.mean(dim=1) > threshold).long()


def mask_misread(segmenter: nn.Module, image: Tensor, labels: Tensor) -> Tensor:
    """``mean over pixels of -log p(labels | image)``: the segmenter's per-pixel
    cross-entropy reading label maps ``labels`` i64[N,H,W] from ``image`` f32[N,C,H,W]."""
    return F.cross_entropy(segmenter(image), labels)


class MaskSegmenter(nn.Module):
    """image f32[N,C,H,W] -> mask logits f32[N,K,H,W]: a per-pixel classifier at full size.

    3x3 conv, IN, LeakyReLU(0.2) to ``width``; 3x3 convs of dilation 2 and 4 (receptive
    field 15 px: a stroke and the background around it); a 1x1 conv to the K labels. No
    stride, so every pixel keeps its own logits at any height and width.
    """

    def __init__(self, channels: int, labels: int, width: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_norm_act(channels, width, 3, slope=0.2),  # [N, w, H, W]
            dilated(width, 2),
            dilated(width, 4),
            nn.Conv2d(width, labels, 1),  # [N, K, H, W]
        )

    def forward(self, image: Tensor) -> Tensor:
        return self.body(image)
