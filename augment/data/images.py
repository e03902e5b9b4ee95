"""Image files and arrays: decoding, conversion, batches, tensors and grids.

Arrays are uint8 ``H x W x C`` (C = 1 or 3) unless stated otherwise; batches are
``N x H x W x C``. Tensors are float32 ``N x C x H x W`` in [-1, 1].
"""

from __future__ import annotations

import functools
import io
import logging
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from augment.errors import DataError, first_line
from augment.io import atomic_path

if TYPE_CHECKING:
    import torch

    from augment.data.manifest import Manifest

log = logging.getLogger(__name__)

#: Refuse images with more pixels than this (a decompression bomb, not a dataset image).
MAX_PIXELS = 8192 * 8192

#: How a non-square image becomes ``size x size``: ``crop`` scales its short side to
#: ``size`` and keeps the centre (the aspect ratio kept, the long side's ends cut; what
#: torchvision's Resize + CenterCrop do), ``pad`` scales its long side to ``size`` and pads
#: the short one with the image's mean border colour, ``stretch`` distorts it.
Fit = Literal["crop", "pad", "stretch"]

#: The conversions :func:`read_image` and :func:`convert_image` count (a ``Counter`` of
#: these names, reported per data set by prepare).
CONVERSIONS = {
    "palette": "palette image to RGB or gray",
    "16-bit": "16-bit or float image scaled to 8 bits",
    "alpha": "alpha channel composited over black",
    "gray-to-rgb": "gray image copied to 3 channels",
    "rgb-to-gray": "colour image converted to gray",
    "resized": "square image resized",
    "cropped": "non-square image scaled and centre-cropped to a square",
    "padded": "non-square image scaled and padded to a square",
    "stretched": "non-square image stretched to a square (aspect ratio lost)",
}


def read_image(
    path: str | os.PathLike[str],
    channels: int | None = None,
    size: int | None = None,
    fit: Fit = "crop",
    counts: Counter[str] | None = None,
) -> np.ndarray:
    """Decode an image file into a uint8 ``H x W x C`` array (C = 1 or 3).

    Palette images become RGB (or gray when the palette is), alpha is composited over
    black, 16-bit images are scaled to 8 bits. ``channels`` converts gray <-> RGB and
    ``size`` resizes to ``size x size`` (Lanczos, antialiased; non-square images as
    ``fit`` says). Each conversion made is counted in ``counts`` (:data:`CONVERSIONS`).
    Any failure is a one-line DataError ``<path>: <what is wrong>``; an image of more than
    :data:`MAX_PIXELS` pixels is refused before it is decoded, a PNG file cut short (even
    after its pixel data) too.
    """
    path = Path(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed by the with below)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not an image file") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot open ({first_line(exc)})") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with handle:
                with Image.open(handle) as image:
                    width, height = image.size
                    if width * height > MAX_PIXELS:
                        raise DataError(
                            f"{path}: {width}x{height} pixels exceeds the limit of {MAX_PIXELS} "
                            "(possible decompression bomb)"
                        )
                    if image.format == "PNG":
                        _verify_png(image, handle, path)
                handle.seek(0)
                with Image.open(handle) as image:
                    image.load()
                    array = _to_gray_or_rgb(image, counts)
    except DataError:
        raise
    except Image.UnidentifiedImageError:
        raise DataError(f"{path}: not a readable image (unknown or corrupt format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"{path}: too many pixels (possible decompression bomb)") from None
    except Exception as exc:  # Pillow's decoders raise many types on corrupt data
        raise DataError(f"{path}: corrupt or truncated image ({first_line(exc)})") from None
    return convert_image(array, channels, size, fit, counts)


#: The last chunk of every PNG file (length 0, type, CRC).
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _verify_png(image: Image.Image, handle: BinaryIO, path: Path) -> None:
    """Check every chunk's CRC up to the end chunk, and that chunk: a PNG cut short after
    its pixel data still decodes, but is a truncated file."""
    image.verify()
    handle.seek(0, os.SEEK_END)
    handle.seek(max(handle.tell() - 1024, 0))
    if PNG_END not in handle.read():
        raise DataError(f"{path}: truncated PNG file (no end chunk)")


def _to_gray_or_rgb(image: Image.Image, counts: Counter[str] | None = None) -> np.ndarray:
    """A decoded PIL image as uint8 ``H x W x 1`` or ``H x W x 3`` (conversions counted)."""
    counts = counts if counts is not None else Counter()
    mode = image.mode
    if mode == "P":
        counts["palette"] += 1
        has_alpha = "transparency" in image.info or image.palette.mode == "RGBA"
        array = _to_gray_or_rgb(image.convert("RGBA" if has_alpha else "RGB"), counts)
        gray = (array[..., :1] == array[..., 1:]).all()
        return array[..., :1] if gray else array
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        counts["16-bit"] += 1
        wide = np.asarray(image).astype(np.float64)
        return np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8)[..., None]
    if mode == "F":
        counts["16-bit"] += 1
        return np.clip(np.rint(np.asarray(image)), 0, 255).astype(np.uint8)[..., None]
    if mode in ("1", "L"):
        return np.asarray(image.convert("L"), np.uint8)[..., None]
    if mode in ("LA", "La", "PA"):
        counts["alpha"] += 1
        return _composite(np.asarray(image.convert("LA"), np.uint8))
    if mode in ("RGBA", "RGBa"):
        counts["alpha"] += 1
        return _composite(np.asarray(image.convert("RGBA"), np.uint8))
    return np.asarray(image.convert("RGB"), np.uint8)


def _composite(array: np.ndarray) -> np.ndarray:
    """Composite colour channels over black using the last (alpha) channel."""
    colour = array[..., :-1].astype(np.uint32)
    alpha = array[..., -1:].astype(np.uint32)
    return ((colour * alpha + 127) // 255).astype(np.uint8)


def convert_image(
    array: np.ndarray,
    channels: int | None = None,
    size: int | None = None,
    fit: Fit = "crop",
    counts: Counter[str] | None = None,
) -> np.ndarray:
    """Convert a uint8 ``H x W x C`` array to ``channels`` and ``size x size`` (None: keep);
    a non-square image becomes square as ``fit`` says (:data:`Fit`). Each conversion made
    is counted in ``counts`` (:data:`CONVERSIONS`)."""
    counts = counts if counts is not None else Counter()
    if array.ndim == 2:
        array = array[..., None]
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    current = array.shape[2]
    same_size = size is None or array.shape[:2] == (size, size)
    if (channels is None or channels == current) and same_size:
        return array
    image = Image.fromarray(array[..., 0] if current == 1 else array)
    if channels == 1 and current == 3:
        image = image.convert("L")
        counts["rgb-to-gray"] += 1
    elif channels == 3 and current == 1:
        image = image.convert("RGB")
        counts["gray-to-rgb"] += 1
    if not same_size:
        image = _to_square(image, int(size), fit, counts)  # type: ignore[arg-type]
    out = np.asarray(image, np.uint8)
    return out[..., None] if out.ndim == 2 else out


def _to_square(image: Image.Image, size: int, fit: Fit, counts: Counter[str]) -> Image.Image:
    width, height = image.size
    lanczos = Image.Resampling.LANCZOS
    if width == height or fit == "stretch":
        counts["resized" if width == height else "stretched"] += 1
        return image.resize((size, size), lanczos)
    if fit == "crop":  # short side to size, then the centre
        scale = size / min(width, height)
        w, h = max(size, round(width * scale)), max(size, round(height * scale))
        left, top = (w - size) // 2, (h - size) // 2
        counts["cropped"] += 1
        return image.resize((w, h), lanczos).crop((left, top, left + size, top + size))
    scale = size / max(width, height)  # pad: long side to size, then the mean border colour
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    pixels = np.asarray(image)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    fill = tuple(int(v) for v in np.rint(border.reshape(len(border), -1).mean(axis=0)))
    canvas = Image.new(image.mode, (size, size), fill[0] if image.mode == "L" else fill)
    canvas.paste(image.resize((w, h), lanczos), ((size - w) // 2, (size - h) // 2))
    counts["padded"] += 1
    return canvas


def encode_png(array: np.ndarray) -> bytes:
    """A uint8 ``H x W x C`` (or ``H x W``) array as PNG bytes, with fixed, deterministic
    settings: the same pixels give the same bytes in every process."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"write_png expects uint8, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"write_png expects H x W x C with C in 1, 3, 4; got {array.shape}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(
        buffer, format="PNG", optimize=False, compress_level=6
    )
    return buffer.getvalue()


def write_png(path: str | os.PathLike[str], array: np.ndarray, atomic: bool = True) -> None:
    """Write :func:`encode_png`'s bytes of ``array`` to ``path``.

    ``atomic=False`` writes in place (for files inside a folder that is itself written
    atomically).
    """
    data = encode_png(array)
    if not atomic:
        Path(path).write_bytes(data)
        return
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


class MixedShapes(DataError):
    """Images of one set differ in shape, and no size and channels were given to convert them.

    ``detail`` names the image and both shapes; ``first_shape`` is the first image's
    ``(H, W, C)``, from which a caller can suggest the conversion to ask for.
    """

    def __init__(self, detail: str, first_shape: tuple[int, ...]) -> None:
        super().__init__(f"{detail} (give a size and channels to convert every image)")
        self.detail = detail
        self.first_shape = first_shape


@dataclass
class LoadedImages:
    """Images decoded from a manifest.

    ``kept`` holds the manifest row positions that were loaded (all of them unless
    bad images were skipped); ``bad`` lists ``(path, reason)`` of the skipped ones.
    """

    images: np.ndarray
    labels: np.ndarray
    kept: np.ndarray
    bad: list[tuple[str, str]] = field(default_factory=list)
    conversions: Counter[str] = field(default_factory=Counter)  # see CONVERSIONS


def load_images(
    manifest: Manifest,
    channels: int | None = None,
    size: int | None = None,
    skip_bad: bool = False,
    progress: bool = True,
    fit: Fit = "crop",
) -> LoadedImages:
    """Decode every image of ``manifest`` into one uint8 ``N x H x W x C`` batch.

    Labels are class indices per ``manifest.classes``. Without ``skip_bad`` the first bad
    image raises a DataError; with it bad images are skipped and listed in ``bad``. Images
    of different shapes are an error unless ``channels`` and ``size`` make them agree.
    """
    paths = manifest.absolute_paths()
    indices = manifest.label_indices()
    batch: np.ndarray | None = None
    first = ""
    kept: list[int] = []
    bad: list[tuple[str, str]] = []
    conversions: Counter[str] = Counter()
    bar = tqdm(paths, desc="loading images", unit="img", disable=None if progress else True)
    for pos, path in enumerate(bar):
        prefix = f"{manifest.row_name(pos)}: " if manifest.origin else ""
        try:
            array = read_image(path, channels, size, fit, conversions)
        except DataError as exc:
            if not skip_bad:
                raise DataError(f"{prefix}{exc}") from None
            bad.append((str(path), _reason(exc, path)))
            continue
        if batch is None:
            batch = np.empty((len(paths), *array.shape), np.uint8)
            first = str(path)
        elif array.shape != batch.shape[1:]:
            raise MixedShapes(
                f"{prefix}{path}: shape {_shape(array.shape)} differs from "
                f"{_shape(batch.shape[1:])} of {first}",
                batch.shape[1:],
            )
        batch[len(kept)] = array
        kept.append(pos)
    if bad:
        log.warning("skipped %d bad image(s) of %d; first: %s", len(bad), len(paths), bad[0][0])
    if batch is None:
        batch = np.zeros((0, size or 0, size or 0, channels or 1), np.uint8)
    kept_array = np.asarray(kept, np.int64)
    return LoadedImages(batch[: len(kept)], indices[kept_array], kept_array, bad, conversions)


def _reason(exc: DataError, path: Path) -> str:
    """The error text without the leading ``<path>: ``."""
    text = str(exc)
    prefix = f"{path}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 ``N x H x W x C`` -> float32 ``N x C x H x W`` in [-1, 1]."""
    import torch

    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"to_tensor expects uint8 NHWC, got {images.dtype} {images.shape}")
    array = np.ascontiguousarray(images, np.float32)  # a fresh, writable float copy
    tensor = torch.from_numpy(array).permute(0, 3, 1, 2)
    return tensor.div_(127.5).sub_(1.0).contiguous()


def to_uint8(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """float ``N x C x H x W`` in [-1, 1] (tensor or array) -> uint8 ``N x H x W x C``."""
    if not isinstance(images, np.ndarray):
        images = images.detach().float().cpu().numpy()
    if images.ndim != 4:
        raise ValueError(f"to_uint8 expects N x C x H x W, got shape {images.shape}")
    scaled = np.nan_to_num((images.astype(np.float32) + 1.0) * 127.5, nan=0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1).copy()


def image_grid(
    images: np.ndarray, nrow: int, pad: int = 2, row_labels: Sequence[str] | None = None
) -> np.ndarray:
    """Tile uint8 ``N x H x W x C`` images into one ``H x W x C`` mosaic.

    ``nrow`` images per row (as torchvision's ``make_grid``), rows filled left to right,
    ``pad`` black pixels between and around the tiles. ``row_labels`` (one per row) are
    written in a strip on the left, e.g. the class of each row.
    """
    if images.ndim != 4:
        raise ValueError(f"image_grid expects N x H x W x C, got shape {images.shape}")
    if nrow < 1 or pad < 0:
        raise ValueError("image_grid needs nrow >= 1 and pad >= 0")
    count, height, width, channels = images.shape
    cols = min(nrow, max(count, 1))
    rows = max(-(-count // cols), 1)
    grid = np.zeros((rows * (height + pad) + pad, cols * (width + pad) + pad, channels), np.uint8)
    for i, image in enumerate(images):
        top = pad + (i // cols) * (height + pad)
        left = pad + (i % cols) * (width + pad)
        grid[top : top + height, left : left + width] = image
    if row_labels is None:
        return grid
    if len(row_labels) != rows:
        raise ValueError(f"image_grid: {len(row_labels)} row labels for {rows} rows")
    return np.concatenate([_label_strip(row_labels, height + pad, pad, grid.shape), grid], 1)


def side_by_side(
    columns: Sequence[np.ndarray], count: int, labels: Sequence[str] | None = None
) -> np.ndarray:
    """``count`` images spread over the set, one per row, each row the same image in every
    one of ``columns`` (u8 N x H x W x C sets of equal shape), enlarged to at least 64
    pixels; ``labels`` (one per image of the set) name the rows."""
    n, height = len(columns[0]), columns[0].shape[1]
    rows = np.unique(np.linspace(0, n - 1, min(count, n)).astype(int))
    tiles = np.stack([images[rows] for images in columns], axis=1)
    tiles = tiles.reshape(-1, *tiles.shape[2:])
    zoom = -(-64 // height)
    tiles = tiles.repeat(zoom, axis=1).repeat(zoom, axis=2)
    names = None if labels is None else [str(labels[i]) for i in rows]
    return image_grid(tiles, nrow=len(columns), row_labels=names)


@functools.cache
def _cmap(path: str) -> frozenset[int]:
    """The code points a font file has glyphs for."""
    from fontTools.ttLib import TTFont

    try:
        with TTFont(path, fontNumber=0, lazy=True) as font:
            return frozenset(font.getBestCmap() or {})
    except Exception:  # an unreadable system font is simply not a candidate
        return frozenset()


@functools.cache
def label_font(text: str, size: int = 11) -> ImageFont.FreeTypeFont:
    """A font with glyphs for every character of ``text``: DejaVu Sans (shipped with
    matplotlib: Latin, Greek, Cyrillic and more), else the first installed font that covers
    them (CJK, for example, where a system font has it), else DejaVu Sans with a warning
    (missing glyphs then show as boxes). Pillow's default font has ASCII only."""
    from matplotlib import font_manager

    needed = {ord(c) for c in text if not c.isspace()}
    default = font_manager.findfont("DejaVu Sans")
    if needed <= _cmap(default):
        return ImageFont.truetype(default, size)
    for entry in font_manager.fontManager.ttflist:
        if "LastResort" not in entry.fname and needed <= _cmap(entry.fname):  # not its boxes
            return ImageFont.truetype(entry.fname, size)
    log.warning("no installed font has every character of %r; some show as boxes", text)
    return ImageFont.truetype(default, size)


def text_image(text: str, size: int = 14, pad: int = 8) -> np.ndarray:
    """``text`` in white on black as a u8 ``H x W x 3`` image: the picture a report shows
    where a stage had nothing to draw (and says why)."""
    font = label_font(text, size)
    left, top, right, bottom = font.getbbox(text)
    image = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(image).text((pad - left, pad - top), text, fill=255, font=font)
    return np.repeat(np.asarray(image)[..., None], 3, axis=2)


def _label_strip(
    labels: Sequence[str], row_height: int, pad: int, shape: tuple[int, ...]
) -> np.ndarray:
    """White text on black, one label centred on each row of a grid of ``shape``."""
    font = label_font("".join(sorted({c for text in labels for c in str(text)})))
    boxes = [font.getbbox(str(text)) for text in labels]
    width = max(right for _, _, right, _ in boxes) + 3 * pad
    strip = Image.new("L", (width, shape[0]), 0)
    draw = ImageDraw.Draw(strip)
    for row, (text, (_, top, _, bottom)) in enumerate(zip(labels, boxes, strict=True)):
        y = pad + row * row_height + (row_height - pad - (bottom - top)) // 2 - top
        draw.text((pad, y), str(text), fill=255, font=font)
    return np.repeat(np.asarray(strip)[..., None], shape[2], axis=2)
