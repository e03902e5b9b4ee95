"""DVC stage ``domains``: build the image domains translators learn and are judged on.

params.yaml: ``seed``, ``variants`` and ``domains``
(:class:`augment.data.domains.DomainsConfig`). Writes ``data/domains/`` (manifest.csv,
images/<domain>/..., content/<domain>/... of styled domains), ``reports/domains/samples.png``
(a row per domain) and ``metrics/domains.json`` (images per domain and split).

Only translators and mask-to-image recipes learn domains: when no variant of ``variants``
is one, the stage reads no source and writes an empty manifest, a picture that says so
and ``{"skipped": ...}``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from augment.data.domains import (
    DomainsConfig,
    build_domains,
    domain_counts,
    domain_preview,
    write_domains,
)
from augment.data.images import text_image, write_png
from augment.data.manifest import Manifest
from augment.io import atomic_path
from augment.registry import Registry
from augment.tasks import DOMAIN_TASKS
from pipelines._common import (
    DOMAINS,
    load_params,
    load_section,
    read_seed,
    run,
    stage_args,
    variant_list,
    write_json,
)

log = logging.getLogger("pipelines.domains")


def main(argv: list[str]) -> None:
    args = stage_args(
        argv,
        "pipelines.domains",
        __doc__,
        out=DOMAINS,
        reports="reports/domains",
        metrics="metrics/domains.json",
    )
    params = load_params(args.params)
    seed = read_seed(params)
    config = load_section(params, "domains", DomainsConfig)
    if not translators(params):
        skip(args.out, args.reports, args.metrics)
        return
    domains = build_domains(config, seed)
    manifest = write_domains(domains, args.out)
    args.reports.mkdir(parents=True, exist_ok=True)
    write_png(args.reports / "samples.png", domain_preview(domains))
    counts = domain_counts(manifest)
    write_json(args.metrics, counts)
    for name, splits in counts.items():
        log.info("domain %-14s %s", name, "  ".join(f"{k} {v}" for k, v in splits.items()))
    log.info("wrote %s (%d images)", args.out, len(manifest))


def translators(params: dict[str, Any]) -> list[str]:
    """The variants of ``variants`` that learn from domains: translators and mask-to-image
    recipes (``DOMAIN_TASKS``; unknown names: PluginError)."""
    registry = Registry.from_plugins()
    return [name for name in variant_list(params) if registry.get(name).task in DOMAIN_TASKS]


SKIPPED = "no translator or mask-to-image variant in variants: no domains built"


def skip(out: Path, reports: Path, metrics: Path) -> None:
    """The outputs of a run with nothing to build: an empty manifest (so a later run with a
    translator replaces a known, empty state), a picture and a metric that say why."""
    with atomic_path(out, is_dir=True) as tmp:
        Manifest.from_rows([], tmp).write(tmp / "manifest.csv")
    reports.mkdir(parents=True, exist_ok=True)
    write_png(reports / "samples.png", text_image(SKIPPED))
    write_json(metrics, {"skipped": SKIPPED})
    log.info("%s (the domains stage serves translate variants only)", SKIPPED)


if __name__ == "__main__":
    run(main)
