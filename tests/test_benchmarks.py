"""Smoke runs of the benchmarks at a tiny budget, so that none can rot unnoticed."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from fuzzing import FAMILIES
from workspace import new_project, run_dvc

from augment.data.batches import TrainingData
from augment.testing import random_digits
from augment.variant import DataSpec

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run_benchmark(
    script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 1200
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_long_tail_benchmark_smoke_run(tmp_path) -> None:
    out = tmp_path / "long_tail"
    result = run_benchmark(
        "long_tail.py",
        "--smoke",
        "--datasets",
        "mnist-r50",
        "--seeds",
        "1",
        "--workdir",
        str(tmp_path / "work"),
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.with_suffix(".json").read_text())
    (run,) = report["runs"]
    assert run["dataset"] == "mnist-r50"
    assert {"baseline", "mixup-drw", "crt", "full", "crt+gan@sngan"} <= set(run["conditions"])
    assert run["targets"]["sngan"]["best_classical"] in run["conditions"]
    table = out.with_suffix(".md").read_text()
    assert "| `oversample+gan:4@sngan` |" in table and "## Targets" in table
    assert "full-2x" in run["conditions"]  # the convergence check runs on mnist-r50
    # --report-only rebuilds the same table from the project's last run, training nothing
    again = tmp_path / "again"
    args = ("--datasets", "mnist-r50", "--workdir", str(tmp_path / "work"), "--out", str(again))
    result = run_benchmark("long_tail.py", "--report-only", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    rebuilt = json.loads(again.with_suffix(".json").read_text())
    assert rebuilt["runs"][0]["conditions"] == run["conditions"]
    missing = run_benchmark(
        "long_tail.py",
        "--report-only",
        "--datasets",
        "fashion-r10",
        "--workdir",
        str(tmp_path / "work"),
        "--out",
        str(again),
    )
    assert missing.returncode != 0 and "no finished run of fashion-r10" in missing.stderr

    # the zoo resumes the same project: its GAN from DVC, every downstream run from the run
    # cache; one row per variant, read from the stages' outputs
    zoo_out = tmp_path / "zoo"
    args = ("--datasets", "mnist-r50", "--variants", "sngan", "--steps", "4", "--mix", "crt+gan")
    result = run_benchmark(
        "zoo.py", "--smoke", *args, "--workdir", str(tmp_path / "work"), "--out", str(zoo_out)
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Stage 'train@sngan' didn't change, skipping" in result.stdout
    zoo = json.loads(zoo_out.with_suffix(".json").read_text())
    (zoo_run,) = zoo["runs"]
    row = zoo_run["variants"]["sngan"]
    assert row["seconds_per_step"] > 0 and 0 <= row["accepted"] <= 1
    assert row["downstream"] == run["conditions"]["crt+gan@sngan"]["balanced_accuracy"]
    assert zoo_run["best_classical"]["condition"] in run["conditions"]
    assert (zoo_out / "mnist-r50" / "sngan.png").stat().st_size > 0
    assert "| `sngan` |" in zoo_out.with_suffix(".md").read_text()


# -- the other benchmarks' --smoke runs ------------------------------------------------------


def smoke(script: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """``benchmarks/<script> --smoke <args>`` with its temporary folders under ``tmp_path``
    and one thread per process (a busy core does not stall a tiny run); must exit 0."""
    env = {**os.environ, "TMPDIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
    result = run_benchmark(script, "--smoke", *args, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


#: translate.py's runs in its smoke: a plain/semantic pair, a StarGAN and the mask-to-image
#: run (the only one that is not a translator)
TRANSLATE_SMOKE_RUNS = ("cyclegan", "cyclegan+semantic", "stargan+noise", "spade")

#: The smoke runs that need nothing but their own folder: ``(script, arguments)``, each
#: ``{out}`` and ``{tmp}`` filled in with paths under its folder.
SMOKES: dict[str, tuple[str, ...]] = {
    "fuzz.py": ("--out", "{out}"),
    "inference.py": ("--out", "{out}"),
    "gpu_check.py": ("--out", "{out}"),
    "scale.py": ("--out", "{out}"),
    # one run per check the report makes (a pair for the semantic verdicts, a StarGAN for
    # its labels target): each translator family's own training is in the conformance kit
    # and the label filter at a threshold that keeps nearly every translation of a
    # smoke-sized translator (its own adaptation table runs)
    "translate.py": ("--out", "{out}", "--runs", *TRANSLATE_SMOKE_RUNS, "--label-filter", "1e-4"),
    "upscale.py": ("--out", "{out}"),
    "inpaint.py": ("--out", "{out}"),
    "colour.py": ("--workdir", "{tmp}/work", "--out", "{out}", "--set", "evaluate.tau=0.5"),
    "loop_overhead.py": ("--out", "{out}"),
    "spectra.py": ("--out", "{out}"),
    "first_run.py": ("--workdir", "{tmp}/work", "--out", "{out}"),
}


@pytest.fixture(scope="module")
def smokes(tmp_path_factory) -> Iterator[dict[str, tuple[Path, Future]]]:
    """Every run of :data:`SMOKES`, two at a time in the background from the first test that
    asks (each is one thread of mostly start-up, so two fill this machine's two cores while
    the tests that check them wait): script -> (its folder, the future of its run)."""
    runs: dict[str, tuple[Path, Future]] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        for script, args in SMOKES.items():
            folder = tmp_path_factory.mktemp(script.removesuffix(".py"))
            out = folder / script.removesuffix(".py")
            filled = [a.format(out=out, tmp=folder) for a in args]
            runs[script] = (folder, pool.submit(smoke, script, folder, *filled))
        yield runs
        for _, future in runs.values():
            future.cancel()


def smoke_report(smokes: dict[str, tuple[Path, Future]], script: str) -> tuple[Path, Any, str]:
    """(the run's folder, its JSON report, its Markdown table), once it has exited 0."""
    folder, future = smokes[script]
    future.result()
    return (folder, *read_report(folder / script.removesuffix(".py")))


def benchmark_module(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` imported (for its tables and SMOKE budget; main not run)."""
    folder, saved = ROOT / "benchmarks", list(sys.path)
    sys.path.insert(0, str(folder))  # the scripts import their _results helpers
    try:
        spec = importlib.util.spec_from_file_location(f"benchmark_{name}", folder / f"{name}.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved  # and some put the repository first on it
    return module


def numbers(tree: Any) -> list[float]:
    """Every number in a JSON tree (booleans left out)."""
    if isinstance(tree, dict):
        return [x for value in tree.values() for x in numbers(value)]
    if isinstance(tree, list):
        return [x for value in tree for x in numbers(value)]
    return [tree] if isinstance(tree, int | float) and not isinstance(tree, bool) else []


def read_report(out: Path) -> tuple[dict[str, Any], str]:
    """``(<out>.json, <out>.md)``; every number in the JSON finite (NaN parses as a float)."""
    report = json.loads(out.with_suffix(".json").read_text())
    bad = [x for x in numbers(report) if not math.isfinite(x)]
    assert not bad, f"non-finite numbers in {out.with_suffix('.json')}: {bad[:5]}"
    return report, out.with_suffix(".md").read_text()


def test_fuzz_benchmark_smoke_run(smokes) -> None:
    _, report, table = smoke_report(smokes, "fuzz.py")  # exit 1 if any case is a bug
    cases = benchmark_module("fuzz").SMOKE["cases"]
    assert list(report) == list(FAMILIES)
    for family, row in report.items():
        assert row["cases"] == cases == row["accepted"] + row["clear_error"] + row["bug"], family
        assert row["bug"] == 0 and row["examples_of_bugs"] == [], family
        assert f"| {family} | {cases} | {row['accepted']} | {row['clear_error']} | 0 |" in table


def test_inference_benchmark_smoke_run(smokes, registry) -> None:
    _, report, table = smoke_report(smokes, "inference.py")
    budget = benchmark_module("inference").SMOKE
    generators = report["generators"]
    assert set(generators["variants"]) == set(registry.names("synthesize"))
    assert generators["matmul_gflops"] > 0
    for name, row in generators["variants"].items():
        assert row["mflops_per_image"] > 0, name
        for batch in ("batch_1", "batch_256"):
            assert row[batch]["torch_images_per_s"] > 0 and row[batch]["onnxruntime_gflops"] > 0
        assert f"| {name} | {row['mflops_per_image']} |" in table
    transform = report["transform"]
    assert transform["images_per_epoch"] == budget["transform_images"]
    pipelines = {"none", "basic", *(f"basic+gan(reuse={r})" for r in (1, 2, 4))}
    assert set(transform["dataloader_2_workers"]["us_per_image"]) == pipelines
    runs = report["synthesis"]["runs"]
    assert list(runs) == [str(n) for n in budget["synthesis_sizes"]]
    assert all(run["images"] == int(size) and run["peak_rss_mib"] > 0 for size, run in runs.items())
    assert {"ort_vs_torch_b256", "ort_vs_torch_b1", "matmul_fraction_b256"} <= set(
        report["targets"]
    )
    assert "| variant | MFLOP/img |" in table and "| target |" in table


def test_recipes_benchmark_smoke_run(tmp_path, monkeypatch) -> None:
    # the benchmark's prerequisite, `dvc repro classifier`, in a tiny project
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where dvc's daemon leaves its files
    tiny = {"prepare": {"limit_per_class": 20}, "classifier": {"epochs": 1}}
    project = new_project(ROOT, tmp_path / "project", tiny)
    repro = run_dvc(project, "repro", "classifier")
    assert repro.returncode == 0, repro.stdout[-3000:] + repro.stderr[-3000:]
    out = tmp_path / "recipes"
    smoke("recipes.py", tmp_path, "--project", str(project), "--out", str(out))
    report, table = read_report(out)
    module = benchmark_module("recipes")
    assert report["steps"] == module.SMOKE["steps"] and report["real_diversity"] > 0
    assert list(report["recipes"]) == list(module.DEFAULT_RECIPES)
    assert len(report["tail_classes"]) == module.TAIL
    for label, row in report["recipes"].items():
        assert (row["variant"], row["params"]) == module.DEFAULT_RECIPES[label]
        assert 0 <= row["judge_agreement"] <= 1 and 0 <= row["judge_probability"] <= 1
        assert 0 <= row["accepted"] <= 1 and row["seconds_per_step"] > 0
        assert row["diversity"] >= 0 and len(row["per_class"]) == 10, label
        assert row["fd"] is not None and row["fd"] >= 0  # the val split has 2 a class here
        assert f"| `{label}` |" in table
    assert "| recipe | s/step | FD |" in table


def test_recipes_benchmark_takes_a_recipes_train_overrides(registry) -> None:
    """A recipe's ``train`` key overrides params.yaml ``train`` for it, as in the pipeline."""
    module = benchmark_module("recipes")
    label, (name, params) = module.parse_recipe(
        'lt=sngan:{"width": 8, "train": {"sampling": "balanced", "batch_size": 8}}'
    )
    assert (label, name) == ("lt", "sngan") and params["train"]["sampling"] == "balanced"
    images, labels = random_digits(40)
    spec, data = DataSpec(28, 1, tuple("0123456789")), TrainingData(images, labels)
    args = argparse.Namespace(steps=2, per_class=3, seed=0)
    seconds, samples = module.train_and_sample(name, params, spec, data, args, registry)
    assert seconds > 0 and [s.shape for s in samples[""]] == [(3, 28, 28, 1)] * 10
    assert list(samples) == [""]  # sngan has no encoder: no interpolated row
    _, samples = module.train_and_sample("bigan", {"width": 8}, spec, data, args, registry)
    assert [s.shape for s in samples["+interpolate"]] == [(3, 28, 28, 1)] * 10
    assert params["train"]  # the caller's recipe is left as it was
    with pytest.raises(ValueError, match="sampling"):  # it reached TrainConfig
        module.train_and_sample(name, {"train": {"sampling": "nope"}}, spec, data, args, registry)


@pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="scale.py trains under torchrun with the gloo backend: not in this torch build",
)
def test_gpu_check_runs_and_says_why_each_gpu_row_is_skipped(smokes) -> None:
    """The GPU check ships whether or not a GPU is at hand: on this machine its CPU rows
    are measured and every GPU row names the reason it was skipped; the shell wrapper
    runs it after the conformance kit (with the same interpreter)."""
    _, report, table = smoke_report(smokes, "gpu_check.py")
    cpu, *cuda = report["train"]
    assert (cpu["device"], cpu["steps"], cpu["losses_finite"]) == ("cpu", 3, True)
    assert cpu["steps_per_s"] > 0
    generated = report["generate"][0]
    assert generated["provider"] == "CPUExecutionProvider"
    assert generated["generate_images_per_s"] > 0 and generated["transform_images_per_s"] > 0
    if not torch.cuda.is_available():
        rows = [*cuda, report["nccl"], report["generate"][1]]
        assert all(row["status"].startswith("skipped: ") for row in rows), rows
        assert "| cuda fp32 | skipped: torch sees no CUDA device |" in table
    script = (ROOT / "benchmarks/gpu_check.sh").read_text()
    assert "tests/test_conformance.py" in script and "benchmarks/gpu_check.py" in script


def test_scale_benchmark_smoke_run(smokes) -> None:
    _, report, table = smoke_report(smokes, "scale.py")
    budget = benchmark_module("scale").SMOKE
    ddp = report["ddp"]
    assert [row["processes"] for row in ddp.values()] == [1, 1, 2]
    for name, row in ddp.items():
        assert row["steps"] == budget["steps"] and row["steps_per_s"] > 0, name
        assert f"| {name} | {row['steps_per_s']} |" in table
    images = 10 * budget["per_class"]
    generate = report["generate"]
    sharded = "2 shards at once + merge"
    assert set(generate) == {f"{images} images", f"{10 * images} images", sharded}
    merged = generate[sharded]
    assert merged["images"] == 10 * images and merged["bytes_equal_to_unsharded"] is True
    assert "| setup | steps/s |" in table and "## Generation" in table
    ray = report["ray"]  # the ray extra is part of `make test`'s install
    engines = ("ray, 1 worker", "ray, 2 workers", "ray, 2 workers, job-local cluster")
    assert set(ray) >= {"local", *engines}
    for name in engines:
        assert ray[name]["images"] == 10 * images
        assert ray[name]["peak_rss_mib"] > ray["local"]["peak_rss_mib"], name  # Ray's own
    assert ray["ray, 2 workers"]["bytes_equal_to_local"] is True
    assert ray[engines[2]]["bytes_equal_to_local"] is True
    assert "## Generation on Ray Data" in table


def test_translate_benchmark_smoke_run(smokes) -> None:
    folder, report, table = smoke_report(smokes, "translate.py")
    out = folder / "translate"
    module = benchmark_module("translate")
    assert list(report["runs"]) == list(TRANSLATE_SMOKE_RUNS)
    assert report["epochs"] == module.SMOKE["epochs"]
    for name, run in report["runs"].items():
        assert run["steps"] == max(1, round(module.RUNS[name][3] * module.SMOKE["steps"]))
        assert set(run["accuracy"]) == {"source_only", "translated", "oracle"}, name
        assert all(0 <= a <= 1 for a in run["accuracy"].values()), name
        assert 0 <= run["label_preservation"] <= 1, name
        assert run["source_images"] == 10 * module.SMOKE["limit_per_class"], name
        assert (out / f"{name}.png").stat().st_size > 0  # the sample grid, beside the report
        assert f"| {name} | {run['steps']} |" in table
        kept = run["filtered"]["0.0001"]
        assert 0 <= kept["kept"] <= run["source_images"], name
        assert kept["kept_share"] == round(kept["kept"] / run["source_images"], 4), name
        if kept["kept"] >= 2:
            assert 0 <= kept["label_preservation"] <= 1, name
            assert set(kept["acceptance_per_class"]) == set(run["preservation_per_class"])
    assert "## With the label filter" in table
    verdicts = report["verdicts"]
    # a family's semantic verdict only where both its runs ran
    assert set(verdicts) == {
        "cyclegan", "adaptation", "adaptation_filtered", "stargan_labels_met"
    }  # fmt: skip
    closed = [r["gap_closed"] for r in report["runs"].values() if r["gap_closed"] is not None]
    assert verdicts["adaptation"]["gap_closed"] == (max(closed) if closed else None)
    assert set(verdicts["stargan_labels_met"]) == {"stargan+noise"}


def test_upscale_benchmark_smoke_run(smokes) -> None:
    _, report, table = smoke_report(smokes, "upscale.py")
    module = benchmark_module("upscale")
    methods = {"nearest", "bicubic", *module.VARIANTS}
    for scale in (2, 4):
        rows = report["photos"][f"x{scale}"]
        assert methods <= set(rows), scale
        assert all(20 < rows[m]["psnr_rgb"] < 60 and 0 < rows[m]["ssim_y"] <= 1 for m in methods)
        assert all(rows[v]["train_steps"] == module.SMOKE["steps"] for v in module.VARIANTS)
        assert f"x{scale}: srresnet {rows['srresnet_gain_db']:+.2f} dB over bicubic" in table
    accuracy = report["digits"]["accuracy"]
    assert set(accuracy) == {"original"} | methods
    assert all(0 <= a <= 100 for a in accuracy.values())
    assert report["throughput"]["output_megapixels_per_s"] > 0
    assert "| method | PSNR RGB |" in table and "| input | accuracy |" in table


def test_inpaint_benchmark_smoke_run(smokes) -> None:
    folder, report, table = smoke_report(smokes, "inpaint.py")
    module = benchmark_module("inpaint")
    for part in ("digits", "photos"):
        result = report[part]
        methods = ["cut-out", "telea", *module.RUNS]
        assert list(result["quality"]) == methods, part
        for scores in result["quality"].values():
            assert scores["psnr"] > 0 and -1 <= scores["ssim"] <= 1, part
        assert (folder / "inpaint" / f"{part}.png").stat().st_size > 0
    digits = report["digits"]
    assert set(digits["accuracy"]) == {"original", "cut-out", "telea", *module.RUNS}
    assert report["photos"]["accuracy"] == {}  # no classes: no judge
    assert "| telea |" in table and "## photos" in table


def test_colour_benchmark_smoke_run(smokes) -> None:
    """A long-tailed colour folder, as a user brings it, through dvc repro evaluate."""
    tmp_path, report, table = smoke_report(smokes, "colour.py")
    work = tmp_path / "work"
    (run,) = report["runs"]
    params = yaml.safe_load((work / "digits-m32/params.yaml").read_text())
    assert params["evaluate"]["tau"] == 0.5 and "overrides evaluate.tau=0.5" in table
    images = tmp_path / "work/digits-m32-images"
    given = [len(list((images / "train" / str(k)).iterdir())) for k in range(10)]
    assert given[0] == 40 and given[-1] == 2  # the folder: ratio 20, exponential
    counts = [run["train_counts"][str(k)] for k in range(10)]  # used as it is, less val
    assert all(0.8 * g - 1 <= c <= g for c, g in zip(counts, given, strict=True)), counts
    assert set(run["recognised"]) == set(run["train_counts"])
    assert all(0 <= share <= 1 for share in run["recognised"].values())
    assert set(run["judge_recall"]) == set(run["train_counts"])  # every class has test images
    assert all(0 <= share <= 1 for share in run["judge_recall"].values())
    found = run["spectrum"]  # the samples' power over the real images', by frequency
    assert found["peak_ratio"] > 0 and all(-0.5 <= f < 0.5 for f in found["peak_frequency"])
    assert set(found["bands"]) == {"low", "mid", "high", "corner"} and "Power spectrum" in table
    assert 0 < run["first_picture_seconds"] <= run["repro_seconds"]
    assert run["verdict"]["rival"] == "baseline" and "gan+filter@sngan" in run["balanced_accuracy"]
    assert "## `digits-m32`" in table and "| 9 | 2 |" in table


def test_loop_overhead_benchmark_smoke_run(smokes) -> None:
    _, report, table = smoke_report(smokes, "loop_overhead.py")
    assert report["steps"] == benchmark_module("loop_overhead").SMOKE["steps"]
    rates = report["median_steps_per_second"]
    assert rates["ours"] > 0 and rates["minimal"] > 0
    assert report["ratio"] == pytest.approx(rates["ours"] / rates["minimal"])
    assert "ours / minimal" in table


def test_spectra_benchmark_smoke_run(smokes) -> None:
    """An untrained biggan's samples against random real images: its excess is in the low
    band (smooth colour fields over white noise), and the picture shows it in red."""
    from PIL import Image

    folder, report, table = smoke_report(smokes, "spectra.py")
    found = report["models"]["untrained"]
    assert set(found["bands"]) == {"low", "mid", "high", "corner"}
    assert found["bands"]["low"] > found["bands"]["corner"] and found["peak_ratio"] > 1
    assert "| untrained | x" in table
    picture = np.asarray(Image.open(folder / "spectra.png").convert("RGB")).astype(int)
    red = (picture[..., 0] > 180) & (picture[..., 1] < 80) & (picture[..., 2] < 80)
    assert red.sum() > 50  # the map of an excess of 10x or more


def test_first_run_benchmark_smoke_run(smokes) -> None:
    """The README's own-data params on the issue's folder: prepared as it is (the odd images
    converted and counted), timed in order, and every trap behaving (the script exits 1
    otherwise)."""
    folder, report, table = smoke_report(smokes, "first_run.py")
    assert report["folder"] == {
        "astronaut": 30,
        "chelsea": 15,
        "café": 8,
        "rocket": 5,
        "hubble": 5,
        "retina": 5,
    }
    prepared = report["prepared"]
    assert prepared["train"] + prepared["val"] + prepared["test"] == 68  # none dropped
    assert set(prepared["conversions"]) == {"alpha", "cropped", "gray-to-rgb"}
    times = [report[k] for k in ("first_picture", "first_sample_grid", "verdict_at")]
    assert times == sorted(times) and times[-1] <= report["repro_seconds"]
    assert len(report["traps"]) == 5 and all(trap["ok"] for trap in report["traps"])
    assert "| a corrupt image in the folder | yes | `error: " in table
    assert (folder / "work/project/data/source/prepare").resolve() == folder / "work/photos"


def test_every_benchmark_script_has_a_smoke_test() -> None:
    """A benchmark nobody runs rots: each script under benchmarks/ is run here."""
    scripts = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py") if p.name[0] != "_")
    source = Path(__file__).read_text(encoding="utf-8")
    untested = [s for s in scripts if f'"{s}"' not in source and f'"{s[:-3]}"' not in source]
    assert not untested, f"benchmarks without a smoke test here: {untested}"
