"""The `augment` command on a real exported model: inspect, generate, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from augment.data.manifest import Manifest
from augment.export import export_onnx
from augment.variant import DataSpec

CLASSES = ("cat", "dog", "owl")


@pytest.fixture(scope="module")
def model(registry, tmp_path_factory) -> Path:
    """An (untrained) sngan exported to ONNX: a valid model for the command's plumbing."""
    variant = registry.create("sngan", {}, DataSpec(8, 1, CLASSES), seed=0)
    path = tmp_path_factory.mktemp("model") / "sngan.onnx"
    export_onnx(variant, variant.generator.eval(), path, manifest_sha256="f00d")
    return path


def augment(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "augment.cli", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_inspect_shows_the_metadata(model):
    result = augment("inspect", model, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["task"] == "synthesize" and info["variant"] == "sngan"
    assert info["classes"] == list(CLASSES) and info["manifest_sha256"] == "f00d"
    assert len(info["sha256"]) == 64


def test_a_variants_own_metadata_reaches_the_file_and_inspect(registry, tmp_path):
    """``Variant.metadata()`` keys beyond latent_dim/scale are kept (``variant.<key>``)."""
    from augment.runtime import OnnxGenerator

    sngan = registry.get("sngan").cls

    class WithCodes(sngan):  # a plugin's variant with metadata of its own
        def metadata(self) -> dict:
            return super().metadata() | {"codes": 2, "prior": "uniform"}

    variant = WithCodes(sngan.Params(), DataSpec(8, 1, CLASSES))
    path = tmp_path / "codes.onnx"
    export_onnx(variant, variant.generator.eval(), path)
    info = OnnxGenerator(path).info
    assert info.extra == {"codes": "2", "prior": '"uniform"'} and info.latent_dim == 64
    shown = augment("inspect", path)
    assert shown.returncode == 0 and "variant.codes    2" in shown.stdout, shown.stderr
    assert json.loads(augment("inspect", path, "--json").stdout)["extra"]["codes"] == "2"


def test_generate_writes_images_and_a_manifest(model, tmp_path):
    out = tmp_path / "out"
    result = augment("generate", model, out, "--per-class", 4, "--classes", "owl,cat")
    assert result.returncode == 0, result.stderr
    manifest = Manifest.read(out / "manifest.csv")
    assert manifest.counts("train", "synthetic").to_dict() == {"cat": 4, "owl": 4}
    assert all(p.is_file() for p in manifest.absolute_paths())
    assert set(manifest.frame.variant) == {"sngan"}
    again = tmp_path / "again"
    augment("generate", model, again, "--per-class", 4, "--classes", "owl,cat")
    assert (out / "images/2/000003.png").read_bytes() == (
        again / "images/2/000003.png"
    ).read_bytes()


def test_errors_are_one_line_and_leave_no_output(model, tmp_path):
    out = tmp_path / "out"
    result = augment("generate", model, out, "--classes", "cat,zebra")
    assert result.returncode == 2 and not out.exists()
    assert result.stderr.strip() == (
        f"augment: error: {model}: unknown class 'zebra' (classes: cat, dog, owl)"
    )
    missing = augment("inspect", tmp_path / "nope.onnx")
    assert missing.returncode == 2 and "nope.onnx: model file not found" in missing.stderr
    (tmp_path / "junk.onnx").write_bytes(b"\x00junk")
    junk = augment("inspect", tmp_path / "junk.onnx")
    assert junk.returncode == 2 and "junk.onnx: not a readable ONNX file" in junk.stderr


def test_a_folder_gan_augment_did_not_write_is_never_replaced(model, tmp_path):
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"the user's own file")
    result = augment("generate", model, mine, "--per-class", 2)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "photos: folder exists with 1 entry that gan-augment did not write" in result.stderr
    assert "--force" in result.stderr
    assert [p.name for p in mine.iterdir()] == ["holiday.jpg"]  # untouched

    out = tmp_path / "out"  # a folder it wrote itself is replaced without asking ...
    for _ in range(2):
        assert augment("generate", model, out, "--per-class", 2).returncode == 0
    assert Manifest.read(out / "manifest.csv").counts("train").sum() == 6
    assert oct(out.stat().st_mode & 0o777) != oct(0o700)  # normal permissions, not mkdtemp's
    # ... and --force replaces a foreign one
    forced = augment("generate", model, mine, "--per-class", 2, "--force")
    assert forced.returncode == 0, forced.stderr
    assert not (mine / "holiday.jpg").exists() and (mine / "manifest.csv").is_file()


def test_generator_pickles_without_its_session(model):
    import pickle

    import numpy as np

    from augment.runtime import OnnxGenerator

    generator = OnnxGenerator(model, task="synthesize")
    before = generator.generate([0, 2, 1], seed=5)  # opens the session
    clone = pickle.loads(pickle.dumps(generator))
    assert clone._session is None  # each process opens its own
    np.testing.assert_array_equal(clone.generate([0, 2, 1], seed=5), before)


def write_images(folder: Path) -> dict[str, np.ndarray]:
    """Gray PNGs of different sizes, one in a subfolder: relative path -> u8 H x W."""
    from augment.data.images import write_png

    rng = np.random.default_rng(0)
    images = {"a.png": rng.integers(0, 256, (5, 7), np.uint8)}
    images["sub/b.png"] = rng.integers(0, 256, (12, 4), np.uint8)
    for name, image in images.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        write_png(folder / name, image[..., None])
    return images


def test_upscale_and_translate_a_folder(tiny_models, tmp_path):
    from augment.data.images import read_image

    images = write_images(tmp_path / "in")
    result = augment("upscale", tiny_models["upscale"], tmp_path / "in", tmp_path / "up")
    assert result.returncode == 0, result.stderr
    for name, image in images.items():  # the tiny model is a x2 nearest upscaler
        upscaled = read_image(tmp_path / "up" / name)[..., 0]
        np.testing.assert_array_equal(upscaled, image.repeat(2, 0).repeat(2, 1))
    result = augment(
        "translate",
        tiny_models["stargan"],
        tmp_path / "in/a.png",
        tmp_path / "tr",
        "--domain",
        "inverted",
    )
    assert result.returncode == 0, result.stderr
    inverted = read_image(tmp_path / "tr/a.png")[..., 0].astype(int)
    assert np.abs(inverted - (255 - images["a.png"].astype(int))).max() <= 1


@pytest.mark.parametrize(
    ("command", "model", "extra", "message"),
    [
        ("upscale", "upscale", ["--scale", "4"], "upscales x2, not x4"),
        ("upscale", "translate", [], "is a 'translate' model"),
        ("translate", "stargan", ["--domain", "sepia"], "unknown domain 'sepia'"),
        ("upscale", "upscale", ["--tile", "8", "--overlap", "4"], "tile (8) must be larger"),
    ],
)
def test_image_commands_fail_clearly(tiny_models, tmp_path, command, model, extra, message):
    write_images(tmp_path / "in")
    out = tmp_path / "out"
    result = augment(command, tiny_models[model], tmp_path / "in", out, *extra)
    assert result.returncode == 2 and not out.exists()
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_corrupt_image_fails_the_folder_without_output(tiny_models, tmp_path):
    write_images(tmp_path / "in")
    (tmp_path / "in/sub/c.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    result = augment("upscale", tiny_models["upscale"], tmp_path / "in", out)
    assert result.returncode == 2 and not out.exists()
    assert "sub/c.png: not a readable image" in result.stderr
    empty = augment("upscale", tiny_models["upscale"], tmp_path / "nothing", out)
    assert empty.returncode == 2 and "nothing: no such file or folder" in empty.stderr
