"""Bad input to every loader and parser fails with one clear error, never a traceback.

Each family's hypothesis property draws cases from tests/fuzzing.py (also used by the
longer benchmarks/fuzz.py harness) and requires every case to be accepted or to raise
the expected AugmentError with a one-line message naming the file, row or key; the
example tests pin down the messages of the classic bad inputs.
"""

from __future__ import annotations

import gzip
import math
import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fuzzing import (
    FAMILIES,
    ROOT_FILES,
    ROOT_LINKS,
    Case,
    NotAState,
    config_targets,
    edit_model,
    field_accepts,
    idx_bytes,
    image_bytes,
    png_declaring,
    run_case,
    tiny_onnx_models,
    torch_bytes,
    write_files,
    zip_bytes,
)
from hypothesis import HealthCheck, given, settings

from augment.checkpoint import load_checkpoint
from augment.config import parse
from augment.data.images import MAX_PIXELS, load_images, read_image
from augment.data.manifest import Manifest, read_csv_frame
from augment.data.sources import (
    CsvSource,
    FolderSource,
    load_csv,
    load_folder,
    read_idx,
    read_idx_pair,
)
from augment.errors import ConfigError, DataError, ModelError
from augment.runtime import OnnxGenerator
from pipelines._common import load_params

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow on corrupt files


def fuzz(examples: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Deterministic hypothesis settings: the same cases on every run and machine."""
    return settings(
        derandomize=True,
        database=None,
        deadline=None,
        max_examples=examples,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def starts(path: Path, message: str) -> str:
    """A regex: an error message naming ``path`` first, with ``message`` after it."""
    return rf"^{re.escape(str(path))}: (.* )?\(?{message}"


def assert_clear(case: Case) -> None:
    outcome = run_case(case)
    assert outcome.kind != "bug", f"{case.what}: {outcome.detail}"


# -- properties: every family -----------------------------------------------------------------


@fuzz(120)
@given(FAMILIES["idx"]())
def test_fuzz_idx_files(case: Case) -> None:
    assert_clear(case)


@fuzz(120)
@given(FAMILIES["image"]())
def test_fuzz_image_files(case: Case) -> None:
    assert_clear(case)


@fuzz(120)
@given(FAMILIES["csv"]())
def test_fuzz_csv_manifests(case: Case) -> None:
    assert_clear(case)


@fuzz(120)
@given(FAMILIES["outside_root"]())
def test_fuzz_paths_outside_the_dataset_root(case: Case) -> None:
    assert_clear(case)


@fuzz(150)
@given(FAMILIES["params"]())
def test_fuzz_params(case: Case) -> None:
    assert_clear(case)


@fuzz(100)
@given(FAMILIES["onnx"]())
def test_fuzz_onnx_models(case: Case) -> None:
    assert_clear(case)


@fuzz(80)
@given(FAMILIES["checkpoint"]())
def test_fuzz_checkpoints(case: Case) -> None:
    assert_clear(case)


# -- 1. idx files -----------------------------------------------------------------------------

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


# -- 2. image files ---------------------------------------------------------------------------


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


# -- 3. CSV manifests -------------------------------------------------------------------------


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


def parse_prepare(data: dict[str, Any]) -> Any:
    from augment.data.prepare import PrepareConfig

    return parse(PrepareConfig, data, "params.yaml prepare")


# -- 4. paths outside the dataset root --------------------------------------------------------


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


# -- 5. params.yaml ---------------------------------------------------------------------------


def test_every_config_key_names_itself_when_wrong() -> None:
    """Every field of every model reachable from params.yaml (variants' Params included),
    set to values of the wrong type or range: a one-line ConfigError naming the key."""
    checked = 0
    for target in config_targets():
        for name in target.model.model_fields:
            if name == "kind" and target.base:
                continue
            for value in ({"a": {"b": [1]}}, ["x"], "abc", None, -1, 10**30):
                if field_accepts(target.model, name, value):
                    continue
                with pytest.raises(ConfigError) as error:
                    target.parse({**dict(target.base), name: value})
                message = str(error.value)
                assert message.startswith(target.key(name)) and "\n" not in message, message
                checked += 1
        with pytest.raises(ConfigError, match=rf"^{re.escape(target.key('typo'))}: unknown key"):
            target.parse({**dict(target.base), "typo": 1})
    assert checked > 500


def test_source_errors_name_the_key_without_the_union_tag() -> None:
    with pytest.raises(ConfigError, match=r"^params\.yaml prepare\.source\.path: Input should"):
        parse_prepare({"source": {"kind": "csv", "path": 3}})
    with pytest.raises(ConfigError, match=r"^params\.yaml prepare\.source\.kind: Input tag 'x'"):
        parse_prepare({"source": {"kind": "x"}})
    with pytest.raises(ConfigError, match=r"^params\.yaml prepare\.source\.root: missing"):
        parse_prepare({"source": {"kind": "folder"}})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"- 1\n- 2\n", r"expected a mapping at the top level"),
        (b"", r"expected a mapping at the top level"),
        (b"a: [1\nb: 2\n", r"not valid YAML \(expected ',' or '\]', but got ':' at line 2"),
        (b"\xff\xfe\x00", r"not UTF-8 text \(byte 0\)"),
        (b"[" * 700 + b"]" * 700, r"not valid YAML \(RecursionError\)"),
        (b"a: !!python/object:os.system x", r"not valid YAML \(could not determine a const"),
    ],
)
def test_params_files_that_are_not_a_mapping(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError, match=starts(path, message)):
        load_params(path)
    with pytest.raises(ConfigError, match=starts(tmp_path, "cannot read")):
        load_params(tmp_path)


# -- 6. ONNX models ---------------------------------------------------------------------------


def model_with(tmp_path: Path, task: str, props: dict[str, str]) -> Path:
    """The tiny ``task`` model with metadata ``props`` replaced (a value "DROP": removed)."""

    def edit(model: Any) -> None:
        kept = [(p.key, props.get(p.key, p.value)) for p in model.metadata_props]
        del model.metadata_props[:]
        for key, value in kept:
            if value != "DROP":
                model.metadata_props.add(key=key, value=value)

    path = tmp_path / f"{task}.onnx"
    path.write_bytes(edit_model(tiny_onnx_models()[task], edit))
    return path


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"classes": "not json"}, r"inconsistent metadata \(classes 'not json' is not a JSON list"),
        ({"classes": '"abc"'}, r"classes '\"abc\"' is not a JSON list of strings"),
        ({"classes": '["a", "a"]'}, r"classes must be distinct strings"),
        ({"image_size": "abc"}, r"image_size 'abc' is not an integer"),
        ({"image_size": "0"}, r"image_size 0 is outside 1\.\.8192"),
        ({"latent_dim": "-1"}, r"latent_dim -1 is outside 0\.\.65536"),
        ({"task": "nonsense"}, r"task 'nonsense' is not one of synthesize, translate, upscale"),
        ({"channels": "2"}, r"channels 2 is not 1 or 3"),
        ({"scale": "0"}, r"scale 0 is outside 1\.\.16"),
        ({"normalization": "[0,1]"}, r"normalization '\[0,1\]' is not '\[-1,1\]'"),
        ({"latent_dim": "DROP"}, r"not a gan-augment model \(metadata lacks latent_dim\)"),
    ],
)
def test_onnx_metadata_that_is_wrong(tmp_path: Path, props: dict[str, str], message: str) -> None:
    path = model_with(tmp_path, "synthesize", props)
    with pytest.raises(ModelError, match=starts(path, message)):
        OnnxGenerator(path)


@pytest.mark.parametrize(
    ("task", "props", "use", "message", "at_open"),
    [
        ("synthesize", {"classes": "[]"}, "synthesize", r"needs classes, the metadata lists", 1),
        ("synthesize", {"latent_dim": "5"}, "synthesize", r"input 'z' has shape \[N, 4\], the", 1),
        ("translate", {"channels": "1"}, "translate", r"'image' has shape \[N, 3, N, N\], the", 1),
        ("upscale", {"channels": "3"}, "upscale", r"metadata implies \[N, 3, N, N\]", 1),
        ("translate", {"domains": '["a"]'}, "translate", r"needs two or more domains", 1),
        ("upscale", {"task": "synthesize"}, "synthesize", r"takes z, label, the graph has no", 1),
        ("synthesize", {}, "translate", r"is a 'synthesize' model, not 'translate'", 0),
        ("translate", {}, "upscale", r"is a 'translate' model, not 'upscale'", 0),
        ("upscale", {}, "synthesize", r"is a 'upscale' model, not 'synthesize'", 0),
        (
            "synthesize",
            {"image_size": "16"},
            "synthesize",
            r"generated images of shape \(2, 1, 8",
            0,
        ),
    ],
)
def test_onnx_model_that_cannot_serve(
    tmp_path: Path, task: str, props: dict[str, str], use: str, message: str, at_open: int
) -> None:
    path = model_with(tmp_path, task, props)
    model = OnnxGenerator(path)
    images = np.zeros((2, model.info.channels, 8, 8), np.float32)
    calls: dict[str, Callable[[], object]] = {
        "synthesize": lambda: model.generate([0, 1], seed=0),
        "translate": lambda: model.translate(images, domain="b"),
        "upscale": lambda: model.upscale(images),
    }
    with pytest.raises(ModelError, match=starts(path, message)):
        calls[use]()
    if at_open:  # a model opened for its task is checked at once
        with pytest.raises(ModelError, match=starts(path, message)):
            OnnxGenerator(path, task=use)


def test_onnx_prefixes_and_wrong_inputs(tmp_path: Path) -> None:
    data = tiny_onnx_models()["upscale"]
    path = tmp_path / "upscale.onnx"
    for length in np.linspace(0, len(data) - 1, 40).astype(int):
        path.write_bytes(data[:length])
        with pytest.raises(ModelError, match=starts(path, "")):
            OnnxGenerator(path, task="upscale").upscale(np.zeros((1, 1, 4, 4), np.float32))
    path.write_bytes(data)
    with pytest.raises(ModelError, match=starts(path, "takes images of 1 channel")):
        OnnxGenerator(path).upscale(np.zeros((1, 3, 4, 4), np.float32))


# -- 7. checkpoints ---------------------------------------------------------------------------


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
