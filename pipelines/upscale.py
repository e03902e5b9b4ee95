"""DVC stage ``upscale@<variant>``: upscale low-resolution copies of the prepared splits.

Reads ``models/onnx/<variant>.onnx`` (an upscale model), ``data/prepared/manifest.csv``
and the judge ``models/classifier.pt``; writes ``data/upscaled/<variant>/`` (lowres/,
upscaled/ and manifest.csv), ``reports/upscale/<variant>/`` (report.md,
side_by_side.png) and ``metrics/upscale/<variant>.json``: PSNR/SSIM and the judge's
accuracy on the originals, nearest, bicubic and the model's output.
Run from the project root: ``python -m pipelines.upscale <variant>``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from augment.classifier import load_classifier
from augment.config import parse
from augment.data.manifest import Manifest
from augment.io import atomic_path
from augment.upscale import UpscaleConfig, report_markdown, upscale_dataset
from pipelines._common import (
    UPSCALED,
    image_loader,
    load_params,
    model_stage_args,
    require_model,
    run,
    section,
    write_json,
)

log = logging.getLogger("pipelines.upscale")


def main(argv: list[str]) -> None:
    """Run the stage (options only relocate inputs/outputs, e.g. for tests)."""
    args = model_stage_args(argv, "upscale", __doc__, out=UPSCALED)
    variant = args.variant
    config = parse(
        UpscaleConfig, section(load_params(args.params), "upscale"), "params.yaml upscale"
    )
    generator = require_model(args.models, variant, "upscale")
    manifest = Manifest.read(args.manifest)
    judge = load_classifier(args.classifier)

    load = image_loader(generator.info.channels)
    reports = args.reports / variant
    result = upscale_dataset(
        generator, manifest, config, args.out / variant, load, judge, report_dir=reports
    )
    with atomic_path(reports / "report.md") as tmp:
        tmp.write_text(report_markdown(result))
    metrics = asdict(result) | {"megapixels_per_second": round(result.megapixels_per_second, 3)}
    write_json(args.metrics / f"{variant}.json", metrics)
    for split, part in result.splits.items():
        log.info(
            "%s %s: PSNR %s %.2f dB vs bicubic %.2f dB; judge accuracy %s",
            variant,
            split,
            variant,
            part.quality[variant]["psnr"],
            part.quality["bicubic"]["psnr"],
            ", ".join(f"{k} {v:.1%}" for k, v in part.accuracy.items()),
        )


if __name__ == "__main__":
    run(main)
