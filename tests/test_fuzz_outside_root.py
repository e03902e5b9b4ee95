"""Paths that escape the dataset root are refused; those inside load."""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzzing import ROOT_FILES, ROOT_LINKS, image_bytes, write_files
from fuzzing.core import starts

from augment.data.images import load_images
from augment.data.manifest import Manifest
from augment.data.sources import CsvSource, FolderSource, load_csv, load_folder
from augment.errors import DataError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow on corrupt files


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """tmp_path/data (the dataset root: img/a.png ...), tmp_path/outside and the links."""
    write_files(tmp_path, ROOT_FILES, ROOT_LINKS)
    return tmp_path


@pytest.mark.parametrize(
    "path",
    ["../outside/o.png", "img/../../outside/o.png", "link_out/o.png", "img/file_out.png", "ABS"],
)
def test_csv_path_outside_the_root_is_refused(layout: Path, path: str) -> None:
    path = path.replace("ABS", str(layout / "data/img/a.png"))
    csv = layout / "data/list.csv"
    csv.write_text(f"path,label\nimg/a.png,x\n{path},y\n")
    root = layout / "data"
    message = (
        f"{csv} row 3: path {path} is outside the dataset root {root} "
        "(set allow_outside_root: true to allow)"
    )
    with pytest.raises(DataError) as error:
        load_csv(CsvSource(path=str(csv)))
    assert str(error.value) == message
    loaded = load_csv(CsvSource(path=str(csv), allow_outside_root=True))
    assert loaded.labels.tolist() == ["x", "y"]


def test_csv_paths_inside_the_root_load(layout: Path) -> None:
    csv = layout / "data/list.csv"
    paths = ["img/a.png", "./img/sub/../a.png", "link_in/a.png", "img/file_in.png"]
    csv.write_text("path,label\n" + "".join(f"{p},x\n" for p in paths))
    assert len(load_csv(CsvSource(path=str(csv))).images) == 4


def test_internal_manifests_may_point_outside_their_folder(layout: Path) -> None:
    """The synthesize stage writes manifests whose real rows are ``../`` paths."""
    manifest = layout / "data/aug/manifest.csv"
    manifest.parent.mkdir()
    manifest.write_text("path,label\n../img/a.png,x\n../../outside/o.png,y\n")
    loaded = load_images(Manifest.read(manifest), progress=False)
    assert loaded.images.shape == (2, 4, 4, 1)


@pytest.mark.parametrize(
    ("link", "target"), [("data/cls/out.png", "../../outside/o.png"), ("data/out", "../outside")]
)
def test_folder_symlink_outside_the_root_is_refused(tmp_path: Path, link: str, target: str) -> None:
    files = (("data/cls/a.png", image_bytes("L", 4, 4, seed=0)), *ROOT_FILES[2:])
    write_files(tmp_path, files, [(link, target)])
    root = tmp_path / "data"
    with pytest.raises(DataError, match=starts(tmp_path / link, "links to .* which is outside")):
        load_folder(FolderSource(root=str(root)))
    assert len(load_folder(FolderSource(root=str(root), allow_outside_root=True)).images) == 2
