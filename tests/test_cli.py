"""The `augment` command on a real exported model: inspect, generate, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def test_generator_pickles_without_its_session(model):
    import pickle

    import numpy as np

    from augment.runtime import Generator

    generator = Generator(model, task="synthesize")
    before = generator.generate([0, 2, 1], seed=5)  # opens the session
    clone = pickle.loads(pickle.dumps(generator))
    assert clone._session is None  # each process opens its own
    np.testing.assert_array_equal(clone.generate([0, 2, 1], seed=5), before)
