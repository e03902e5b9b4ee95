"""Sample grids written while training, and the mode-collapse check on the final one.

The loop asks the variant for a :class:`~augment.variant.Preview` (images row by row,
the number of columns, a label per row where rows are classes) and writes it here as a
PNG; for class rows, :func:`class_diversity` compares each class's samples with as many
of its real images.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from augment.data.images import image_grid, to_uint8, write_png
from augment.io import atomic_path
from augment.metrics.image import ms_ssim_diversity
from augment.variant import Preview

log = logging.getLogger(__name__)


def write_grid(path: Path, preview: Preview) -> np.ndarray:
    """Write ``preview`` as one PNG grid (atomically); returns its tiles u8[N,H,W,C]."""
    tiles = to_uint8(preview.images.cpu())
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        write_png(tmp, image_grid(tiles, nrow=preview.columns, row_labels=preview.row_labels))
    return tiles


def remove_stale_grids(folder: Path, step: int) -> None:
    """Grids of a previous run past ``step`` (where this run starts) no longer apply."""
    for path in folder.glob("step_*.png"):
        if not path.stem[5:].isdigit() or int(path.stem[5:]) > step:
            path.unlink()
    (folder / "final.png").unlink(missing_ok=True)


def class_diversity(
    samples: np.ndarray,
    images: np.ndarray,
    labels: np.ndarray,
    classes: tuple[str, ...],
    seed: int,
    warn_below: float,
    variant: str,
    remedies: Sequence[str] = (),
) -> dict[str, float]:
    """Per class: MS-SSIM diversity of its samples over that of as many real images
    (about 1: as varied as the data; near 0: the class collapsed to one image).

    ``samples`` u8[K,n,H,W,C] (a row of n per class), ``images`` u8[N,H,W,C] with class
    ``labels`` i64[N]. Warns naming the classes below ``warn_below`` and what to try:
    more steps, then ``remedies`` (the variant's own knobs against collapse).
    """
    ratios: dict[str, float] = {}
    for index, name in enumerate(classes):
        real = images[np.flatnonzero(labels == index)[: samples.shape[1]]]
        if len(real) < 2:
            continue
        reference = ms_ssim_diversity(real, seed=seed)
        if reference > 0:
            ratios[name] = ms_ssim_diversity(samples[index], seed=seed) / reference
    collapsed = [f"{c} ({r:.2f})" for c, r in ratios.items() if r < warn_below]
    if collapsed:
        log.warning(
            "%s: samples of class %s are far less diverse than its real images "
            "(diversity ratio < %g): mode collapse? Try %s",
            variant,
            ", ".join(collapsed),
            warn_below,
            " or ".join(["more steps", *remedies]),
        )
    return ratios
