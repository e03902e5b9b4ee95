"""The stage figures behind reports/index.html and plots/figures (no pipeline run)."""

from __future__ import annotations

import json
from pathlib import Path

from augment.data.images import text_image, write_png
from augment.report_page import report_page, stage_figures, write_figures


def make_reports(root: Path, domains_skipped: bool) -> tuple[Path, Path]:
    reports, metrics = root / "reports", root / "metrics"
    for rel in (
        "evaluate/per_class_recall.png",
        "synthesize/a/samples.png",
        "synthesize/b/samples.png",
        "upscale/up/side_by_side.png",
        "train/a/final.png",
        "prepare/class_counts.png",
        "domains/samples.png",
    ):
        write_png(reports / rel, text_image(rel))
    (reports / "synthesize/b/report.md").write_text("not a figure")
    metrics.mkdir()
    domains = {"skipped": "no translator"} if domains_skipped else {"domains": 2}
    (metrics / "domains.json").write_text(json.dumps(domains))
    return reports, metrics


def test_stage_figures_name_every_variant_in_page_order(tmp_path):
    reports, metrics = make_reports(tmp_path, domains_skipped=True)
    assert list(stage_figures(reports, metrics)) == [
        "evaluate_per_class_recall.png",
        "synthesize_a_samples.png",
        "synthesize_b_samples.png",
        "upscale_up_side_by_side.png",
        "train_a_final.png",
        "prepare_class_counts.png",
    ]  # no translate folder; the domains stage's "skipped" placeholder left out
    reports, metrics = make_reports(tmp_path / "built", domains_skipped=False)
    assert "domains_samples.png" in stage_figures(reports, metrics)


def test_write_figures_replaces_the_folder_with_copies(tmp_path):
    reports, metrics = make_reports(tmp_path, domains_skipped=True)
    folder = tmp_path / "plots/figures"
    folder.mkdir(parents=True)
    (folder / "synthesize_gone_samples.png").write_bytes(b"a variant no longer run")
    assert write_figures(folder, reports, metrics) == 6
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(stage_figures(reports, metrics))
    copied = (folder / "train_a_final.png").read_bytes()
    assert copied == (reports / "train/a/final.png").read_bytes()
    assert not list(folder.parent.glob(".figures*"))  # no temporary left behind


def test_the_page_embeds_the_figures_it_finds(tmp_path):
    reports, metrics = make_reports(tmp_path, domains_skipped=True)
    page = report_page(reports, metrics)
    assert page.count("data:image/png;base64,") == 4  # samples a and b, upscale, train
    assert "<h2>Synthesis</h2>" in page and "<h2>Translation</h2>" not in page
