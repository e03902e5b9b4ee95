"""DVC stage ``report``: ``reports/index.html``, every stage's findings on one page.

Reads the headline metrics under ``metrics/`` and the pictures under ``reports/`` (the
stages that ran; the others are left out) and writes one self-contained HTML file
(:mod:`augment.report_page`), and copies the stage figures into ``plots/figures/`` (what
``dvc plots show`` draws beside the loss curves). It depends on ``metrics/``, which every
stage rewrites when it runs, so both follow whenever a stage's findings change.
"""

from __future__ import annotations

import logging

from augment.report_page import write_figures, write_report_page
from pipelines._common import METRICS, PLOTS, REPORTS, run, stage_args

log = logging.getLogger("pipelines.report")


def main(argv: list[str]) -> None:
    args = stage_args(
        argv,
        "pipelines.report",
        __doc__,
        out=f"{REPORTS}/index.html",
        reports=REPORTS,
        metrics=METRICS,
        figures=f"{PLOTS}/figures",
    )
    write_report_page(args.out, args.reports, args.metrics)
    count = write_figures(args.figures, args.reports, args.metrics)
    log.info("wrote %s: open it in a browser (%d figures in %s)", args.out, count, args.figures)


if __name__ == "__main__":
    run(main)
