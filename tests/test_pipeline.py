"""`dvc repro` of the whole pipeline on a tiny params override, in a temporary project copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from augment.data.manifest import Manifest
from augment.io import sha256_file
from augment.runtime import Generator

ROOT = Path(__file__).resolve().parents[1]
TINY: dict[str, Any] = {
    "prepare": {"limit_per_class": 40, "long_tail": {"ratio": 4}},
    "classifier": {"epochs": 2},
    "variants": ["cgan", "acgan"],
    "train": {
        "steps": 6,
        "batch_size": 16,
        "checkpoint_every": 3,
        "sample_every": 3,
        "log_every": 2,
    },
}
pytestmark = pytest.mark.slow


def merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = merge(base[key], value) if isinstance(value, dict) and key in base else value
    return out


def edit_params(project: Path, override: dict) -> None:
    path = project / "params.yaml"
    path.write_text(yaml.safe_dump(merge(yaml.safe_load(path.read_text()), override)))


def dvc(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["dvc", *args], cwd=project, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A fresh git + DVC project holding this repo's pipeline, run once with tiny params."""
    dst = tmp_path_factory.mktemp("project")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache")
    for name in ("augment", "plugins", "pipelines"):
        shutil.copytree(ROOT / name, dst / name, ignore=ignore)
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, dst / name)
    subprocess.run(["git", "init", "-q"], cwd=dst, check=True)
    assert dvc(dst, "init", "-q").returncode == 0
    edit_params(dst, TINY)
    result = dvc(dst, "repro")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return dst


def test_repro_balances_every_class_with_synthetic_images(project):
    prepared = Manifest.read(project / "data/prepared/manifest.csv")
    real = prepared.counts("train")
    assert real.max() / real.min() == pytest.approx(4, rel=0.15)  # long-tailed
    for variant in TINY["variants"]:
        augmented = Manifest.read(project / f"data/augmented/{variant}/manifest.csv")
        total = augmented.counts("train")
        assert (total == real.max()).all(), total.to_dict()
        synthetic = augmented.frame[augmented.frame.source == "synthetic"]
        assert set(synthetic.split) == {"train"}
        assert set(synthetic.variant) == {variant}
        assert len(synthetic) == (real.max() - real).sum()
        assert all(path.is_file() for path in augmented.absolute_paths())
        real_rows = augmented.frame[augmented.frame.source == "real"].drop(columns="path")
        pd.testing.assert_frame_equal(
            real_rows.reset_index(drop=True),
            prepared.frame.drop(columns="path").reset_index(drop=True),
        )


def test_repro_exports_models_with_metadata_and_reports(project):
    for variant in TINY["variants"]:
        model = Generator(project / f"models/onnx/{variant}.onnx", task="synthesize")
        assert model.info.variant == variant
        assert model.info.manifest_sha256 == sha256_file(project / "data/prepared/manifest.csv")
        assert (project / f"reports/train/{variant}/final.png").is_file()
        assert (project / f"plots/train/{variant}/losses.csv").is_file()
        for stage in ("train", "export", "synthesize"):
            assert (project / f"metrics/{stage}/{variant}.json").is_file()
    assert (project / "reports/prepare/class_counts.png").is_file()
    assert (project / "models/classifier.pt").is_file()


def test_second_repro_has_nothing_to_do(project):
    status = dvc(project, "status")
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout


def test_bad_params_fail_clearly_and_keep_outputs(project):
    onnx = project / "models/onnx/cgan.onnx"
    before = onnx.read_bytes()
    params = (project / "params.yaml").read_text()
    try:
        edit_params(project, {"variants": ["cgan", "nosuch"], "recipes": {"nosuch": {}}})
        result = dvc(project, "repro")
        assert result.returncode != 0
        assert "unknown variant 'nosuch' (installed: acgan, cgan" in result.stderr + result.stdout

        (project / "params.yaml").write_text(params)
        edit_params(project, {"recipes": {"cgan": {"diffaugment": "translation", "lr": 1}}})
        result = dvc(project, "repro", "train@cgan")
        assert result.returncode != 0
        assert "params.yaml recipes.cgan.lr: unknown key" in result.stderr + result.stdout
    finally:
        (project / "params.yaml").write_text(params)
    assert onnx.read_bytes() == before
    assert dvc(project, "status").stdout.strip().endswith("up to date.")
