"""DVC stage ``report``: ``reports/index.html``, every stage's findings on one page.

Reads the headline metrics under ``metrics/`` and the pictures under ``reports/`` (the
stages that ran; the others are left out) and writes one self-contained HTML file
(:mod:`augment.report_page`). It depends on ``metrics/``, which every stage rewrites when
it runs, so it is regenerated whenever a stage's findings change.
"""

from __future__ import annotations

import logging

from augment.report_page import write_report_page
from pipelines._common import METRICS, REPORTS, run, stage_args

log = logging.getLogger("pipelines.report")


def main(argv: list[str]) -> None:
    args = stage_args(
        argv,
        "pipelines.report",
        __doc__,
        out=f"{REPORTS}/index.html",
        reports=REPORTS,
        metrics=METRICS,
    )
    write_report_page(args.out, args.reports, args.metrics)
    log.info("wrote %s: open it in a browser", args.out)


if __name__ == "__main__":
    run(main)
