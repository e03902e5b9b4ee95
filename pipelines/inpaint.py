"""DVC stage ``inpaint@<variant>``: fill seeded holes in the prepared splits and measure it.

Reads ``models/onnx/<variant>.onnx`` (an inpaint model), ``data/prepared/manifest.csv`` and
the judge ``models/classifier.pt``; writes ``reports/inpaint/<variant>/`` (report.md,
side_by_side.png) and ``metrics/inpaint/<variant>.json``: PSNR/SSIM inside the holes and
the judge's accuracy on the original, cut-out, Telea-filled and model-filled images.
Run from the project root: ``python -m pipelines.inpaint <variant>``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from augment.classifier import load_classifier
from augment.config import parse
from augment.data.images import write_png
from augment.data.manifest import Manifest
from augment.inpaint import InpaintConfig, inpaint_dataset, report_markdown
from augment.io import atomic_path
from pipelines._common import (
    image_loader,
    load_params,
    model_stage_args,
    read_seed,
    require_model,
    run,
    section,
    write_json,
)

log = logging.getLogger("pipelines.inpaint")


def main(argv: list[str]) -> None:
    """Run the stage (options only relocate inputs/outputs, e.g. for tests)."""
    args = model_stage_args(argv, "inpaint", __doc__, out=None)
    variant = args.variant
    params = load_params(args.params)
    config = parse(InpaintConfig, section(params, "inpaint"), "params.yaml inpaint")
    generator = require_model(args.models, variant, "inpaint")
    manifest = Manifest.read(args.manifest)
    judge = load_classifier(args.classifier)
    load = image_loader(generator.info.channels)
    result, figure = inpaint_dataset(
        generator, manifest, config, load, judge, seed=read_seed(params)
    )
    reports = args.reports / variant
    with atomic_path(reports, is_dir=True) as tmp:  # the report and its figure together
        write_png(tmp / "side_by_side.png", figure, atomic=False)
        (tmp / "report.md").write_text(report_markdown(result))
    write_json(args.metrics / f"{variant}.json", asdict(result))
    for split, part in result.splits.items():
        quality = part.quality[variant]
        log.info(
            "%s %s: PSNR in the holes %.2f dB (Telea %.2f dB); judge accuracy %s",
            variant,
            split,
            quality["psnr"],
            part.quality["telea"]["psnr"],
            ", ".join(f"{k} {v:.1%}" for k, v in part.accuracy.items()),
        )


if __name__ == "__main__":
    run(main)
