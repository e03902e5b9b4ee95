"""Bad CSV manifests and CSV sources: each a clear error naming the row."""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzzing import image_bytes
from fuzzing.core import parse_prepare, starts

from augment.data.manifest import Manifest, read_csv_frame
from augment.data.sources import CsvSource, load_csv
from augment.errors import ConfigError, DataError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow on corrupt files


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"empty file \(expected a CSV header\)"),
        (b"\n\n", r"empty file"),
        (b"path,path,label\na,b,c\n", r"column 'path' appears twice in the header"),
        (b"path, path ,label\na,b,c\n", r"column 'path' appears twice in the header"),
        ("path,label\na,x\n".encode("utf-16"), r"UTF-16 text, expected UTF-8"),
        ("path,label\né.png,x\n".encode("latin-1"), r"not UTF-8 text \(line 2, byte 11: 0xe9\)"),
        (b"path,label\na\x00.png,x\n", r"NUL byte on line 2"),
        (b'path,label\n"a.png,x\n', r"not a valid CSV file \(.*EOF inside string"),
        (b"path,label\na.png,x,extra\n", r"not a valid CSV file \(.*Expected 2 fields in line 2"),
    ],
    ids=[
        "empty",
        "blank-lines",
        "duplicate-column",
        "duplicate-column-padded",
        "utf-16",
        "latin-1",
        "nul-byte",
        "unbalanced-quote",
        "extra-field",
    ],
)
def test_csv_that_cannot_be_read(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(data)
    with pytest.raises(DataError, match=starts(path, message)):
        read_csv_frame(path)


@pytest.mark.parametrize(
    ("text", "classes", "message"),
    [
        ("label\nx\n", None, r"list\.csv: missing column 'path' \(found: label\)"),
        ("path,label\na.png,\n", None, r"list\.csv row 2: empty label"),
        ("path,label\na.png,q\n", ["x", "y"], r"list\.csv row 2: label 'q' is not one of the "),
        ("path,label,split\na.png,x,train\na.png,x,dev\n", None, r"row 3: split 'dev' is not"),
        ("path,label\n", None, r"list\.csv: no readable images"),
        ("path,label\nmissing.png,x\n", None, r"list\.csv row 2: file not found: .*missing"),
    ],
)
def test_csv_source_rows_that_are_wrong(
    tmp_path: Path, text: str, classes: list[str] | None, message: str
) -> None:
    (tmp_path / "a.png").write_bytes(image_bytes("L", 4, 4, seed=0))
    (tmp_path / "list.csv").write_text(text)
    with pytest.raises(DataError, match=message):
        load_csv(CsvSource(path=str(tmp_path / "list.csv"), classes=classes))


def test_csv_header_only_and_extra_columns(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(image_bytes("L", 4, 4, seed=0))
    (tmp_path / "list.csv").write_text("path,label,notes,\na.png,x,fine,\n")
    assert load_csv(CsvSource(path=str(tmp_path / "list.csv"))).labels.tolist() == ["x"]
    assert list(read_csv_frame(tmp_path / "list.csv").columns) == [
        "path",
        "label",
        "notes",
        "Unnamed: 3",
    ]
    (tmp_path / "list.csv").write_text("path,label\n")
    assert len(Manifest.read(tmp_path / "list.csv")) == 0


def test_csv_classes_listed_twice_is_a_config_error() -> None:
    source = {"kind": "csv", "path": "x.csv", "classes": ["a", "b", "a"]}
    with pytest.raises(ConfigError, match=r"^params\.yaml prepare\.source\.classes: a class is"):
        parse_prepare({"source": source})
