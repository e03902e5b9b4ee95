"""DVC stage ``translate@<variant>``: translate the source domain into the target, and judge.

Reads ``models/onnx/<variant>.onnx`` (a translate model) and ``data/domains/``; params
``seed``, ``domains`` (source and target) and ``translate``. Writes
``data/translated/<variant>/`` (the source train split translated into the target: PNGs
and a manifest of synthetic target-domain train rows with the source labels),
``reports/translate/<variant>/`` (report.md and grid.png: source | translated |
reconstructed) and ``metrics/translate/<variant>.json``: source-only, translated and
oracle accuracy on the target test split, the gap closed, and label preservation.
Run from the project root: ``python -m pipelines.translate <variant>``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from augment.data.domains import DomainsConfig
from augment.data.images import write_png
from augment.data.manifest import Manifest
from augment.io import atomic_path
from augment.translate import (
    TranslateConfig,
    adaptation,
    domain_part,
    report_markdown,
    translate_domain,
    translation_grid,
)
from pipelines._common import (
    DOMAINS_MANIFEST,
    ONNX_MODELS,
    TRANSLATED,
    check_variant_name,
    image_loader,
    load_params,
    load_section,
    read_seed,
    require_model,
    run,
    stage_args,
    write_metrics,
)

log = logging.getLogger("pipelines.translate")


def main(argv: list[str]) -> None:
    """Run the stage (options only relocate inputs/outputs, e.g. for tests)."""
    args = stage_args(
        argv,
        "pipelines.translate",
        __doc__,
        positional=("variant",),
        manifest=DOMAINS_MANIFEST,
        models=ONNX_MODELS,
        out=TRANSLATED,
        reports="reports/translate",
        metrics="metrics/translate",
    )
    variant = args.variant
    check_variant_name(variant, "python -m pipelines.translate")
    params = load_params(args.params)
    seed = read_seed(params)
    config = load_section(params, "translate", TranslateConfig)
    domains = load_section(params, "domains", DomainsConfig)
    generator = require_model(args.models, variant, "translate")
    manifest = Manifest.read(args.manifest)

    load = image_loader(generator.info.channels, progress=False)
    translation = translate_domain(
        generator,
        manifest,
        domains,
        args.out / variant,
        load,
        config.batch_size,
        seed,
        config.filter,
        config.epochs,
    )
    images, labels, translated = translation.images, translation.labels, translation.translated
    result = adaptation(
        variant,
        domains,
        (images, labels),
        translated,
        load(domain_part(manifest, domains.target, "train")),
        load(domain_part(manifest, domains.target, "test")),
        list(manifest.classes),
        config.epochs,
        seed,
        source_test=load(domain_part(manifest, domains.source, "test")),
        images_per_second=translation.images_per_second,
        kept=translation.kept,
    )
    reports = args.reports / variant
    reports.mkdir(parents=True, exist_ok=True)
    names = [manifest.classes[k] for k in labels]
    grid = translation_grid(generator, images, translated, names, domains.source, config.grid)
    write_png(reports / "grid.png", grid)
    with atomic_path(reports / "report.md") as tmp:
        tmp.write_text(report_markdown(result, generator.multi_domain))
    details = args.reports / variant / "metrics.json"
    per_class = {"preservation_per_class", "classes", "acceptance_per_class"}
    write_metrics(args.metrics / f"{variant}.json", details, asdict(result), per_class)
    a = result.accuracy
    log.info(
        "%s %s -> %s: source-only %.1f%%, translated %.1f%%, oracle %.1f%% (gap closed %s); "
        "labels preserved %.1f%%",
        variant,
        domains.source,
        domains.target,
        100 * a["source_only"],
        100 * a["translated"],
        100 * a["oracle"],
        "n/a" if result.gap_closed is None else f"{result.gap_closed:.0%}",
        100 * result.label_preservation,
    )
    if result.kept is not None:
        log.info(
            "%s: the label filter kept %d of %d translations (labels preserved %.1f%% of all)",
            variant,
            result.kept,
            result.images,
            100 * (result.label_preservation_unfiltered or 0),
        )


if __name__ == "__main__":
    run(main)
