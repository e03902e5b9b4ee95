"""Bad idx files: each a clear one-line error naming the file."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest
from fuzzing import idx_bytes
from fuzzing.core import starts

from augment.data.sources import read_idx, read_idx_pair
from augment.errors import DataError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow on corrupt files


IMAGES = idx_bytes(0x803, (2, 3, 3), bytes(18))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (IMAGES[:10], r"truncated idx header \(10 of 16 bytes\)"),
        (IMAGES[:-1], r"idx header says 2x3x3 \(expected 34 bytes\) but the data has 33"),
        (idx_bytes(0x803, (3, 3, 3), bytes(18)), r"idx header says 3x3x3 \(expected 43 bytes\)"),
        (idx_bytes(0x800, (), b"\x05"), r"idx header declares 0 dimensions"),
        (idx_bytes(0x804, (65536,) * 4, b""), r"65536x65536x65536x65536 \(expected 1844674407"),
        (idx_bytes(0x803, (2**32 - 1,) * 3, b""), r"expected 79228162458924105385300197391 "),
        (b"\x01\x00\x08\x03" + IMAGES[4:], r"not an idx file \(magic 0x01000803\)"),
        (b"\x00\x00\x07\x03" + IMAGES[4:], r"not an idx file \(magic 0x00000703\)"),
        (b"\x1f\x8b garbage", r"corrupt gzip data"),
        (gzip.compress(IMAGES)[:-5], r"corrupt gzip data"),
        (gzip.compress(b"\x00\x00"), r"2 bytes, too short for an idx header"),
    ],
    ids=[
        "truncated-header",
        "truncated-data",
        "lying-dim",
        "ndim-0",
        "dims-overflow-int64",
        "huge-dims",
        "wrong-magic",
        "unknown-dtype",
        "gzip-garbage",
        "gzip-truncated",
        "gzip-of-too-short",
    ],
)
def test_idx_lying_and_broken_headers(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(data)
    assert math.prod((65536,) * 4) > np.iinfo(np.int64).max  # overflows np.prod silently
    with pytest.raises(DataError, match=starts(path, message)):
        read_idx(path)


def test_idx_pair_without_images(tmp_path: Path) -> None:
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.write_bytes(idx_bytes(0x803, (2, 0, 3), b""))
    labels.write_bytes(idx_bytes(0x801, (2,), b"\x00\x01"))
    with pytest.raises(DataError, match=starts(images, r"no images \(idx shape 2x0x3\)")):
        read_idx_pair(images, labels)
