"""DVC stage ``evaluate``: does the synthetic data help the downstream classifier?

Trains the same classifier under every condition of params.yaml ``evaluate.conditions``
(see :mod:`augment.evaluate`) for every variant of ``synthesize.variants``, scores it on
the real test split, and measures each generator's quality. Reads ``data/prepared/``
(manifest.csv and, for ``full``, full.csv), ``models/onnx/<variant>.onnx``,
``data/augmented/<variant>/`` (the synthesize stage's images), ``models/classifier.pt``
(the judge, for the filtered or unfiltered set the synthesize stage did not write) and,
for the variants of ``synthesize.interpolate``, ``models/encoders/<variant>/`` (their
images are drawn between encoded real ones, as the synthesize stage draws them). Writes
``metrics/evaluate.json``, ``reports/evaluate/`` (report.md, per_class_recall.{png,csv},
quality_per_class.csv, runs.csv) and keeps every finished run in ``models/evaluate/``
(:mod:`augment.runcache`), so a re-run after a kill or a GAN-side change trains only what
changed.
Run from the project root: ``python -m pipelines.evaluate``.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from augment.classifier import load_classifier
from augment.conditions import TWICE, EvaluateConfig
from augment.data.arrays import Images
from augment.data.images import load_images
from augment.data.manifest import Manifest
from augment.data.prepare import FULL_MANIFEST
from augment.errors import DataError, ModelError
from augment.evaluate import evaluate_conditions
from augment.io import atomic_path
from augment.report import evaluate_warnings, noise_text, write_report
from augment.runcache import RunCache
from augment.runtime import OnnxGenerator
from augment.synthesize import SynthesisConfig, synthesize_arrays
from pipelines._common import (
    AUGMENTED,
    CLASSIFIER,
    ENCODERS,
    EVALUATE_CACHE,
    ONNX_MODELS,
    PREPARED,
    load_params,
    load_section,
    read_seed,
    require_encoder,
    run,
    stage_args,
    trained_variants,
    write_json,
)

log = logging.getLogger("pipelines.evaluate")


def load(manifest: Manifest, classes: tuple[str, ...], what: str) -> Images:
    """A manifest's images with labels indexed by ``classes`` (DataError if it has others)."""
    extra = sorted(set(manifest.classes) - set(classes))
    if extra:
        raise DataError(f"{what}: unknown class(es) {', '.join(map(repr, extra))}")
    loaded = load_images(manifest, progress=False)
    remap = np.array([classes.index(c) for c in manifest.classes], np.int64)
    return Images(loaded.images, remap[loaded.labels])


def synthetic_sets(
    variant: str,
    real: Manifest,
    classes: tuple[str, ...],
    n_max: int,
    args: argparse.Namespace,
    synthesis: SynthesisConfig,
    seed: int,
) -> dict[str, Images]:
    """The variant's synthetic images: ``stage``, ``unfiltered``, ``filtered``, ``only``.

    ``stage`` is what the synthesize stage wrote (read from disk); the balancing set with
    the filter flipped is generated here (same seeds, so its images are those the stage
    would write). ``only`` (CAS) has ``n_max`` unfiltered images per class; the unfiltered
    balancing images are their first ``deficit`` per class (the same noise). A variant of
    ``synthesis.interpolate`` draws them all between encoded real images, as the stage does.
    """
    model_path = args.models / f"{variant}.onnx"
    if not model_path.is_file():
        raise ModelError(f"{model_path}: no exported model for variant {variant!r}")
    generator = OnnxGenerator(model_path, task="synthesize")
    augmented_path = args.augmented / variant / "manifest.csv"
    if not augmented_path.is_file():
        raise DataError(f"{augmented_path}: not found (run the synthesize stage first)")
    augmented = Manifest.read(augmented_path)
    on_disk = load(augmented.subset(source="synthetic"), classes, str(augmented_path))

    encoder = require_encoder(args.encoders, variant) if variant in synthesis.interpolate else None
    counts = real.counts("train", source="real")
    balanced = {str(c): n_max for c in classes}
    unfiltered = synthesis.with_filter(False)
    cas = synthesize_arrays(
        generator, real, unfiltered, seed, quotas=balanced, progress=False, encoder=encoder
    )
    deficits = [cas[c][: max(0, n_max - int(counts[c]))] for c in classes]
    sets = {"stage": on_disk, "only": Images.from_classes([cas[c] for c in classes])}
    if synthesis.filter.enabled:
        sets["filtered"] = on_disk
        sets["unfiltered"] = Images.from_classes(deficits)
    else:
        sets["unfiltered"] = on_disk
        judge = load_classifier(args.classifier)
        filtered = synthesis.with_filter(True)
        arrays = synthesize_arrays(
            generator, real, filtered, seed, judge=judge, progress=False, encoder=encoder
        )
        sets["filtered"] = Images.from_classes([arrays[c] for c in classes])
    return sets


def log_verdicts(found: dict[str, dict[str, Any]]) -> None:
    for variant, v in found.items():
        level = logging.INFO if v["helps"] else logging.WARNING
        log.log(
            level,
            "%s: %s vs %s: %+.2f points of balanced accuracy (%s)%s",
            variant,
            v["best"],
            v["rival"],
            100 * v["delta"],
            noise_text(v),
            "" if v["helps"] else ": synthetic data did not beat the best classical condition",
        )


def sample_images(args: argparse.Namespace, variants: list[str], report_dir: Path) -> dict:
    """Captions -> paths (relative to the report) of the earlier stages' sample grids."""
    images = {}
    for variant in variants:
        for caption, rel in (
            (f"{variant}: synthesized (synthesize stage)", f"synthesize/{variant}/samples.png"),
            (f"{variant}: training samples, final", f"train/{variant}/final.png"),
        ):
            if (args.reports / rel).is_file():
                images[caption] = os.path.relpath(args.reports / rel, report_dir)
    return images


HEADLINE_QUALITY = ("fd", "fd_floor", "precision", "recall")


def headline_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """What ``dvc metrics show`` lists for the stage: each variant's verdict (its best
    condition, the difference to the best classical one, whether it helps), each
    condition's mean balanced accuracy, each variant's headline quality, the run counts,
    and whether the downstream classifier converged (the ``-2x`` runs of the check stay in
    the details). Everything (tail and per-class recalls, stds, F1, G-mean, noise, the
    protocol) is in the report's metrics.json."""
    conditions = {k: e for k, e in metrics["conditions"].items() if not k.endswith(TWICE)}
    return {
        "verdict": {
            v: {key: found[key] for key in ("best", "delta", "helps")}
            for v, found in metrics["verdict"].items()
        },
        "balanced_accuracy": {k: e["balanced_accuracy"]["mean"] for k, e in conditions.items()},
        "quality": {
            v: {k: q[k] for k in HEADLINE_QUALITY if k in q} for v, q in metrics["quality"].items()
        },
        "steps": metrics["steps"],
        "seeds": metrics["seeds"],
        "trained_runs": metrics["trained_runs"],
        "cached_runs": metrics["cached_runs"],
        "seconds": metrics["seconds"],
    } | ({"converged": check["converged"]} if (check := metrics.get("convergence")) else {})


def summary_lines(
    verdicts: dict[str, dict[str, Any]],
    summary: dict[str, dict[str, Any]],
    report: Path,
    context: dict[str, Any] | None = None,
) -> list[str]:
    """The end of the run in a few lines: each variant's verdict, whether the downstream
    classifier converged, and where to look."""

    def score(key: str) -> str:
        return f"{100 * summary[key]['balanced_accuracy']['mean']:.1f}"

    lines = []
    for variant, v in verdicts.items():
        if v.get("best") is None or v.get("rival") is None:
            continue
        said = "helps" if v["helps"] else "does not help"
        lines.append(
            f"verdict {variant}: synthetic data {said}: best GAN condition {v['best']} "
            f"{score(v['best'])} vs best classical {v['rival']} {score(v['rival'])} "
            f"({100 * v['delta']:+.1f} points, {noise_text(v)})"
        )
    check = (context or {}).get("convergence")
    if check:
        said = "converged" if check["converged"] else "NOT converged (see the report)"
        lines.append(
            f"downstream classifier {said}: twice the steps moved {check['condition']} by "
            f"{100 * check['moved']:+.1f} points"
        )
    return [*lines, f"report: {report / 'report.md'}"]


def main(argv: list[str]) -> None:
    """Run the stage (options only relocate inputs/outputs, e.g. for tests)."""
    args = stage_args(
        argv,
        "pipelines.evaluate",
        __doc__,
        prepared=PREPARED,
        models=ONNX_MODELS,
        encoders=ENCODERS,
        classifier=CLASSIFIER,
        augmented=AUGMENTED,
        reports="reports",
        metrics="metrics/evaluate.json",
        cache=EVALUATE_CACHE,
    )

    params = load_params(args.params)
    seed = read_seed(params)
    config = load_section(params, "evaluate", EvaluateConfig)
    synthesis = load_section(params, "synthesize", SynthesisConfig)
    conditions = config.parsed()
    wants_gan = any(c.uses_generator for c in conditions) or config.quality.enabled
    variants = synthesis.variants if wants_gan else []
    trained_variants(params, variants, "params.yaml synthesize.variants")
    started = time.perf_counter()

    manifest = Manifest.read(args.prepared / "manifest.csv")
    classes = manifest.classes
    real = load(manifest.subset(split="train", source="real"), classes, "train split")
    test = load(manifest.subset(split="test"), classes, "test split")
    if len(test) == 0:
        raise DataError(f"{args.prepared / 'manifest.csv'}: no test images to evaluate on")
    full_path = args.prepared / FULL_MANIFEST
    full = None
    if any(c.method == "full" for c in conditions) and full_path.is_file():
        full = load(Manifest.read(full_path).subset(split="train"), classes, str(full_path))
    n_max = int(real.counts(len(classes)).max())
    synthetic = {
        variant: synthetic_sets(variant, manifest, classes, n_max, args, synthesis, seed)
        for variant in variants
    }
    cache = RunCache(args.cache)
    evaluation = evaluate_conditions(real, full, test, synthetic, classes, config, seed, cache)
    found, summary, downstream = evaluation.verdicts, evaluation.summary, evaluation.downstream
    log_verdicts(found)
    seconds = time.perf_counter() - started
    context = evaluation.context | {"seconds": round(seconds, 1)}
    metrics = {
        **context,
        "verdict": found,
        "conditions": summary,
        "quality": {v: q["overall"] for v, q in evaluation.quality.items()},
    }
    headline = headline_metrics(metrics)
    for line in evaluate_warnings(classes, context):
        log.warning("%s", line)
    report_dir = args.reports / "evaluate"
    with atomic_path(report_dir, is_dir=True) as tmp:
        write_report(
            tmp,
            summary=summary,
            quality=evaluation.quality,
            verdicts=found,
            classes=classes,
            train_counts=real.counts(len(classes)).tolist(),
            context=context,
            images=sample_images(args, variants, report_dir),
        )
        runs = [
            {"condition": key, **{k: v for k, v in r.items() if not k.startswith("per_class")}}
            for key, rs in downstream.runs.items()
            for r in rs
        ]
        pd.DataFrame(runs).to_csv(tmp / "runs.csv", index=False, lineterminator="\n")
        write_json(tmp / "metrics.json", metrics)  # everything; the DVC metric: the headline
    write_json(args.metrics, headline)
    log.info(
        "wrote %s and %s in %.0f s (%d runs trained, %d from the cache)",
        args.metrics,
        report_dir,
        seconds,
        cache.misses,
        cache.hits,
    )
    for line in summary_lines(found, summary, report_dir, context):
        log.info("%s", line)


if __name__ == "__main__":
    run(main)
