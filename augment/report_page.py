"""``reports/index.html``: every stage's findings on one self-contained page; ``plots/figures``.

The verdict first (does the synthetic data help, against the best classical fix), then
synthesis, translation, upscaling, training and the data, each with its pictures. The
figures come from the stages' metrics (the evaluate stage's full ones in
``reports/evaluate/metrics.json``, the others' headlines in ``metrics/``), the pictures
from ``reports/``; images are embedded as data URIs, so the file can be mailed or opened
offline. A stage that did not run is simply absent. An inline script counts the images
the browser decoded into ``<body data-images-loaded>`` (what the test reads back from
headless Chromium).

The same stage figures, copied into one folder (:func:`write_figures`), are what
``dvc plots show`` draws beside the loss curves.
"""

from __future__ import annotations

import base64
import html
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from augment.io import atomic_path
from augment.report import convergence_warning, noise_text

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222 }
h1 { margin-bottom: 0.2em } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em }
.verdict { font-size: 1.15em; padding: 0.6em 1em; border-radius: 6px }
.helps { background: #e3f4e1 } .no { background: #fbeaea }
table { border-collapse: collapse; margin: 0.6em 0 } td, th { padding: 2px 10px }
th { text-align: left; border-bottom: 1px solid #999 } td.n { text-align: right }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top }
figure img { max-width: 100%; image-rendering: pixelated; border: 1px solid #ddd }
figcaption { font-size: 0.85em; color: #555 }
"""

COUNT_IMAGES = """
addEventListener("load", () => {
  const loaded = [...document.images].filter((img) => img.complete && img.naturalWidth > 0);
  document.body.dataset.imagesLoaded = loaded.length;
});
"""


#: One variant's part of a section: (variant, its headline metrics, its report folder) -> HTML.
VariantItem = Callable[[str, dict[str, Any], Path], str]


def _json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _figure(path: Path, caption: str, width: int | None = None) -> str:
    if not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    style = f' style="width:{width}px"' if width else ""
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}"{style}>'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _pct(value: Any) -> str:
    return "" if value is None else f"{100 * float(value):.1f}"


def _number(value: Any) -> str:
    return "?" if value is None else f"{float(value):.2f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="n">{c}</td>' if i else f"<td>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _variant_folders(folder: Path) -> list[Path]:
    """A stage's per-variant report folders (``reports/<stage>/<v>``), by name."""
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def _per_variant(heading: str, stage: str, metrics: Path, reports: Path, item: VariantItem) -> str:
    """A section with one item per variant the stage reported on (``reports/<stage>/<v>``),
    each drawn from the variant's headline metrics and report folder; no heading when
    no item has anything to show."""
    folders = _variant_folders(reports / stage)
    items = [item(f.name, _json(metrics / stage / f"{f.name}.json") or {}, f) for f in folders]
    shown = [text for text in items if text]
    return f"<h2>{heading}</h2>\n" + "\n".join(shown) if shown else ""


def _verdict(metrics: Path, reports: Path) -> str:
    found = _json(reports / "evaluate" / "metrics.json")  # the stage's full figures
    if found is None:
        return ""
    parts = ["<h2>Does the synthetic data help?</h2>"]
    conditions = found.get("conditions", {})
    for variant, v in found.get("verdict", {}).items():
        delta = 100 * v["delta"]
        said = "helps" if v["helps"] else "does not help"
        parts.append(
            f'<p class="verdict {"helps" if v["helps"] else "no"}"><b>{html.escape(variant)}: '
            f"{said}.</b> Its best condition, <code>{html.escape(v['best'])}</code>, is "
            f"{delta:+.1f} points of balanced accuracy against the best classical one, "
            f"<code>{html.escape(v['rival'])}</code> (seed {noise_text(v)}).</p>"
        )

    check, epochs, seeds = found.get("convergence"), found.get("epochs", 0), found.get("seeds", 1)
    for line in convergence_warning(check, epochs, seeds):
        parts.append(f'<p class="verdict no"><b>Warning:</b> {html.escape(line)}.</p>')

    def mean(entry: dict[str, Any], key: str) -> float | None:
        return (entry.get(key) or {}).get("mean")

    ranked = sorted(conditions.items(), key=lambda item: -mean(item[1], "balanced_accuracy"))
    rows = [
        [
            f"<code>{html.escape(k)}</code>",
            _pct(mean(e, "balanced_accuracy")),
            _pct(mean(e, "tail_recall")),
        ]
        for k, e in ranked
    ]
    parts.append(_table(["condition", "balanced accuracy %", "tail recall %"], rows))
    parts.append(_figure(reports / "evaluate" / "per_class_recall.png", "recall per class"))
    return "\n".join(parts)


def _synthesized(v: str, m: dict[str, Any], folder: Path) -> str:
    return (
        f"<p><b>{html.escape(v)}</b>: {m.get('synthetic_images', '?')} synthetic images; "
        f"the filter accepted {_pct(m.get('acceptance_rate')) or '-'}% of the samples.</p>\n"
        + _figure(folder / "samples.png", f"{v}: a row per class it topped up")
    )


def _translated(v: str, m: dict[str, Any], folder: Path) -> str:
    acc = m.get("accuracy", {})
    return (
        f"<p><b>{html.escape(v)}</b> ({html.escape(str(m.get('source')))} &rarr; "
        f"{html.escape(str(m.get('target')))}): accuracy on the target's test split, "
        f"source only {_pct(acc.get('source_only'))}%, trained on translations "
        f"{_pct(acc.get('translated'))}%, oracle {_pct(acc.get('oracle'))}%; labels "
        f"preserved {_pct(m.get('label_preservation'))}%.</p>\n"
        + _figure(folder / "grid.png", f"{v}: source, translated")
    )


def _upscaled(v: str, m: dict[str, Any], folder: Path) -> str:
    caption = f"{v}: low resolution, bicubic, {v}, original"
    return f"<p><b>{html.escape(v)}</b></p>\n" + _figure(folder / "side_by_side.png", caption)


def _inpainted(v: str, m: dict[str, Any], folder: Path) -> str:
    split = next(iter(m.get("splits", {}).values()), {})
    quality, accuracy = split.get("quality", {}), split.get("accuracy", {})
    psnr = {k: quality.get(k, {}).get("psnr") for k in (v, "telea")}
    line = (
        f"<p><b>{html.escape(v)}</b>: PSNR in the holes {_number(psnr[v])} dB (OpenCV's "
        f"Telea {_number(psnr['telea'])} dB); the judge's accuracy on filled images "
        f"{_pct(accuracy.get(v))}%, cut-out {_pct(accuracy.get('cut-out'))}%, original "
        f"{_pct(accuracy.get('original'))}%.</p>\n"
    )
    caption = f"{v}: cut-out, Telea, {v}, original"
    return line + _figure(folder / "side_by_side.png", caption)


def _trained(v: str, m: dict[str, Any], folder: Path) -> str:
    caption = f"{v}: {m.get('steps', '?')} steps, {m.get('seconds', '?')} s"
    return _figure(folder / "final.png", caption, width=320)  # nothing without a grid


def _data(metrics: Path, reports: Path) -> str:
    m = _json(metrics / "prepare.json")
    if m is None:
        return ""
    line = (
        f"<p>{m.get('classes')} classes; {m.get('train')} train, {m.get('val')} val and "
        f"{m.get('test')} test images; imbalance ratio {m.get('imbalance_ratio')}.</p>"
    )
    counts = _figure(reports / "prepare" / "class_counts.png", "train images per class")
    return "<h2>The data</h2>" + line + counts


def report_page(reports: Path, metrics: Path) -> str:
    """The page's HTML from the stages' outputs under ``reports`` and ``metrics``."""
    sections = [
        _verdict(metrics, reports),
        _per_variant("Synthesis", "synthesize", metrics, reports, _synthesized),
        _per_variant("Translation", "translate", metrics, reports, _translated),
        _per_variant("Upscaling", "upscale", metrics, reports, _upscaled),
        _per_variant("Inpainting", "inpaint", metrics, reports, _inpainted),
        _per_variant("Training", "train", metrics, reports, _trained),
        _data(metrics, reports),
    ]
    body = "\n".join(part for part in sections if part)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>gan-augment report</title>"
        f"<style>{STYLE}</style><script>{COUNT_IMAGES}</script></head>\n"
        f"<body><h1>gan-augment report</h1>\n{body or '<p>No stage has run yet.</p>'}\n"
        "</body></html>\n"
    )


#: The stage figures, in the page's order: (stage, file in its report folder, one a variant).
FIGURES: tuple[tuple[str, str, bool], ...] = (
    ("evaluate", "per_class_recall.png", False),
    ("synthesize", "samples.png", True),
    ("translate", "grid.png", True),
    ("upscale", "side_by_side.png", True),
    ("inpaint", "side_by_side.png", True),
    ("train", "final.png", True),
    ("prepare", "class_counts.png", False),
    ("domains", "samples.png", False),
)


def stage_figures(reports: Path, metrics: Path) -> dict[str, Path]:
    """Every stage figure present under ``reports``, by a flat file name
    (``<stage>_<file>`` or ``<stage>_<variant>_<file>``), in the page's order. The domains
    stage's picture only when it built domains (not its "skipped" placeholder)."""
    found: dict[str, Path] = {}
    for stage, name, per_variant in FIGURES:
        folder = reports / stage
        if stage == "domains" and "skipped" in (_json(metrics / "domains.json") or {}):
            continue
        if per_variant:
            candidates = [(f"{v.name}_", v / name) for v in _variant_folders(folder)]
        else:
            candidates = [("", folder / name)]
        found.update({f"{stage}_{tag}{name}": p for tag, p in candidates if p.is_file()})
    return found


def write_figures(folder: Path, reports: Path, metrics: Path) -> int:
    """Replace ``folder`` (atomically) by copies of :func:`stage_figures`; their number."""
    figures = stage_figures(reports, metrics)
    with atomic_path(folder, is_dir=True) as tmp:
        for name, path in figures.items():
            shutil.copyfile(path, tmp / name)
    return len(figures)


def write_report_page(path: Path, reports: Path, metrics: Path) -> None:
    """Write :func:`report_page` to ``path``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(report_page(reports, metrics), encoding="utf-8")
