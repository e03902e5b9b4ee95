"""DVC stage ``synthesize@<variant>``: balance the prepared dataset with generated images.

Reads ``models/onnx/<variant>.onnx``, ``data/prepared/manifest.csv``, (when the
quality filter is enabled) ``models/classifier.pt`` and (when ``interpolate`` lists the
variant) its encoder ``models/encoders/<variant>/encoder.onnx``; writes
``data/augmented/<variant>/`` (manifest.csv + synthetic/),
``reports/synthesize/<variant>/`` (class_counts.*, acceptance.json, samples.png) and
``metrics/synthesize/<variant>.json``. A judge whose balanced accuracy on the val split is
below ``filter.min_judge_accuracy`` is a warning (and ``filter_reliable: false`` in the
metrics): it cannot tell good samples from bad.
Run from the project root: ``python -m pipelines.synthesize <variant>``.
"""

from __future__ import annotations

import logging
from typing import Any

from augment.classifier import evaluate, load_classifier
from augment.data.manifest import Manifest
from augment.synthesize import SynthesisConfig, SynthesisResult, synthesize
from pipelines._common import (
    AUGMENTED,
    ENCODERS,
    image_loader,
    load_params,
    load_section,
    model_stage_args,
    read_seed,
    require_encoder,
    require_model,
    run,
    write_metrics,
)

log = logging.getLogger("pipelines.synthesize")


def judge_accuracy(judge: tuple[Any, list[str]], real: Manifest) -> float | None:
    """The judge's balanced accuracy on the val split (None without val images)."""
    val = real.subset(split="val")
    if len(val) == 0:
        return None
    model, classes = judge
    images, labels = image_loader(progress=False)(val)
    return float(evaluate(model, images, labels, len(classes))["balanced_accuracy"])


def overall_acceptance(result: SynthesisResult) -> float | None:
    """The fraction of all generated samples the filter accepted (None: no filter ran)."""
    rated = {c: r for c, r in result.acceptance_rate.items() if r is not None}
    generated = sum(result.generated[c] for c in rated)
    if not generated:
        return None
    return round(sum(r * result.generated[c] for c, r in rated.items()) / generated, 6)


def stage_metrics(variant: str, result: SynthesisResult) -> dict[str, Any]:
    """The stage's metrics: totals, throughput and (``classes``: in the details file only)
    per-class numbers."""
    after = result.after
    return {
        "variant": variant,
        "policy": result.policy,
        "latent": result.latent,
        "filter": result.filtered,
        "threshold": result.threshold,
        "synthetic_images": sum(result.written.values()),
        "short_of_plan": sum(result.short.values()),
        "generated_images": sum(result.generated.values()),
        "filled_below_threshold": sum(result.filled_below_threshold.values()),
        "seconds": result.seconds,
        "images_per_second": result.images_per_second,
        "acceptance_rate": overall_acceptance(result),
        "classes": {
            name: {
                "threshold": result.thresholds.get(name, result.threshold),
                "before": result.before[name],
                "planned": result.plan[name],
                "synthetic": result.written[name],
                "after": after[name],
                "generated": result.generated[name],
                "acceptance_rate": (
                    None
                    if result.acceptance_rate[name] is None
                    else round(result.acceptance_rate[name], 6)
                ),
                "filled_below_threshold": result.filled_below_threshold[name],
            }
            for name in result.plan
        },
    }


def log_table(result: SynthesisResult) -> None:
    """One line per class: real train count -> augmented count (+ acceptance)."""
    after = result.after
    for name in result.plan:
        rate = result.acceptance_rate[name]
        accepted = "" if not result.filtered or rate is None else f"  acceptance {rate:6.1%}"
        filled = result.filled_below_threshold[name]
        short = result.short[name]
        note = f"  ({filled} below threshold)" if filled else ""
        note += f"  ({short} short of plan)" if short else ""
        log.info(
            "class %-14s %6d -> %6d (+%d)%s%s",
            name,
            result.before[name],
            after[name],
            result.written[name],
            accepted,
            note,
        )


def main(argv: list[str]) -> None:
    """Run the stage (options only relocate inputs/outputs, e.g. for tests)."""
    args = model_stage_args(argv, "synthesize", __doc__, out=AUGMENTED, encoders=ENCODERS)
    variant = args.variant

    params = load_params(args.params)
    seed = read_seed(params)
    config = load_section(params, "synthesize", SynthesisConfig)
    generator = require_model(args.models, variant, "synthesize")
    encoder = require_encoder(args.encoders, variant) if variant in config.interpolate else None
    real = Manifest.read(args.manifest)
    judge = load_classifier(args.classifier) if config.filter.enabled else None
    accuracy = judge_accuracy(judge, real) if judge is not None else None
    reliable = accuracy is None or accuracy >= config.filter.min_judge_accuracy
    if not reliable:
        log.warning(
            "the judge (%s) reaches %.0f%% balanced accuracy on the val split, below "
            "filter.min_judge_accuracy %.0f%%: its filter cannot tell good samples from bad "
            "(train it longer: classifier.epochs, or set synthesize.filter.enabled: false)",
            args.classifier,
            100 * accuracy,
            100 * config.filter.min_judge_accuracy,
        )

    result = synthesize(
        generator,
        real,
        config,
        args.out / variant,
        seed,
        judge=judge,
        report_dir=args.reports / variant,
        encoder=encoder,
    )
    log_table(result)
    judged = {"judge_val_balanced_accuracy": accuracy, "filter_reliable": reliable}
    details = args.reports / variant / "metrics.json"
    metrics = stage_metrics(variant, result) | judged
    write_metrics(args.metrics / f"{variant}.json", details, metrics, {"classes"})
    log.info(
        "%s: %d synthetic images, %.1f images/s",
        variant,
        sum(result.written.values()),
        result.images_per_second,
    )


if __name__ == "__main__":
    run(main)
