"""Upscaling an image of any size in overlapping tiles, so memory stays bounded.

A tile is the image's window around one *core* (the tiles' cores partition the image),
widened by ``overlap`` pixels on each side; the upscaled window's outer ``overlap * scale``
pixels are dropped. With ``overlap`` at least the model's receptive radius each kept pixel
saw all it would have seen untiled, so the result equals the untiled one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from augment.errors import ConfigError


def check_tiling(tile: int | None, overlap: int) -> None:
    """ConfigError unless ``tile`` (None: no tiling) leaves room inside twice ``overlap``."""
    if tile is not None and (overlap < 0 or tile <= 2 * overlap):
        raise ConfigError(f"tile ({tile}) must be larger than twice the overlap ({overlap})")


def tile_spans(length: int, tile: int, overlap: int) -> list[tuple[slice, slice]]:
    """``(core, window)`` slices along one axis of length ``length``.

    The cores partition ``[0, length)``; each window is its core widened by ``overlap``
    on both sides (clipped to the image), at most ``tile`` long.
    """
    step = tile - 2 * overlap
    spans = []
    for start in range(0, length, step):
        stop = min(start + step, length)
        window = slice(max(0, start - overlap), min(length, stop + overlap))
        spans.append((slice(start, stop), window))
    return spans


def upscale_tiled(
    upscale: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    scale: int,
    tile: int,
    overlap: int,
) -> np.ndarray:
    """``upscale`` (f32[N,C,h,w] -> f32[N,C,h*scale,w*scale]) applied tile by tile to
    ``images`` (``tile`` and ``overlap`` in low-resolution pixels, see :func:`check_tiling`)."""
    n, c, h, w = images.shape
    out = np.empty((n, c, h * scale, w * scale), np.float32)
    for y_core, y_window in tile_spans(h, tile, overlap):
        for x_core, x_window in tile_spans(w, tile, overlap):
            window = upscale(images[:, :, y_window, x_window])
            inside = _scaled(y_core, scale, y_window.start), _scaled(x_core, scale, x_window.start)
            out[:, :, _scaled(y_core, scale), _scaled(x_core, scale)] = window[(..., *inside)]
    return out


def _scaled(span: slice, scale: int, origin: int = 0) -> slice:
    """``span`` moved to start at ``origin`` and multiplied by ``scale``."""
    return slice((span.start - origin) * scale, (span.stop - origin) * scale)
