"""Side by side, in one run: which synthesis recipe keeps class fidelity AND covers each class?

Trains each recipe for the same number of steps on the prepared (long-tailed) train split
of a project, then samples ``--per-class`` images per class from its EMA generator (as
the export stage would) and reports, per recipe and per class:

* ``diversity``: mean per-pixel standard deviation within a class (0-255 scale), beside
  the same figure for the real train images: a collapsed generator scores near 0;
* ``judge_agreement``: how often the judge classifier (models/classifier.pt) predicts the
  class the image was generated for, its mean probability for that class, and
  ``accepted``: the share the synthesize stage's filter would keep at ``--threshold``;
* in the judge's penultimate features, against the real val split: the Fréchet distance
  (beside the real-vs-real floor of two val halves) and k-NN precision and recall
  (Kynkäänniemi et al., 2019) per class: recall is how much of a class's real variety the
  samples cover, the figure a rare class needs.

Needs `dvc repro classifier` first (for data/prepared and models/classifier.pt, read in
``--project``: the current folder unless given). With no ``--recipe`` it runs the README's
table (about 14 minutes on 2 cores on the default data); or pick some. A recipe's params
may hold ``train`` (overrides of params.yaml ``train``, as ``recipes.<v>.train`` does):

    python benchmarks/recipes.py --steps 1500 \
        --recipe cgan=cgan --recipe cgan+ms=cgan:'{"mode_seeking": 0.2}'
    python benchmarks/recipes.py --project /tmp/lt/fashion-r100 --steps 2500 \
        --recipe biggan-lt=biggan:'{"width": 24, "train": {"sampling": "balanced"}}'
    python benchmarks/recipes.py --smoke --out /tmp/recipes   # a tiny run: does it work?
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _results import parse_args, write_results

from augment.checkpoint import load_checkpoint, restore_variant
from augment.classifier import extract_features, load_classifier, predict_proba
from augment.data.batches import TrainingData
from augment.data.images import load_images, to_tensor, to_uint8
from augment.data.manifest import Manifest
from augment.latent_codes import InterpolatedStream
from augment.metrics import precision_recall
from augment.metrics.frechet import frechet_distance, gaussian_stats
from augment.registry import Registry
from augment.train import TrainConfig, TrainOutputs, fit
from augment.variant import DataSpec

DEFAULT_RECIPES = {  # the README's table
    "cgan": ("cgan", {}),
    "sngan": ("sngan", {}),
    "cgan+minibatch_std": ("cgan", {"minibatch_std": True}),
    "cgan+mode_seeking": ("cgan", {"mode_seeking": 0.2}),
    "acgan+mode_seeking": ("acgan", {"mode_seeking": 0.2}),
    "sngan+mode_seeking": ("sngan", {"mode_seeking": 0.2}),
}
SMOKE = {"steps": 2, "per_class": 5}  # --smoke: every recipe of the table, a few steps
K = 3  # neighbours of the k-NN balls
TAIL = 3  # the tail: this many classes with the fewest train images


def parse_recipe(text: str) -> tuple[str, tuple[str, dict]]:
    """``label=variant`` or ``label=variant:{json params}``."""
    label, _, rest = text.partition("=")
    variant, _, params = rest.partition(":")
    return label, (variant, json.loads(params) if params else {})


def within_class_std(images: np.ndarray) -> float:
    return float(images.astype(np.float64).std(axis=0).mean())


def coverage(real: np.ndarray, fake: np.ndarray) -> tuple[float | None, float | None]:
    """k-NN precision and recall of ``fake`` against ``real`` features (None: too few)."""
    if len(real) <= K or len(fake) <= K:
        return None, None
    return precision_recall(real, fake, k=K)


def mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def train_and_sample(
    name: str,
    params: dict[str, Any],
    spec: DataSpec,
    data: TrainingData,
    args: argparse.Namespace,
    registry: Registry,
) -> tuple[float, dict[str, list[np.ndarray]]]:
    """Train one recipe; return its seconds and ``per_class`` samples of each class (u8),
    drawn from the EMA generator restored from its checkpoint, in eval mode: ``""`` from
    the prior, and ``"+interpolate"`` between encoded train images where it has an encoder."""
    params = dict(params)
    train = params.pop("train", {})
    variant = registry.create(name, params, spec, seed=args.seed)
    config = TrainConfig(steps=args.steps, sample_every=10**9, checkpoint_every=10**9, **train)
    with tempfile.TemporaryDirectory() as tmp:
        out = TrainOutputs(Path(tmp) / "c.pt", Path(tmp) / "s", Path(tmp) / "l.csv")
        started = time.perf_counter()
        fit(variant, data, config, out, args.seed, progress=False)
        seconds = time.perf_counter() - started
        restored, generator = restore_variant(load_checkpoint(out.checkpoint), registry.create)
    module = restored.export_module(generator).eval()
    encoder = getattr(restored, "encoder_module", lambda _: None)(generator)
    samples: dict[str, list[np.ndarray]] = {"": []} | ({"+interpolate": []} if encoder else {})
    with torch.no_grad():
        for c in range(len(spec.classes)):
            inputs = restored.example_inputs(args.per_class, seed=args.seed + c)
            inputs["label"] = torch.full((args.per_class,), c)
            samples[""].append(to_uint8(module(*inputs.values())))
            if encoder is not None:
                real = to_tensor(data.images[data.labels == c])
                anchors = encoder.eval()(real, torch.full((len(real),), c)).numpy()
                z = InterpolatedStream(anchors, args.seed + c).next(args.per_class)["z"]
                between = module(torch.from_numpy(z), inputs["label"])
                samples["+interpolate"].append(to_uint8(between))
    return seconds, samples


def markdown(report: dict[str, Any]) -> str:
    def f(x: float | None, digits: int = 2) -> str:
        return "–" if x is None else f"{x:.{digits}f}"

    lines = [
        "# Synthesis recipes side by side",
        "",
        f"{report['steps']} steps each on `{report['project']}` ({report['train_images']} "
        f"train images; tail: {', '.join(report['tail_classes'])}); {report['per_class']} "
        f"samples a class; {report['machine']}. Features: the judge's penultimate layer; "
        f"FD floor (two halves of the real val split) {f(report['fd_floor'], 1)}.",
        "",
        "| recipe | s/step | FD | judge agreement (tail) | accepted at "
        f"{report['threshold']} (tail) | k-NN precision | k-NN recall (tail) | diversity / real |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, row in report["recipes"].items():
        lines.append(
            f"| `{label}` | {f(row['seconds_per_step'])} | {f(row['fd'], 1)} | "
            f"{f(row['judge_agreement'])} ({f(row['judge_agreement_tail'])}) | "
            f"{f(row['accepted'])} ({f(row['accepted_tail'])}) | {f(row['precision'])} | "
            f"{f(row['recall'])} ({f(row['recall_tail'])}) | "
            f"{f(row['diversity_ratio_to_real'])} |"
        )
    lines += ["", "Per class: judge agreement / k-NN recall.", ""]
    classes = report["classes"]
    lines += ["| recipe | " + " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
    for label, row in report["recipes"].items():
        cells = [
            f"{f(row['per_class'][c]['agreement'])} / {f(row['per_class'][c]['recall'])}"
            for c in classes
        ]
        lines.append(f"| `{label}` | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--recipe", action="append", type=parse_recipe, default=[])
    parser.add_argument("--threshold", type=float, default=0.9, help="the filter's threshold")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/recipes"))
    parser.add_argument(
        "--project", type=Path, default=Path("."), help="the project `dvc repro classifier` ran in"
    )
    args = parse_args(parser, SMOKE)
    recipes = dict(args.recipe) or DEFAULT_RECIPES

    manifest = Manifest.read(args.project / "data/prepared/manifest.csv")
    train = load_images(manifest.subset(split="train", source="real"), progress=False)
    val = load_images(manifest.subset(split="val", source="real"), progress=False)
    judge, _ = load_classifier(args.project / "models/classifier.pt")
    classes = manifest.classes
    counts = np.bincount(train.labels, minlength=len(classes))
    tail = sorted(np.argsort(counts, kind="stable")[:TAIL].tolist())
    real_std = [within_class_std(train.images[train.labels == c]) for c in range(len(classes))]
    real_features = extract_features(judge, val.images)
    halves = np.random.default_rng(args.seed).permutation(len(real_features))
    half = len(halves) // 2
    fd_floor = (
        frechet_distance(
            gaussian_stats(real_features[halves[:half]]),
            gaussian_stats(real_features[halves[half:]]),
        )
        if half > 1
        else None
    )
    spec = DataSpec(train.images.shape[1], train.images.shape[3], classes)
    registry = Registry.from_plugins()
    report: dict[str, Any] = {
        "project": str(args.project),
        "steps": args.steps,
        "per_class": args.per_class,
        "threshold": args.threshold,
        "classes": list(classes),
        "train_images": len(train.images),
        "tail_classes": [classes[c] for c in tail],
        "real_diversity": float(np.mean(real_std)),
        "fd_floor": fd_floor,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "recipes": {},
    }
    data = TrainingData(train.images, train.labels)
    for recipe, (name, params) in recipes.items():
        seconds, sampled = train_and_sample(name, params, spec, data, args, registry)
        for suffix, samples in sampled.items():
            label = recipe + suffix
            report["recipes"][label] = measure(
                samples,
                name,
                params,
                seconds,
                args,
                judge,
                real_features,
                val,
                counts,
                tail,
                real_std,
                list(classes),
            )
            row = report["recipes"][label]
            print(
                f"{label:28s} {seconds:6.0f}s  agreement {row['judge_agreement']:.2f} "
                f"(tail {row['judge_agreement_tail']:.2f})  recall {row['recall']} "
                f"(tail {row['recall_tail']})",
                flush=True,
            )
    write_results(args.out, report, markdown(report))


def measure(
    samples: list[np.ndarray],
    name: str,
    params: dict[str, Any],
    seconds: float,
    args: argparse.Namespace,
    judge: Any,
    real_features: np.ndarray,
    val: Any,
    counts: np.ndarray,
    tail: list[int],
    real_std: list[float],
    classes: list[str],
) -> dict[str, Any]:
    """One row of the table: a recipe's samples (u8, a list per class) judged and placed
    against the real val features."""
    per_class: dict[str, dict[str, Any]] = {}
    fake_features = []
    for c, images in enumerate(samples):
        scores = predict_proba(judge, images)
        features = extract_features(judge, images)
        fake_features.append(features)
        precision, recall = coverage(real_features[val.labels == c], features)
        per_class[classes[c]] = {
            "train": int(counts[c]),
            "diversity": within_class_std(images),
            "agreement": float((scores.argmax(1) == c).mean()),
            "probability": float(scores[:, c].mean()),
            "accepted": float((scores[:, c] >= args.threshold).mean()),
            "precision": precision,
            "recall": recall,
        }
    rows = list(per_class.values())
    tail_rows = [rows[c] for c in tail]
    stacked = np.concatenate(fake_features)
    precision, recall = coverage(real_features, stacked)
    return {
        "variant": name,
        "params": params,
        "seconds": round(seconds, 1),
        "seconds_per_step": seconds / max(args.steps, 1),
        "diversity": float(np.mean([r["diversity"] for r in rows])),
        "diversity_ratio_to_real": float(
            np.mean([r["diversity"] for r in rows]) / np.mean(real_std)
        ),
        "judge_agreement": float(np.mean([r["agreement"] for r in rows])),
        "judge_agreement_tail": float(np.mean([r["agreement"] for r in tail_rows])),
        "judge_probability": float(np.mean([r["probability"] for r in rows])),
        "accepted": float(np.mean([r["accepted"] for r in rows])),
        "accepted_tail": float(np.mean([r["accepted"] for r in tail_rows])),
        "fd": frechet_distance(gaussian_stats(real_features), gaussian_stats(stacked))
        if len(real_features) > 1
        else None,
        "precision": precision,
        "recall": recall,
        "recall_tail": mean([r["recall"] for r in tail_rows]),
        "per_class": per_class,
    }


if __name__ == "__main__":
    main()
