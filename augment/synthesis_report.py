"""The synthesize stage's report folder: class counts before and after, the filter's
acceptance per class, and a grid of samples per class."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from augment.data.images import image_grid, write_png
from augment.data.prepare import write_count_report
from augment.runtime import OnnxGenerator


def write_reports(
    folder: Path,
    counts: pd.DataFrame,
    acceptance: dict[str, Any],
    samples: dict[str, list[np.ndarray]],
    generator: OnnxGenerator,
    columns: int,
) -> None:
    """class_counts.{csv,json,png}, acceptance.json and samples.png into ``folder``."""
    write_count_report(counts, folder, f"{generator.info.variant}: augmented class counts")
    (folder / "acceptance.json").write_text(json.dumps(acceptance, indent=2) + "\n")
    info = generator.info
    tile = (info.image_size, info.image_size, info.channels)
    write_png(folder / "samples.png", sample_grid(samples, tile, columns), atomic=False)


def sample_grid(
    samples: dict[str, list[np.ndarray]], tile: tuple[int, int, int], columns: int
) -> np.ndarray:
    """One row per class with samples, ``columns`` tiles each (black where a class has
    fewer); a class given none (the largest one under ``balance``) has no row, not an empty
    one that reads as a failure."""
    shown = {name: images for name, images in samples.items() if images}
    tiles = np.zeros((max(len(shown), 1) * columns, *tile), np.uint8)
    for row, images in enumerate(shown.values()):
        for col, image in enumerate(images[:columns]):
            tiles[row * columns + col] = image
    return image_grid(tiles, nrow=columns, row_labels=list(shown) or None)
