"""`dvc repro` of the whole pipeline on a tiny params override, in a temporary project copy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from workspace import edit_params, install_guide_plugin, new_project
from workspace import run_dvc as dvc

from augment.conditions import Condition
from augment.data.manifest import Manifest
from augment.io import sha256_file
from augment.runtime import OnnxGenerator

ROOT = Path(__file__).resolve().parents[1]
TINY: dict[str, Any] = {
    "prepare": {"limit_per_class": 40, "long_tail": {"ratio": 4}},
    "classifier": {"epochs": 2},
    "variants": ["cgan", "bigan", "srresnet", "cyclegan", "inpaint", "spade"],
    "synthesize": {"variants": ["cgan", "bigan"], "interpolate": ["bigan"]},
    "upscale": {"variants": ["srresnet"], "splits": ["test", "val"]},
    "domains": {"limit_per_class": 12},
    "translate": {"variants": ["cyclegan"], "epochs": 1, "grid": 4},
    "inpaint": {"variants": ["inpaint"], "grid": 4},
    "recipes": {
        "srresnet": {
            "width": 8,
            "blocks": 1,
            "train": {"steps": 4, "batch_size": 8, "checkpoint_every": 2, "sample_every": 2},
        },
        "cyclegan": {
            "width": 8,
            "blocks": 1,
            "d_width": 8,
            "train": {"steps": 4, "batch_size": 8, "checkpoint_every": 2, "sample_every": 2},
        },
        "inpaint": {
            "width": 8,
            "d_width": 8,
            "train": {"steps": 4, "batch_size": 8, "checkpoint_every": 2, "sample_every": 2},
        },
        "spade": {
            "width": 8,
            "d_width": 8,
            "train": {"steps": 4, "batch_size": 8, "checkpoint_every": 2, "sample_every": 2},
        },
    },
    "train": {
        "steps": 6,
        "batch_size": 16,
        "checkpoint_every": 3,
        "sample_every": 3,
        "log_every": 2,
    },
    "evaluate": {"epochs": 1, "quality": {"max_per_class": 30, "diversity_pairs": 10}},
    "export": {"standing_statistics": 2},  # the EMA generators' BN statistics re-measured
}
SYNTHESIZERS = TINY["synthesize"]["variants"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A fresh git + DVC project holding this repo's pipeline, run once with tiny params."""
    dst = new_project(ROOT, tmp_path_factory.mktemp("project"), TINY)
    result = dvc(dst, "repro")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return dst


def test_repro_evaluates_every_condition(project):
    metrics = json.loads((project / "reports/evaluate/metrics.json").read_text())
    conditions = metrics["conditions"]
    defaults = yaml.safe_load((ROOT / "params.yaml").read_text())["evaluate"]["conditions"]
    names = [Condition.parse(c) for c in defaults]
    expected = {c.name for c in names if not c.uses_generator} | {
        f"{c.name}@{v}" for c in names if c.uses_generator for v in SYNTHESIZERS
    }
    assert {"drw", "mixup-drw", "balanced-softmax", "logit-adjust", "crt"} < expected
    check = metrics["convergence"]  # the best classical condition again, at twice the steps
    assert Condition.parse(check["condition"]).is_classical and check["steps"] == metrics["steps"]
    expected |= {check["condition"] + "-2x"}
    assert set(conditions) == expected
    moved = conditions[check["condition"] + "-2x"]["balanced_accuracy"]["mean"]
    moved -= conditions[check["condition"]]["balanced_accuracy"]["mean"]
    assert check["moved"] == pytest.approx(moved) and check["converged"] == (abs(moved) < 0.005)
    headline = json.loads((project / "metrics/evaluate.json").read_text())
    assert headline["converged"] == check["converged"]
    prepared = Manifest.read(project / "data/prepared/manifest.csv")
    real = prepared.counts("train")
    assert conditions["baseline"]["train_images"] == real.sum()
    assert conditions["oversample"]["train_images"] == real.max() * len(real)
    assert conditions["full"]["train_images"] == 40 * len(real)  # limit_per_class
    for entry in conditions.values():
        assert 0 <= entry["balanced_accuracy"]["mean"] <= 1
        assert set(entry["per_class_recall"]) == set(prepared.classes)
    gaps = conditions["baseline"]["gap_closed"], conditions["full"]["gap_closed"]
    assert gaps in ((0.0, 1.0), (None, None))  # None when full does not beat baseline
    assert set(metrics["quality"]) == set(SYNTHESIZERS)
    assert set(metrics["verdict"]) == set(SYNTHESIZERS)
    report = project / "reports/evaluate"
    text = (report / "report.md").read_text()
    assert "gan+filter@bigan" in text and "](../synthesize/cgan/samples.png)" in text
    assert (report / "per_class_recall.png").stat().st_size > 0
    runs = pd.read_csv(report / "runs.csv")
    assert len(runs) == len(expected)
    # the networks of logit-adjust and crt are the baseline's: trained once, then cached
    assert metrics["trained_runs"] + metrics["cached_runs"] == len(expected)
    assert metrics["cached_runs"] >= 2 + len(SYNTHESIZERS)  # crt+gan reuses it too
    assert len(list((project / "models/evaluate").iterdir())) == metrics["trained_runs"]


def test_evaluate_rerun_takes_every_run_from_its_cache(project):
    before = json.loads((project / "reports/evaluate/metrics.json").read_text())
    result = dvc(project, "repro", "--force", "--single-item", "evaluate")
    assert result.returncode == 0, result.stderr[-2000:]
    after = json.loads((project / "reports/evaluate/metrics.json").read_text())
    assert dvc(project, "repro", "report").returncode == 0  # the page follows the stage
    assert after["trained_runs"] == 0
    assert after["cached_runs"] == before["trained_runs"] + before["cached_runs"]
    assert after["conditions"] == before["conditions"]


def test_repro_balances_every_class_with_synthetic_images(project):
    prepared = Manifest.read(project / "data/prepared/manifest.csv")
    real = prepared.counts("train")
    assert real.max() / real.min() == pytest.approx(4, rel=0.15)  # long-tailed
    for variant in SYNTHESIZERS:
        augmented = Manifest.read(project / f"data/augmented/{variant}/manifest.csv")
        total = augmented.counts("train")
        details = json.loads((project / f"reports/synthesize/{variant}/metrics.json").read_text())
        # up to the largest class, less what the filter left short (filter.fill: false)
        short = {c: v["planned"] - v["synthetic"] for c, v in details["classes"].items()}
        assert (total + pd.Series(short) == real.max()).all(), total.to_dict()
        synthetic = augmented.frame[augmented.frame.source == "synthetic"]
        assert set(synthetic.split) == {"train"}
        assert set(synthetic.variant) == {variant}
        assert len(synthetic) + details["short_of_plan"] == (real.max() - real).sum()
        assert all(path.is_file() for path in augmented.absolute_paths())
        real_rows = augmented.frame[augmented.frame.source == "real"].drop(columns="path")
        pd.testing.assert_frame_equal(
            real_rows.reset_index(drop=True),
            prepared.frame.drop(columns="path").reset_index(drop=True),
        )
        metrics = json.loads((project / f"metrics/synthesize/{variant}.json").read_text())
        judge = json.loads((project / "metrics/classifier.json").read_text())
        # the stage measures its judge on the val split, as the classifier stage did
        assert metrics["judge_val_balanced_accuracy"] == pytest.approx(
            judge["val_balanced_accuracy"], abs=1e-6
        )
        assert metrics["filter_reliable"] == (judge["val_balanced_accuracy"] >= 0.6)


def test_a_weak_judge_is_a_warning(project, tmp_path):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["synthesize"]["filter"]["min_judge_accuracy"] = 1.0  # no judge is that good
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.synthesize",
            "cgan",
            "--out",
            str(tmp_path / "augmented"),
            "--reports",
            str(tmp_path / "reports"),
            "--metrics",
            str(tmp_path / "metrics"),
            "--params",
            str(tmp_path / "params.yaml"),
        ],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "filter.min_judge_accuracy 100%: its filter cannot tell good samples" in result.stderr
    metrics = json.loads((tmp_path / "metrics/cgan.json").read_text())
    assert metrics["filter_reliable"] is False


def test_repro_exports_models_with_metadata_and_reports(project):
    for variant in SYNTHESIZERS:
        model = OnnxGenerator(project / f"models/onnx/{variant}.onnx", task="synthesize")
        assert model.info.variant == variant
        assert model.info.manifest_sha256 == sha256_file(project / "data/prepared/manifest.csv")
        assert (project / f"reports/train/{variant}/final.png").is_file()
        losses = pd.read_csv(project / f"reports/train/{variant}/losses.csv")
        curves = {p.stem: pd.read_csv(p) for p in (project / f"plots/train/{variant}").iterdir()}
        assert set(curves) == set(losses.columns) - {"step"} and "d_loss" in curves
        for name, curve in curves.items():  # DVC draws each file's last column over step
            assert list(curve.columns) == ["step", name] and len(curve) == len(losses)
        for stage in ("train", "export", "synthesize"):
            assert (project / f"metrics/{stage}/{variant}.json").is_file()
        exported = json.loads((project / f"metrics/export/{variant}.json").read_text())
        assert exported["ema"] and exported["standing_statistics"] == 2
    # bigan's encoder beside its generator; its samples lie between encoded real images
    assert [p.name for p in (project / "models/encoders/cgan").iterdir()] == ["no_encoder.txt"]
    encoder = OnnxGenerator(project / "models/encoders/bigan/encoder.onnx", task="encode")
    assert encoder.info.manifest_sha256 == sha256_file(project / "data/prepared/manifest.csv")
    synthesized = json.loads((project / "metrics/synthesize/bigan.json").read_text())
    assert synthesized["latent"] == "interpolated"
    assert json.loads((project / "metrics/synthesize/cgan.json").read_text())["latent"] == "prior"
    assert (project / "reports/prepare/class_counts.png").is_file()
    assert (project / "models/classifier.pt").is_file()


def test_repro_upscales_low_resolution_copies_and_judges_them(project):
    metrics = json.loads((project / "metrics/upscale/srresnet.json").read_text())
    assert metrics["scale"] == 2 and metrics["high_resolution"] == [28, 28]
    prepared = Manifest.read(project / "data/prepared/manifest.csv")
    for split in ("test", "val"):
        part = metrics["splits"][split]
        assert part["images"] == len(prepared.subset(split=split))
        assert set(part["quality"]) == {"nearest", "bicubic", "srresnet"}
        assert set(part["accuracy"]) == {"original", "nearest", "bicubic", "srresnet"}
        assert all(0 <= v <= 1 for v in part["accuracy"].values())
    upscaled = Manifest.read(project / "data/upscaled/srresnet/manifest.csv")
    assert len(upscaled) == len(prepared.subset(split="test")) + len(prepared.subset(split="val"))
    assert all(path.is_file() for path in upscaled.absolute_paths())
    model = OnnxGenerator(project / "models/onnx/srresnet.onnx", task="upscale")
    assert set(upscaled.frame.model_sha256) == {model.sha256}
    report = project / "reports/upscale/srresnet"
    assert "| bicubic |" in (report / "report.md").read_text()
    assert (report / "side_by_side.png").stat().st_size > 0


def test_repro_inpaints_seeded_holes_and_judges_them(project):
    metrics = json.loads((project / "metrics/inpaint/inpaint.json").read_text())
    assert metrics["variant"] == "inpaint" and metrics["hole_range"] == [0.25, 0.5]
    prepared = Manifest.read(project / "data/prepared/manifest.csv")
    test = metrics["splits"]["test"]
    assert test["images"] == len(prepared.subset(split="test"))
    assert set(test["quality"]) == {"cut-out", "telea", "inpaint"}
    assert set(test["accuracy"]) == {"original", "cut-out", "telea", "inpaint"}
    assert 0.0625 <= test["hole_fraction"] <= 0.25
    report = project / "reports/inpaint/inpaint"
    assert "| telea |" in (report / "report.md").read_text()
    assert (report / "side_by_side.png").stat().st_size > 0
    model = OnnxGenerator(project / "models/onnx/inpaint.onnx", task="inpaint")
    assert model.info.manifest_sha256 == sha256_file(project / "data/prepared/manifest.csv")


def test_repro_trains_a_mask_to_image_model_on_the_domain_pairs(project):
    model = OnnxGenerator(project / "models/onnx/spade.onnx", task="mask2image")
    assert model.mask_labels == ("background", "foreground")
    assert model.info.domains == ("mnist", "mnistm-like")  # the target's (plain, styled) pairs
    assert model.info.manifest_sha256 == sha256_file(project / "data/domains/manifest.csv")
    assert model.info.channels == 3 and model.info.latent_dim == 8  # MNIST-M-like, noise 8
    masks = np.zeros((2, 20, 24), np.int64)
    masks[:, 5:15, 8:12] = 1
    assert model.from_mask(masks, seed=0).shape == (2, 3, 20, 24)
    assert (project / "reports/train/spade/final.png").stat().st_size > 0


def test_repro_translates_the_source_domain_and_judges_it(project):
    metrics = json.loads((project / "metrics/translate/cyclegan.json").read_text())
    assert (metrics["source"], metrics["target"]) == ("mnist", "mnistm-like")
    assert set(metrics["accuracy"]) == {"source_only", "translated", "oracle"}
    assert 0 <= metrics["label_preservation"] <= 1
    domains = Manifest.read(project / "data/domains/manifest.csv")
    source_train = domains.frame.query("domain == 'mnist' and split == 'train'")
    assert metrics["images"] == len(source_train) == 12 * 10  # limit_per_class
    translated = Manifest.read(project / "data/translated/cyclegan/manifest.csv")
    assert len(translated) == len(source_train)
    assert set(translated.frame.source) == {"synthetic"}
    assert set(translated.frame.domain) == {"mnistm-like"}
    assert all(path.is_file() for path in translated.absolute_paths())
    model = OnnxGenerator(project / "models/onnx/cyclegan.onnx", task="translate")
    assert model.info.domains == ("mnist", "mnistm-like") and model.multi_domain
    assert model.info.latent_dim == 4 and "noise" in model.input_names  # params.yaml's default
    assert set(translated.frame.model_sha256) == {model.sha256}
    assert model.info.manifest_sha256 == sha256_file(project / "data/domains/manifest.csv")
    report = project / "reports/translate/cyclegan"
    assert "Gap closed" in (report / "report.md").read_text()
    assert (report / "grid.png").stat().st_size > 0
    assert (project / "reports/domains/samples.png").stat().st_size > 0
    assert (project / "reports/train/cyclegan/final.png").stat().st_size > 0


def test_dvc_metrics_show_lists_headline_figures_only(project):
    """A readable table: the headline per stage, the per-class breakdowns in reports/."""
    headline = json.loads((project / "metrics/evaluate.json").read_text())
    details = json.loads((project / "reports/evaluate/metrics.json").read_text())
    results = {k: e for k, e in details["conditions"].items() if not k.endswith("-2x")}
    assert len(results) == len(details["conditions"]) - 1  # the convergence check's run
    assert set(headline["balanced_accuracy"]) == set(results)
    for key, entry in results.items():
        assert headline["balanced_accuracy"][key] == entry["balanced_accuracy"]["mean"]
    assert headline["converged"] == details["convergence"]["converged"]
    for variant, found in headline["verdict"].items():
        assert found == {k: details["verdict"][variant][k] for k in ("best", "delta", "helps")}
    shown = dvc(project, "metrics", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    for files in json.loads(shown.stdout).values():
        for path, data in files["data"].items():  # a few dozen columns at most per stage
            columns = len(pd.json_normalize(data["data"]).columns)  # (evaluate: 41 here)
            assert columns <= 45, f"dvc metrics show: {path} has {columns} columns"
    details_only = ("per_class_recall", "preservation_per_class", "diversity_ratio", "final_losses")
    for text in (*details_only, "train_counts"):
        assert text not in shown.stdout, text


def test_dvc_plots_show_draws_every_loss_and_every_stage_figure(project, tmp_path):
    shown = dvc(project, "plots", "show", "--json", "-o", str(tmp_path / "plots"))
    assert shown.returncode == 0, shown.stderr
    plots = json.loads(shown.stdout)["data"]
    images = {Path(p).name for p, entries in plots.items() if entries[0]["type"] == "image"}
    expected = {"evaluate_per_class_recall.png", "prepare_class_counts.png"}
    expected |= {f"synthesize_{v}_samples.png" for v in SYNTHESIZERS}
    expected |= {f"train_{v}_final.png" for v in SYNTHESIZERS}
    expected |= {"upscale_srresnet_side_by_side.png", "translate_cyclegan_grid.png"}
    expected |= {"inpaint_inpaint_side_by_side.png"}
    assert expected <= images, sorted(images)
    for entries in plots.values():  # each image is a copy DVC can serve
        assert all(Path(e["url"]).is_file() for e in entries if e["type"] == "image")
    for variant in SYNTHESIZERS:  # each loss drawn once, against the training step
        [curve] = [p for p in plots if p.endswith(f"plots/train/{variant}/d_loss.csv")]
        assert plots[curve][0]["content"]["encoding"]["x"]["field"] == "step"


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
        assert (
            "unknown variant 'nosuch' (installed: acgan, ali, began, bigan, biggan, cgan"
            in result.stderr + result.stdout
        )

        (project / "params.yaml").write_text(params)
        edit_params(project, {"recipes": {"cgan": {"diffaugment": "translation", "lr": 1}}})
        result = dvc(project, "repro", "train@cgan")
        assert result.returncode != 0
        assert "params.yaml recipes.cgan.lr: unknown key" in result.stderr + result.stdout

        (project / "params.yaml").write_text(params)
        edit_params(project, {"recipes": {"srresnet": {"train": {"stepz": 3}}}})
        result = dvc(project, "repro", "train@srresnet")
        assert result.returncode != 0
        assert "params.yaml recipes.srresnet.train.stepz: unknown key" in result.stderr

        (project / "params.yaml").write_text(params)
        edit_params(project, {"domains": {"target": "sketch"}})
        result = dvc(project, "repro", "domains")
        assert result.returncode != 0
        assert "params.yaml domains.target: unknown domain 'sketch'" in result.stderr
    finally:
        (project / "params.yaml").write_text(params)
    assert onnx.read_bytes() == before
    assert dvc(project, "status").stdout.strip().endswith("up to date.")


def tree(root: Path) -> dict[str, bytes]:
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {p.relative_to(root.parent).as_posix(): p.read_bytes() for p in files}


@pytest.mark.parametrize(
    ("stage", "override", "message", "outputs"),
    [
        (
            "prepare",
            {"prepare": {"val_fractoin": 0.1}},
            "params.yaml prepare.val_fractoin: unknown key",
            ["data/prepared", "reports/prepare", "metrics/prepare.json"],
        ),
        (
            "prepare",
            {"prepare": {"source": {"kind": "folder", "root": "CORRUPT"}, "long_tail": None}},
            "broken.png: not a readable image",
            ["data/prepared", "reports/prepare", "metrics/prepare.json"],
        ),
        (
            "classifier",
            {"classifier": {"epoch": 3}},
            "params.yaml classifier.epoch: unknown key",
            ["models/classifier.pt", "metrics/classifier.json"],
        ),
        (
            "synthesize@cgan",
            {"synthesize": {"policy": "nope"}},
            "params.yaml synthesize.policy: invalid synthesis policy 'nope'",
            ["data/augmented/cgan", "reports/synthesize/cgan", "metrics/synthesize/cgan.json"],
        ),
        (
            "evaluate",
            {"evaluate": {"conditons": ["baseline"]}},
            "params.yaml evaluate.conditons: unknown key",
            ["reports/evaluate", "metrics/evaluate.json", "models/evaluate"],
        ),
    ],
)
def test_a_failing_stage_keeps_its_previous_outputs(
    project, tmp_path, stage, override, message, outputs
):
    """DVC deletes a stage's outputs before running it unless they persist: every stage's
    do, and each stage replaces them atomically, so a failure leaves the last good ones."""
    if override.get("prepare", {}).get("source"):
        corrupt = tmp_path / "mine"
        for name in ("cat", "dog"):
            (corrupt / name).mkdir(parents=True)
            (corrupt / name / "broken.png").write_bytes(b"\x89PNG not really")
        override["prepare"]["source"]["root"] = str(corrupt)
    before = {out: tree(project / out) for out in outputs}
    params = (project / "params.yaml").read_text()
    try:
        edit_params(project, override)
        result = dvc(project, "repro", stage)
        assert result.returncode != 0
        assert message in result.stderr + result.stdout
    finally:
        (project / "params.yaml").write_text(params)
    for out in outputs:
        assert tree(project / out) == before[out], f"{out} changed after a failed {stage}"
    if "source" in override.get("prepare", {}):  # data_source succeeded: linked the folder
        assert dvc(project, "repro", "data_source").returncode == 0  # linked back
    assert dvc(project, "status").stdout.strip().endswith("up to date.")


def test_domains_stage_builds_nothing_without_a_translator(project, tmp_path):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["variants"] = ["cgan", "srresnet"]
    params["domains"]["sets"]["mnist"] = {"data": {"kind": "idx", "dir": "/nonexistent"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "domains"
    stage = [sys.executable, "-m", "pipelines.domains", "--params", str(tmp_path / "params.yaml")]
    stage += ["--out", str(out), "--reports", str(tmp_path / "reports")]
    stage += ["--metrics", str(tmp_path / "domains.json")]
    result = subprocess.run(stage, cwd=project, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]  # the missing source is never read
    assert "no translator or mask-to-image variant in variants" in result.stderr
    assert len(Manifest.read(out / "manifest.csv")) == 0
    assert json.loads((tmp_path / "domains.json").read_text()) == {
        "skipped": "no translator or mask-to-image variant in variants: no domains built"
    }
    assert (tmp_path / "reports/samples.png").stat().st_size > 0
    params["variants"] = ["cgan", "cyclegan"]  # a translator: the source is read, and missing
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run(stage, cwd=project, capture_output=True, text=True)
    assert result.returncode != 0 and "/nonexistent" in result.stderr


def test_a_variant_without_a_recipes_entry_trains(project):
    params_text = (project / "params.yaml").read_text()
    params = yaml.safe_load(params_text)
    params["variants"] = [*params["variants"], "hinge"]
    del params["recipes"]["hinge"]
    before = tree(project / "models/train/cgan")
    try:
        (project / "params.yaml").write_text(yaml.safe_dump(params))
        result = dvc(project, "repro", "export@hinge", "export@cgan")
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert OnnxGenerator(project / "models/onnx/hinge.onnx").info.variant == "hinge"
        # cgan's recipe did not change: its train stage re-ran (DVC tracks all of
        # `recipes`) and resumed a finished checkpoint, training and rewriting nothing
        metrics = json.loads((project / "reports/train/cgan/metrics.json").read_text())
        assert metrics["resumed_from"] == metrics["steps"]
        assert tree(project / "models/train/cgan") == before
        assert "Running stage 'export@cgan'" not in result.stdout
    finally:
        (project / "params.yaml").write_text(params_text)
        for path in ("models/onnx/hinge.onnx", "models/train/hinge"):
            subprocess.run(["rm", "-rf", str(project / path)], check=True)
    assert dvc(project, "repro").returncode == 0
    assert dvc(project, "status").stdout.strip().endswith("up to date.")


def test_dvc_notices_an_edited_installed_plugin(project, tmp_path):
    """A plugin installed outside the repository (the guide's, pip-installed): DVC tracks
    its code through plugin_sources/<v>, so an edit marks train@<v> changed."""
    _, site = install_guide_plugin(tmp_path)
    env = {"PYTHONPATH": str(site)}
    module = site / "augment_tinygan.py"
    params_text = (project / "params.yaml").read_text()
    try:
        variants = yaml.safe_load(params_text)["variants"]
        edit_params(project, {"variants": [*variants, "tiny-gan"]})
        result = dvc(project, "repro", "train@tiny-gan", env=env)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        link = project / "plugin_sources/tiny-gan"
        assert link.is_symlink() and link.resolve() == module.resolve()
        assert "train@tiny-gan" not in dvc(project, "status", env=env).stdout
        module.write_text(module.read_text() + "\n# an edit by the plugin's author\n")
        status = dvc(project, "status", env=env).stdout
        assert "train@tiny-gan:" in status and "modified:           plugin_sources/tiny-gan" in (
            status
        ), status
        assert "train@cgan:" not in status  # only the edited plugin's stages
    finally:
        (project / "params.yaml").write_text(params_text)
        subprocess.run(["rm", "-rf", str(project / "models/train/tiny-gan")], check=True)
    assert dvc(project, "repro").returncode == 0
    assert not (project / "plugin_sources/tiny-gan").exists()
    assert dvc(project, "status").stdout.strip().endswith("up to date.")


def test_dvc_notices_images_added_to_the_users_folder(tmp_path):
    """prepare.source outside the project: data_source links it into data/source/prepare,
    so an image added to the folder re-runs prepare; a missing folder is a one-line error."""
    mine = tmp_path / "mine"
    for label, value in (("ant", 10), ("bee", 200)):
        for i in range(4):
            (mine / label).mkdir(parents=True, exist_ok=True)
            Image.new("L", (8, 8), value + i).save(mine / label / f"{i}.png")
    source = {"kind": "folder", "root": str(mine)}
    override = {"prepare": {"source": source, "long_tail": None, "val_fraction": 0}}
    project = new_project(ROOT, tmp_path / "project", override)
    assert dvc(project, "repro", "prepare").returncode == 0
    assert (project / "data/source/prepare").resolve() == mine
    assert dvc(project, "status", "prepare").stdout.strip().endswith("up to date.")
    Image.new("L", (8, 8), 99).save(mine / "bee" / "new.png")
    status = dvc(project, "status", "prepare").stdout
    assert "modified:           data/source/prepare" in status, status
    assert dvc(project, "repro", "prepare").returncode == 0
    manifest = Manifest.read(project / "data/prepared/manifest.csv")
    assert len(manifest) == 9 and str(mine / "bee/new.png") in manifest.frame["origin"].tolist()

    edit_params(project, {"prepare": {"source": {**source, "root": str(tmp_path / "gone")}}})
    result = dvc(project, "repro", "prepare")
    assert result.returncode != 0
    assert f"params.yaml prepare.source (folder): {tmp_path / 'gone'}: not found" in (
        result.stderr + result.stdout
    )
    assert len(Manifest.read(project / "data/prepared/manifest.csv")) == 9


def test_the_report_page_renders_in_a_browser_with_every_image(project, tmp_path):
    """reports/index.html, opened in headless Chromium: it renders, every image decodes,
    and the verdict comes first."""
    import re
    import shutil

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium (Debian: apt-get install chromium)")
    page = project / "reports/index.html"
    text = page.read_text()
    assert text.index("Does the synthetic data help?") < text.index("<h2>Synthesis")
    for heading in ("Translation", "Upscaling", "Inpainting", "Training", "The data"):
        assert f"<h2>{heading}</h2>" in text, heading
    images = text.count("<img ")
    # recall, samples, translate, upscale, inpaint
    assert images >= 1 + len(SYNTHESIZERS) + 1 + 1 + 1
    flags = ["--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path}/p"]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True
    )
    loaded = re.search(r'data-images-loaded="(\d+)"', dom.stdout)
    assert loaded and int(loaded.group(1)) == images, dom.stdout[:500] + dom.stderr[-500:]
    shot = tmp_path / "report.png"
    subprocess.run(
        [browser, *flags, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()],
        capture_output=True,
    )
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.std() > 10  # text and pictures, not a blank page
