"""Foreign and broken checkpoints: each a clear error."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from fuzzing import NotAState, image_bytes, png_declaring, torch_bytes, zip_bytes
from fuzzing.core import starts

from augment.checkpoint import load_checkpoint
from augment.errors import ModelError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow on corrupt files


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda: torch_bytes(NotAState()), r"not a gan-augment checkpoint \(UnpicklingError\)"),
        (lambda: torch_bytes({"step": 1}), r"checkpoint \(format none, expected 1\)"),
        (lambda: torch_bytes([1, 2]), r"not a gan-augment checkpoint \(a list\)"),
        (lambda: torch_bytes({"format": 1}), r"checkpoint \(lacks fingerprint, variant, "),
        (lambda: zip_bytes({"a.txt": b"hi"}), r"not a gan-augment checkpoint \(RuntimeError\)"),
        (lambda: b"", r"not a gan-augment checkpoint \(EOFError\)"),
        (lambda: torch_bytes({"format": 1})[:-30], r"not a gan-augment checkpoint"),
        (lambda: b"x" * 100, r"not a gan-augment checkpoint \(UnpicklingError\)"),
    ],
)
def test_checkpoint_that_is_not_ours(
    tmp_path: Path, content: Callable[[], bytes], message: str
) -> None:
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(content())
    with pytest.raises(ModelError, match=starts(path, message)):
        load_checkpoint(path)


def test_png_declaring_writes_a_valid_ihdr() -> None:
    """The bomb test's crafted header is real PNG: declaring the true size changes nothing,
    and the IHDR chunk's CRC (what Pillow checks) is correct."""
    png = image_bytes("L", 3, 3, seed=0)
    assert png_declaring(png, 3, 3) == png
    crafted = png_declaring(png, 100_000, 7)
    assert struct.unpack(">I", crafted[29:33])[0] == zlib.crc32(crafted[12:29])
