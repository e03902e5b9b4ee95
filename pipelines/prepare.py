"""DVC stage ``prepare``: load the source, split it, make the train split long-tailed.

Outputs ``data/prepared/`` (manifest.csv + images/), ``reports/prepare/class_counts.*``,
``reports/prepare/bad_images.csv`` (images skipped with ``skip_bad``, and why) and
``metrics/prepare.json``. Run from the project root: ``python -m pipelines.prepare``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pandas as pd

from augment.config import parse
from augment.data.prepare import (
    PrepareConfig,
    load_prepared_source,
    prepare_dataset,
    prepare_metrics,
    write_count_report,
)
from augment.io import atomic_path
from pipelines._common import PARAMS, load_params, read_seed, run, section

log = logging.getLogger("pipelines.prepare")


def main(argv: list[str]) -> None:
    """Run the stage (options only relocate inputs/outputs, e.g. for tests)."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.prepare", description=__doc__)
    parser.add_argument("--params", type=Path, default=PARAMS)
    parser.add_argument("--out", type=Path, default=Path("data/prepared"))
    parser.add_argument("--reports", type=Path, default=Path("reports/prepare"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/prepare.json"))
    args = parser.parse_args(argv)

    params = load_params(args.params)
    seed = read_seed(params)
    config = parse(PrepareConfig, section(params, "prepare"), "params.yaml prepare")

    raw = load_prepared_source(config)
    log.info("loaded %s: %d images of %d classes", raw.name, len(raw.labels), len(raw.classes))
    manifest = prepare_dataset(raw, config, args.out, seed)
    table = write_count_report(manifest, args.reports, f"{raw.name}: prepared class counts")
    with atomic_path(args.reports / "bad_images.csv") as tmp:  # listed, never silent
        pd.DataFrame(raw.bad, columns=["path", "reason"]).to_csv(tmp, index=False)
    metrics = prepare_metrics(manifest, len(raw.bad))
    with atomic_path(args.metrics) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")

    for name, row in table.iterrows():
        log.info(
            "class %-14s train %6d  val %5d  test %5d",
            name,
            row["train_real"],
            row["val"],
            row["test"],
        )
    if raw.bad:
        log.warning("%d bad image(s) skipped, first: %s (%s)", len(raw.bad), *raw.bad[0])
    log.info(
        "wrote %s (%d images), imbalance ratio %.1f",
        args.out,
        len(manifest),
        metrics["imbalance_ratio"],
    )


if __name__ == "__main__":
    run(main)
