"""SPADE (Park et al., 2019): images made for label masks.

Spatially-adaptive normalization (every norm of the generator modulated per pixel by the
mask), a style code beside the mask (many images for one mask), pix2pixHD's multi-scale
critics on (mask, image) pairs with feature matching, hinge losses. The recipe, networks
and losses are :class:`augment.tasks.mask2image.Mask2ImageVariant`'s; this plugin names it.

Left out: the paper's VAE style encoder (the style code is drawn from N(0, I), and MSGAN's
mode-seeking term keeps the generator from ignoring it) and the VGG perceptual loss (no
pretrained weights can be downloaded here).
"""

from __future__ import annotations

from augment import hookimpl
from augment.tasks.mask2image import Mask2ImageVariant


class Spade(Mask2ImageVariant):
    """SPADE (Park et al., 2019): spatially-adaptive norms from the mask, a style code,
    multi-scale critics with feature matching."""

    name = "spade"
    description = (
        "SPADE (Park et al., 2019): an image for a label mask; spatially-adaptive norms, "
        "a style code, multi-scale critics with feature matching."
    )


@hookimpl
def augment_register_variants(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    register(Spade)


__all__ = ["Spade", "augment_register_variants"]
