"""pix2pixHD's networks (Wang et al., 2018, "High-Resolution Image Synthesis and Semantic
Manipulation with Conditional GANs"), sized for 28-64 px images.

* **Coarse-to-fine generator**: a *global* generator G1 works on the input downsampled
  2x; a *local enhancer* G2 encodes the full-size input to half size, adds G1's last
  feature map (G1 without its image head), and decodes to the full size. G1 sees the
  whole image at low resolution (layout), G2 adds the detail. The paper trains G1 alone
  first, then both; here both train together from the start (a CPU budget).
* **Multi-scale discriminators**: the same PatchGAN at the image's size and at 1/2,
  1/4, ... (average-pooled 3x3, stride 2): the coarsest sees global structure with the
  receptive field of a small critic, the finest the texture. Each also returns its
  intermediate maps for the feature-matching loss.

Shapes: N batch, C image channels, (H, W) the image size, w the enhancer's width (G1 has
2w); sides halve as ``ceil(h/2)`` throughout, so odd sizes round-trip as in
:mod:`augment.nn.translate`.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from augment.nn.content_style import ContentEncoder, Decoder
from augment.nn.translate import (
    ConvNorm,
    PatchDiscriminator,
    ResidualBlock,
    conv_norm_act,
    resize_to,
)

__all__ = ["CoarseToFineGenerator", "MultiScaleDiscriminator", "downsample"]


def downsample(image: Tensor) -> Tensor:
    """2x down by a 3x3 average (stride 2, padding not counted, as pix2pixHD):
    [N, C, H, W] -> [N, C, ceil(H/2), ceil(W/2)]."""
    return F.avg_pool2d(image, 3, stride=2, padding=1, count_include_pad=False)


class CoarseToFineGenerator(nn.Module):
    """image f32[N,C,H,W] -> image f32[N,C,H,W] in (-1, 1): G1 on the half-size input,
    G2 around it at full size.

    G1 (``global_blocks`` residual blocks at 8w, on side H/2: its own encoder steps take
    it to H/8) ends in a map f32[N, 2w, H/2, W/2]; G2's front end (7x7 conv at w, one
    stride-2 step to 2w) gives a map of the same shape; their sum goes through
    ``local_blocks`` residual blocks, one upsampling step to w at full size and a 7x7
    conv to the image."""

    def __init__(
        self, channels: int, width: int = 16, global_blocks: int = 4, local_blocks: int = 2
    ) -> None:
        super().__init__()
        w = width
        # G1: the translate encoder/decoder at width 2w, minus its image head
        self.global_encoder = ContentEncoder(channels, 2 * w, global_blocks // 2)
        self.global_decoder = Decoder(None, 2 * w, global_blocks - global_blocks // 2)
        # G2's front end: [N, C, H, W] -> [N, w, H, W] -> [N, 2w, H/2, W/2]
        self.stem = conv_norm_act(channels, w, 7)
        self.down = conv_norm_act(w, 2 * w, 3, 2)
        self.blocks = nn.ModuleList(ResidualBlock(2 * w) for _ in range(local_blocks))
        self.up = ConvNorm(2 * w, w)  # after a nearest resize to H: [N, w, H, W]
        self.head = nn.Conv2d(w, channels, 7, padding=3, padding_mode="reflect")

    def forward(self, image: Tensor) -> Tensor:
        coarse = self.global_decoder.features(self.global_encoder(downsample(image)))
        full = self.stem(image)  # [N, w, H, W]
        x = self.down(full) + coarse  # [N, 2w, H/2, W/2]: detail + layout
        for block in self.blocks:
            x = block(x)
        x = F.relu(self.up(resize_to(x, full)))  # [N, w, H, W]
        return self.head(x).tanh()


class MultiScaleDiscriminator(nn.Module):
    """``scales`` PatchGAN critics, the k-th on the input downsampled k times.
    ``forward(image f32[N,C,H,W]) -> list`` (one a scale, finest first) of each critic's
    :meth:`PatchDiscriminator.features`: its maps, then its patch logits."""

    def __init__(self, channels: int, width: int, layers: int, scales: int = 2) -> None:
        super().__init__()
        self.critics = nn.ModuleList(
            PatchDiscriminator(channels, width, layers) for _ in range(scales)
        )

    def forward(self, image: Tensor) -> list[list[Tensor]]:
        outputs = []
        for k, critic in enumerate(self.critics):
            outputs.append(critic.features(image))
            if k + 1 < len(self.critics):
                image = downsample(image)
        return outputs
