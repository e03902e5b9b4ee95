"""Bad image files: truncated, bit-flipped, huge or odd; each a clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fuzzing import image_bytes, png_declaring
from fuzzing.core import starts

from augment.data.images import MAX_PIXELS, load_images, read_image
from augment.data.manifest import Manifest
from augment.errors import DataError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow on corrupt files


def test_every_prefix_of_a_png_is_a_clear_error(tmp_path: Path) -> None:
    png = image_bytes("RGB", 5, 4, seed=0)
    path = tmp_path / "x.png"
    for length in range(len(png)):
        path.write_bytes(png[:length])
        with pytest.raises(DataError, match=starts(path, "")) as error:
            read_image(path)
        assert "\n" not in str(error.value)
    path.write_bytes(png)
    assert read_image(path).shape == (4, 5, 3)


@pytest.mark.parametrize("side", [8193, 100_000])
def test_png_declaring_huge_dimensions_is_refused_unread(tmp_path: Path, side: int) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_declaring(image_bytes("L", 2, 2, seed=0), side, side))
    assert side * side > MAX_PIXELS
    with pytest.raises(DataError, match=starts(path, ".*decompression bomb")):
        read_image(path)


def test_bit_flips_and_odd_files_are_clear_errors(tmp_path: Path) -> None:
    png = image_bytes("L", 4, 4, seed=1)
    rng = np.random.default_rng(0)
    path = tmp_path / "flipped.png"
    for bit in rng.choice(8 * len(png), 60, replace=False):
        path.write_bytes(
            png[: bit // 8] + bytes([png[bit // 8] ^ 1 << bit % 8]) + png[bit // 8 + 1 :]
        )
        try:
            read_image(path)
        except DataError as exc:
            assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "random.png").write_bytes(rng.bytes(300))
    for name, message in [
        ("empty.png", "not a readable image"),
        ("folder.png", "is a directory, not an image file"),
        ("random.png", "not a readable image"),
        ("missing.png", "file not found"),
        ("n" * 300 + ".png", "cannot open"),
    ]:
        with pytest.raises(DataError, match=rf"{name}: {message}"):
            read_image(tmp_path / name)


def test_bad_image_in_a_manifest_names_its_row(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(image_bytes("L", 4, 4, seed=0))
    (tmp_path / "b.png").write_bytes(image_bytes("L", 5, 5, seed=0))
    (tmp_path / "m.csv").write_text("path,label\na.png,x\nb.png,y\n")
    with pytest.raises(DataError, match=r"m\.csv row 3: .*b\.png: shape 5x5x1 differs from 4x4x1"):
        load_images(Manifest.read(tmp_path / "m.csv"), progress=False)
