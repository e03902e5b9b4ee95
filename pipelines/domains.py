"""DVC stage ``domains``: build the image domains translators learn and are judged on.

params.yaml: ``seed`` and ``domains`` (:class:`augment.data.domains.DomainsConfig`).
Writes ``data/domains/`` (manifest.csv, images/<domain>/..., content/<domain>/... of
styled domains), ``reports/domains/samples.png`` (a row per domain) and
``metrics/domains.json`` (images per domain and split).
"""

from __future__ import annotations

import logging

from augment.data.domains import (
    DomainsConfig,
    build_domains,
    domain_counts,
    domain_preview,
    write_domains,
)
from augment.data.images import write_png
from pipelines._common import (
    DOMAINS,
    load_params,
    load_section,
    read_seed,
    run,
    stage_args,
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
    domains = build_domains(config, seed)
    manifest = write_domains(domains, args.out)
    args.reports.mkdir(parents=True, exist_ok=True)
    write_png(args.reports / "samples.png", domain_preview(domains))
    counts = domain_counts(manifest)
    write_json(args.metrics, counts)
    for name, splits in counts.items():
        log.info("domain %-14s %s", name, "  ".join(f"{k} {v}" for k, v in splits.items()))
    log.info("wrote %s (%d images)", args.out, len(manifest))


if __name__ == "__main__":
    run(main)
