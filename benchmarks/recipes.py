"""Side by side, in one run: which synthesis recipe keeps class fidelity AND diversity?

Trains each recipe for the same number of steps on the prepared (long-tailed) train split
of the current project, then samples 100 images per class from the generator (eval mode,
as exported) and reports:

* ``diversity``: mean per-pixel standard deviation within a class (0-255 scale), beside
  the same figure for the real train images: a collapsed generator scores near 0;
* ``judge_agreement``: how often the judge classifier (models/classifier.pt) predicts the
  class the image was generated for, and its mean probability for that class.

Needs `dvc repro classifier` first (for data/prepared and models/classifier.pt, read in
``--project``: the current folder unless given). With no ``--recipe`` it runs the README's
table (about 14 minutes on 2 cores); or pick some:

    python benchmarks/recipes.py --steps 1500 \
        --recipe cgan=cgan --recipe cgan+ms=cgan:'{"mode_seeking": 0.2}'
    python benchmarks/recipes.py --smoke --out /tmp/recipes.json   # a tiny run: does it work?
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _results import parse_args

from augment.classifier import load_classifier, predict_proba
from augment.data.batches import TrainingData
from augment.data.images import load_images, to_uint8
from augment.data.manifest import Manifest
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
SMOKE = {"steps": 2, "per_class": 4}  # --smoke: every recipe of the table, a few steps


def parse_recipe(text: str) -> tuple[str, tuple[str, dict]]:
    """``label=variant`` or ``label=variant:{json params}``."""
    label, _, rest = text.partition("=")
    variant, _, params = rest.partition(":")
    return label, (variant, json.loads(params) if params else {})


def within_class_std(images: np.ndarray) -> float:
    return float(images.astype(np.float64).std(axis=0).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--recipe", action="append", type=parse_recipe, default=[])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/recipes.json"))
    parser.add_argument(
        "--project", type=Path, default=Path("."), help="the project `dvc repro classifier` ran in"
    )
    args = parse_args(parser, SMOKE)
    recipes = dict(args.recipe) or DEFAULT_RECIPES

    manifest = Manifest.read(args.project / "data/prepared/manifest.csv")
    train = load_images(manifest.subset(split="train", source="real"), progress=False)
    judge, _ = load_classifier(args.project / "models/classifier.pt")
    classes = manifest.classes
    real_std = [within_class_std(train.images[train.labels == c]) for c in range(len(classes))]
    spec = DataSpec(train.images.shape[1], train.images.shape[3], classes)
    registry = Registry.from_plugins()
    results: dict[str, object] = {
        "steps": args.steps,
        "train_images": len(train.images),
        "real_diversity": float(np.mean(real_std)),
        "recipes": {},
    }
    print(f"real within-class diversity {np.mean(real_std):.1f}")
    for label, (name, params) in recipes.items():
        variant = registry.create(name, params, spec, seed=args.seed)
        config = TrainConfig(steps=args.steps, sample_every=10**9, checkpoint_every=10**9)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            out = TrainOutputs(Path(tmp) / "c.pt", Path(tmp) / "s", Path(tmp) / "l.csv")
            fit(
                variant,
                TrainingData(train.images, train.labels),
                config,
                out,
                args.seed,
                progress=False,
            )
        seconds = time.perf_counter() - started
        module = variant.export_module(variant.generator).eval()
        diversity, agreement, probability = [], [], []
        with torch.no_grad():
            for c in range(len(classes)):
                inputs = variant.example_inputs(args.per_class, seed=args.seed + c)
                inputs["label"] = torch.full((args.per_class,), c)
                images = to_uint8(module(*inputs.values()))
                scores = predict_proba(judge, images)
                diversity.append(within_class_std(images))
                agreement.append(float((scores.argmax(1) == c).mean()))
                probability.append(float(scores[:, c].mean()))
        row = {
            "variant": name,
            "params": params,
            "seconds": round(seconds, 1),
            "diversity": float(np.mean(diversity)),
            "diversity_ratio_to_real": float(np.mean(diversity) / np.mean(real_std)),
            "judge_agreement": float(np.mean(agreement)),
            "judge_agreement_tail_half": float(np.mean(agreement[len(classes) // 2 :])),
            "judge_probability": float(np.mean(probability)),
            "per_class": {
                c: {"diversity": d, "agreement": a}
                for c, d, a in zip(classes, diversity, agreement, strict=True)
            },
        }
        results["recipes"][label] = row
        print(
            f"{label:28s} {seconds:5.0f}s  diversity {row['diversity']:5.1f} "
            f"({row['diversity_ratio_to_real']:.2f}x real)  judge agreement "
            f"{row['judge_agreement']:.2f} (tail half {row['judge_agreement_tail_half']:.2f})"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
