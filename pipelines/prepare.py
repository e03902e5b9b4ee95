"""DVC stage ``prepare``: load the source, split it (an artificial long tail if asked).

Outputs ``data/prepared/`` (manifest.csv + images/), ``reports/prepare/class_counts.*``,
``reports/prepare/dropped.csv`` (train images per class that ``limit_per_class`` and
``long_tail`` left out), ``reports/prepare/conversions.json`` (images changed by decoding
or resizing, per kind), ``reports/prepare/bad_images.csv`` (images skipped with
``skip_bad``, and why) and ``metrics/prepare.json``. Run from the project root:
``python -m pipelines.prepare``.
"""

from __future__ import annotations

import logging

import pandas as pd

from augment.data.images import CONVERSIONS
from augment.data.prepare import (
    PrepareConfig,
    load_prepared_source,
    prepare_dataset,
    prepare_metrics,
    write_count_report,
)
from augment.io import atomic_path
from augment.report import split_warnings
from pipelines._common import (
    PREPARED,
    load_params,
    load_section,
    read_seed,
    run,
    stage_args,
    write_json,
)

log = logging.getLogger("pipelines.prepare")


def main(argv: list[str]) -> None:
    """Run the stage (options only relocate inputs/outputs, e.g. for tests)."""
    args = stage_args(
        argv,
        "pipelines.prepare",
        __doc__,
        out=PREPARED,
        reports="reports/prepare",
        metrics="metrics/prepare.json",
    )

    params = load_params(args.params)
    seed = read_seed(params)
    config = load_section(params, "prepare", PrepareConfig)

    raw = load_prepared_source(config)
    log.info("loaded %s: %d images of %d classes", raw.name, len(raw.labels), len(raw.classes))
    prepared = prepare_dataset(raw, config, args.out, seed)
    manifest, dropped = prepared.manifest, prepared.dropped
    table = write_count_report(manifest, args.reports, f"{raw.name}: prepared class counts")
    with atomic_path(args.reports / "dropped.csv") as tmp:  # what options left out, per class
        dropped.to_csv(tmp, lineterminator="\n")
    with atomic_path(args.reports / "bad_images.csv") as tmp:  # listed, never silent
        pd.DataFrame(raw.bad, columns=["path", "reason"]).to_csv(tmp, index=False)
    described = {k: {"images": n, "what": CONVERSIONS[k]} for k, n in prepared.conversions.items()}
    write_json(args.reports / "conversions.json", described)  # counted, never silent
    metrics = (
        prepare_metrics(manifest, len(raw.bad))
        | {f"dropped_{key}": int(value) for key, value in dropped.sum().items()}
        | {"conversions": prepared.conversions}
    )
    write_json(args.metrics, metrics)

    for name, row in table.iterrows():
        left_out = int(dropped.loc[name].sum())
        log.info(
            "class %-14s train %6d  val %5d  test %5d%s",
            name,
            row["train_real"],
            row["val"],
            row["test"],
            f"  ({left_out} train images left out)" if left_out else "",
        )
    for line in split_warnings(list(table.index), table["test"].tolist()):
        log.warning("test split: %s", line)
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
