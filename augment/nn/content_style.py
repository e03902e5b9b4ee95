"""Translators with a code in the middle: an encoder to a spatial *content* map, a decoder
back to an image, and what is shared or swapped between domains.

* **MUNIT** (Huang et al., 2018, "Multimodal Unsupervised Image-to-Image Translation"):
  each domain has a content encoder, a style encoder and a decoder. The content map is
  domain-invariant; the style, a small vector, is what one image of a domain has that
  another lacks (a background, a colour). Translation A -> B decodes A's content with a
  style drawn from B's prior N(0, I): one digit, many backgrounds. The decoder takes the
  style through **AdaIN**: an MLP maps the style to the scale and shift of every
  normalization layer of the decoder (Huang & Belongie, 2017).
* **UNIT** (Liu et al., 2017, "Unsupervised Image-to-Image Translation Networks"): two
  VAE-GANs that *share* a latent space: the encoders' last block and the decoders' first
  block are one module each, so an image of A and its counterpart in B map to the same
  code; translation decodes A's code with B's decoder.

Both reuse the image-to-image layers of :mod:`augment.nn.translate` (reflect-padded convs,
instance norm, residual blocks, norms modulated by a code). Sides are kept as in its
ResNet generator: the encoder's stride-2 steps map H -> ceil(H/2), and the decoder resizes
to the encoder's maps, so any height and width round-trips and stays dynamic in ONNX.

Shapes: N batch, C image channels, (H, W) the image size, w the width, S the style size,
content f32[N, 4w, ceil(H/4), ceil(W/4)].
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn
from torch.nn import functional as F

from augment.nn.translate import ConvNorm, ResidualBlock, conv_norm_act, resize_to

__all__ = ["Content", "ContentEncoder", "Decoder", "StyleEncoder", "StyleMLP"]


class Content(NamedTuple):
    """An encoded image: the content map and the encoder's two larger maps, kept only for
    their sizes (``ceil(H/2)`` and ``H``: where the decoder's upsamplings return to)."""

    code: Tensor  # f32[N, 4w, ceil(H/4), ceil(W/4)]
    sizes: tuple[Tensor, Tensor]  # f32[N, w, H, W], f32[N, 2w, ceil(H/2), ceil(W/2)]

    def with_code(self, code: Tensor) -> Content:
        """The same sizes around another code (UNIT's sampled or shared-block code)."""
        return Content(code, self.sizes)


class ContentEncoder(nn.Module):
    """image f32[N,C,H,W] -> :class:`Content`: a 7x7 stem, two stride-2 steps (w -> 2w ->
    4w) and ``blocks`` residual blocks, instance norm throughout.

    Instance norm removes each image's per-channel mean and spread at every layer, which
    is most of what a global style is (a background colour, contrast), so the map that
    comes out keeps the layout (MUNIT section 3.1)."""

    def __init__(self, channels: int, width: int, blocks: int) -> None:
        super().__init__()
        w = width
        self.stem = conv_norm_act(channels, w, 7)  # [N, C, H, W] -> [N, w, H, W]
        self.down = nn.ModuleList(
            [conv_norm_act(w, 2 * w, 3, 2), conv_norm_act(2 * w, 4 * w, 3, 2)]
        )
        self.blocks = nn.ModuleList(ResidualBlock(4 * w) for _ in range(blocks))

    def forward(self, image: Tensor) -> Content:
        full = self.stem(image)  # [N, w, H, W]
        half = self.down[0](full)  # [N, 2w, ceil(H/2), ceil(W/2)]
        x = self.down[1](half)  # [N, 4w, ceil(H/4), ceil(W/4)]
        for block in self.blocks:
            x = block(x)
        return Content(x, (full, half))


class StyleEncoder(nn.Module):
    """image f32[N,C,H,W] -> style f32[N,S]: a 7x7 stem, two stride-2 steps, global average
    pooling and a linear map to S numbers. No normalization layer: a norm would remove the
    very statistics a style is made of (MUNIT's style encoder has none either)."""

    def __init__(self, channels: int, width: int, style_dim: int) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            conv_norm_act(channels, w, 7, norm=False),  # [N, w, H, W]
            conv_norm_act(w, 2 * w, 3, 2, norm=False),  # [N, 2w, H/2, W/2]
            conv_norm_act(2 * w, 4 * w, 3, 2, norm=False),  # [N, 4w, H/4, W/4]
            nn.AdaptiveAvgPool2d(1),  # [N, 4w, 1, 1]
            nn.Flatten(),  # [N, 4w]
            nn.Linear(4 * w, style_dim),  # [N, S]
        )

    def forward(self, image: Tensor) -> Tensor:
        return self.net(image)


class StyleMLP(nn.Module):
    """style f32[N,S] -> f32[N,hidden]: MUNIT's MLP in front of AdaIN (two ReLU layers).
    Each modulated norm of the decoder then maps the hidden vector linearly to its own scale
    and shift, which together are MUNIT's single MLP output split over the layers."""

    def __init__(self, style_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(style_dim, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
        )

    def forward(self, style: Tensor) -> Tensor:
        return self.net(style)


class Decoder(nn.Module):
    """(:class:`Content`, code f32[N,D] | None) -> image f32[N,C,H,W] in (-1, 1):
    ``blocks`` residual blocks at 4w, two steps of (nearest resize to the encoder's map,
    3x3 conv, norm, ReLU) to w, and a 7x7 conv to the image channels with tanh.

    With ``code_dim`` > 0 every norm is modulated by the code (AdaIN for MUNIT's style);
    with 0 they are plain instance norms (UNIT). MUNIT's upsampling layers use layer norm
    so the style set by the residual blocks' AdaIN survives them; here the upsampling norms
    are modulated by the style as well, which re-applies it after each norm instead."""

    def __init__(self, channels: int | None, width: int, blocks: int, code_dim: int = 0) -> None:
        super().__init__()
        w = width
        self.blocks = nn.ModuleList(ResidualBlock(4 * w, code_dim) for _ in range(blocks))
        self.up = nn.ModuleList([ConvNorm(4 * w, 2 * w, code_dim), ConvNorm(2 * w, w, code_dim)])
        # channels None: no image head, only :meth:`features` (pix2pixHD's global generator)
        self.head = (
            None
            if channels is None
            else nn.Conv2d(w, channels, 7, padding=3, padding_mode="reflect")
        )

    def forward(self, content: Content, code: Tensor | None = None) -> Tensor:
        if self.head is None:
            raise TypeError("a Decoder built without image channels has only features()")
        return self.head(self.features(content, code)).tanh()

    def features(self, content: Content, code: Tensor | None = None) -> Tensor:
        """The map before the image head, f32[N, w, H, W] (pix2pixHD's global generator
        hands it to the local enhancer instead of an image)."""
        x = content.code
        for block in self.blocks:
            x = block(x, code)
        full, half = content.sizes
        for up, like in zip(self.up, (half, full), strict=True):
            x = F.relu(up(resize_to(x, like), code))  # -> [N, 2w, H/2, W/2] -> [N, w, H, W]
        return x
