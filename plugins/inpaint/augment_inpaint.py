"""Inpainting: fill holes in images.

``inpaint``: Pathak et al.'s context encoder (2016: an encoder-decoder trained to fill a
hole with a masked L2 loss plus a small adversarial term) with Iizuka et al.'s networks
(2017: dilated convolutions at a quarter of the image side, and a global critic beside a
local one that reads the patch around the hole). The recipe, networks and losses are
:class:`augment.tasks.inpaint.InpaintVariant`'s; this plugin only names it.
"""

from __future__ import annotations

from augment import hookimpl
from augment.tasks.inpaint import InpaintVariant


class Inpaint(InpaintVariant):
    """Context encoder with global + local critics (Pathak et al., 2016; Iizuka et al., 2017)."""

    name = "inpaint"
    description = (
        "Inpainting (Pathak et al., 2016; Iizuka et al., 2017): a context encoder with "
        "dilated convs, global + local critics; fills holes."
    )


@hookimpl
def augment_register_variants(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    register(Inpaint)


__all__ = ["Inpaint", "augment_register_variants"]
