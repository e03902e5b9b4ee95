"""2. image files: truncated, bit-flipped and lying PNG/JPEG files."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from hypothesis import strategies as st
from PIL import Image

from augment.data.images import load_images, read_image
from augment.data.manifest import Manifest
from fuzzing.core import U32, Case, mutated

# -- 2. image files -------------------------------------------------------------------------

#: Image modes drawn and the channels of the array each one is made from.
MODES = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4, "P": 3, "1": 1, "I;16": 1}


def image_bytes(mode: str, width: int, height: int, seed: int, fmt: str = "PNG") -> bytes:
    """A small image of ``mode`` with seeded random pixels, encoded as ``fmt``."""
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 2**16, (height, width), dtype=np.uint16))
    else:
        pixels = rng.integers(0, 256, (height, width, MODES[mode]), dtype=np.uint8)
        image = Image.fromarray(pixels[..., 0] if MODES[mode] == 1 else pixels).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """A PNG chunk with its length and (correct) CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(png: bytes, width: int, height: int) -> bytes:
    """``png`` with its IHDR saying ``width`` x ``height`` (CRC recomputed: only the
    pixel-count guard can refuse it before decoding)."""
    ihdr = png[16:29]  # signature 8, length 4, type 4, then the 13 data bytes
    return png[:8] + png_chunk(b"IHDR", struct.pack(">II", width, height) + ihdr[8:]) + png[33:]


#: Header fields of each format: PNG IHDR width/height (big-endian), BMP's (little-endian)...
IMAGE_FIELDS = {
    "PNG": [(16, ">I"), (20, ">I")],
    "BMP": [(18, "<I"), (22, "<I"), (28, "<H")],
    "GIF": [(6, "<H"), (8, "<H")],
    "TIFF": [(4, "<I")],
}


@st.composite
def image_file(draw: st.DrawFn) -> tuple[str, bytes | None]:
    """``(what, content)`` of a broken image file (None: a directory with an image's name)."""
    fmt = draw(st.sampled_from(["PNG", "PNG", "PNG", "BMP", "GIF", "TIFF"]))
    modes = sorted(MODES) if fmt == "PNG" else ["L", "RGB"]
    mode, seed = draw(st.sampled_from(modes)), draw(st.integers(0, 2**16))
    width, height = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    valid = image_bytes(mode, width, height, seed, fmt)
    kind = draw(st.sampled_from(["mutation", "mutation", "declares", "directory", "empty"]))
    if kind == "directory":
        return "a directory named like an image", None
    if kind == "empty":
        return "an empty file", b""
    if kind == "declares" and fmt == "PNG":
        big = (draw(U32.filter(bool)), draw(U32.filter(bool)))
        return f"{mode} PNG declaring {big[0]}x{big[1]}", png_declaring(valid, *big)
    what, data = draw(mutated(valid, IMAGE_FIELDS[fmt]))
    return f"{mode} {width}x{height} {fmt}: {what}", data


@st.composite
def image_cases(draw: st.DrawFn) -> Case:
    """A broken image read alone, in a manifest built in memory, or through a CSV manifest."""
    what, content = draw(image_file())
    name = "img/x.png"
    good = ("good.png", image_bytes("L", 4, 4, 0))
    channels, size = draw(st.sampled_from([None, 1, 3])), draw(st.sampled_from([None, 4]))
    skip_bad = draw(st.booleans())
    rows = [{"path": "good.png", "label": "a"}, {"path": name, "label": "b"}]

    def from_rows(d: Path) -> object:
        return load_images(Manifest.from_rows(rows, d), 1, 4, skip_bad, progress=False)

    def from_csv(d: Path) -> object:
        return load_images(Manifest.read(d / "list.csv"), 1, 4, skip_bad, progress=False)

    loaders: dict[str, Callable[[Path], object]] = {
        "read_image": lambda d: read_image(d / name, channels, size),
        "load_images": from_rows,
        "load_images(csv)": from_csv,
    }
    loader = draw(st.sampled_from(sorted(loaders)))
    listing = ("list.csv", f"path,label\ngood.png,a\n{name},b\n".encode())
    return Case(
        f"{loader} (skip_bad {skip_bad}, channels {channels}, size {size}): {what}",
        loaders[loader],
        ("x.png",),
        files=(good, listing, (name, content)),
        check=None if content is not None else _must_fail(skip_bad and loader != "read_image"),
    )


def _must_fail(skipped: bool) -> Callable[[Path, str | None], str | None]:
    """A check: the input must be refused (unless bad images are skipped)."""
    return lambda _, message: "accepted" if message is None and not skipped else None
