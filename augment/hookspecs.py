"""The hooks a gan-augment plugin can implement.

A plugin is any importable module or object exposed through an entry point of the
group ``augment``::

    [project.entry-points.augment]
    mygan = "augment_mygan"

and implementing one or more of the hooks below, marked with :data:`hookimpl`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from augment.variant import Variant

PROJECT = "augment"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def augment_register_variants(register: Callable[[type[Variant]], None]) -> None:
    """Register GAN variants.

    Call ``register(VariantClass)`` once for each :class:`augment.variant.Variant`
    subclass the plugin provides. A variant name registered twice (by this plugin or
    another) is an error naming both plugins.
    """
