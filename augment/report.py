"""The evaluate stage's human-readable report: Markdown tables, a recall plot, CSV files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from augment.io import atomic_path


def _pct(value: float | None, std: float | None = None) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f}" if not std else f"{100 * value:.1f} ± {100 * std:.1f}"


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def recall_frame(summary: dict[str, dict[str, Any]], classes: Sequence[str]) -> pd.DataFrame:
    """Mean per-class recall: one row per class, one column per condition."""
    data = {key: [e["per_class_recall"][c] for c in classes] for key, e in summary.items()}
    return pd.DataFrame(data, index=pd.Index(list(classes), name="class"), dtype=float)


#: fewer test images than this and a class's recall moves by 5 points or more per image
FEW_TEST_IMAGES = 20


def split_warnings(classes: Sequence[str], test_counts: Sequence[int]) -> list[str]:
    """One line per problem of the test split: classes without test images, or with too
    few for their recall to mean much (:data:`FEW_TEST_IMAGES`)."""
    pairs = list(zip(classes, test_counts, strict=True))
    none = [str(c) for c, n in pairs if n == 0]
    few = [f"{c} ({n})" for c, n in pairs if 0 < n < FEW_TEST_IMAGES]
    lines = []
    if none:
        lines.append(f"no test images for {', '.join(none)}: their recall is not measured")
    if few:
        lines.append(
            f"fewer than {FEW_TEST_IMAGES} test images for {', '.join(few)}: one image moves "
            "their recall by 5 points or more"
        )
    return lines


def convergence_text(check: dict[str, Any] | None) -> str:
    """The protocol's convergence check in a sentence ("" when none ran)."""
    if not check:
        return ""
    said = "converged" if check["converged"] else "**not converged**"
    return (
        f"Convergence: twice the steps ({2 * check['steps']}) moved the best classical "
        f"condition, {check['condition']}, by {100 * check['moved']:+.2f} points: {said} "
        f"(converged: less than {100 * check['threshold']:.1f})."
    )


def convergence_warning(check: dict[str, Any] | None, epochs: float, seeds: int) -> list[str]:
    """A line when twice the steps moved the best classical condition by the threshold or
    more (none when it did not, or when no check ran): up, the classifier is not converged
    (raise ``evaluate.epochs``); down, more training scored lower (noise, or over-fitting)."""
    if not check or check["converged"]:
        return []
    moved = (
        f"twice the steps ({2 * check['steps']}) moved {check['condition']} by "
        f"{100 * check['moved']:+.2f} points"
    )
    if check["moved"] > 0:
        line = (
            f"the downstream classifier is not converged: {moved}; raise evaluate.epochs "
            f"(now {epochs:g}: {check['steps']} steps) until it moves less than "
            f"{100 * check['threshold']:.1f}"
        )
    else:
        line = (
            f"{moved}: more training scored lower, so these figures are noisy or "
            "over-fitted at this size"
        )
    if seeds < 2:
        line += " (one run each: part of the move may be seed noise; evaluate.seeds 3 tells)"
    return [line]


def plot_recall(
    frame: pd.DataFrame,
    train_counts: Sequence[int],
    path: str | os.PathLike[str],
    test_counts: Sequence[int] | None = None,
) -> None:
    """Per-class test recall of every condition, classes ordered head to tail; each tick
    gives the class's train (and test) image counts."""
    from matplotlib.figure import Figure

    order = np.argsort(-np.asarray(train_counts), kind="stable")
    tests = list(test_counts) if test_counts is not None else None
    names = [
        f"{frame.index[i]}\n({train_counts[i]}" + (f" / {tests[i]})" if tests else ")")
        for i in order
    ]
    figure = Figure(figsize=(max(7.0, 0.75 * len(names) + 3), 4.8), dpi=100)
    axes = figure.add_subplot()
    x = np.arange(len(names))
    for column in frame.columns:
        style = "--" if column in ("full", "baseline") else "-"
        axes.plot(x, frame[column].to_numpy()[order], style, marker="o", ms=4, label=column)
    axes.set_xticks(x, names, fontsize=8)
    axes.set_xlabel(
        "class (real train / test images), head to tail"
        if tests
        else "class (real train images), head to tail"
    )
    axes.set_ylabel("test recall")
    axes.set_ylim(0, 1.02)
    axes.grid(alpha=0.3)
    balanced = tests is not None and len(set(tests)) == 1
    axes.set_title(f"Per-class recall on the {'balanced ' if balanced else ''}test split")
    axes.legend(fontsize=8, loc="lower left", ncol=2)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", metadata={"Software": None})


def downstream_table(summary: dict[str, dict[str, Any]]) -> str:
    header = [
        "condition",
        "kind",
        "train images",
        "balanced acc. %",
        "tail recall %",
        "macro-F1 %",
        "G-mean %",
        "gap closed",
    ]
    rows = []
    for key, e in summary.items():
        kind = "classical" if e.get("classical") else ("GAN" if e["variant"] else "ceiling")
        if str(e.get("condition", "")).endswith("-2x"):
            kind = "convergence check"
        tail = e.get("tail_recall", {})
        rows.append(
            [
                f"`{key}`",
                kind,
                str(e["train_images"]),
                _pct(e["balanced_accuracy"]["mean"], e["balanced_accuracy"]["std"]),
                _pct(tail.get("mean"), tail.get("std")),
                _pct(e["macro_f1"]["mean"], e["macro_f1"]["std"]),
                _pct(e["gmean"]["mean"], e["gmean"]["std"]),
                "–" if e["gap_closed"] is None else f"{100 * e['gap_closed']:.0f}%",
            ]
        )
    return _table(header, rows)


QUALITY_COLUMNS = (
    ("fd", "FD", 2),
    ("fd_floor", "FD floor", 2),
    ("fd_blurred", "FD blurred", 2),
    ("fd_over_floor", "FD / floor", 2),
    ("precision", "precision", 3),
    ("recall", "recall", 3),
    ("diversity_ratio", "diversity / real", 2),
    ("nn_ratio", "NN dist. / test's", 2),
    ("copy_fraction", "copy fraction", 3),
)


def quality_table(rows: dict[str, dict[str, Any]], first: str) -> str:
    header = [first, *(title for _, title, _ in QUALITY_COLUMNS)]
    body = [
        [f"`{name}`", *(_num(values.get(key), digits) for key, _, digits in QUALITY_COLUMNS)]
        for name, values in rows.items()
    ]
    return _table(header, body)


def noise_text(verdict: dict[str, Any]) -> str:
    """A verdict's seed noise in words, for logs and reports: 'noise 0.4' (points of
    balanced accuracy), or 'one run: no noise estimate'."""
    noise = verdict["noise"]
    return "one run: no noise estimate" if noise is None else f"noise {100 * noise:.1f}"


def verdict_lines(verdicts: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for variant, v in verdicts.items():
        noise = noise_text(v)
        tail = v.get("tail_delta")
        tail_text = "" if tail is None else f"; rarest classes' recall {100 * tail:+.1f} points"
        versus = (
            f"Its best condition `{v['best']}` vs the best classical one `{v['rival']}`: "
            f"{100 * v['delta']:+.1f} points of balanced accuracy ({noise}){tail_text}."
        )
        if v["helps"]:
            lines.append(f"- **{variant}: synthetic data helps.** {versus}")
        else:
            lines.append(
                f"- **{variant}: synthetic data does not beat the best classical fix.** {versus}"
            )
    return lines


def _model_text(model: dict[str, Any] | None) -> str:
    if not model:
        return "the downstream CNN"
    extras = [name for name in ("augment", "flip") if model.get(name)]
    shown = {"augment": "random shifts", "flip": "flips"}
    return f"3-block CNN, width {model['width']}, batch {model['batch_size']}, lr {model['lr']}" + (
        ", " + " and ".join(shown[e] for e in extras) if extras else ""
    )


def evaluate_warnings(classes: Sequence[str], context: dict[str, Any]) -> list[str]:
    """What a reader of the evaluate stage's figures must know: a test split too small to
    measure some classes, a downstream classifier that is not converged."""
    test_counts = context.get("test_counts") or []
    return [
        *(split_warnings(classes, test_counts) if test_counts else []),
        *convergence_warning(
            context.get("convergence"), context.get("epochs", 0), context.get("seeds", 1)
        ),
    ]


def write_report(
    folder: Path,
    *,
    summary: dict[str, dict[str, Any]],
    quality: dict[str, dict[str, Any]],
    verdicts: dict[str, dict[str, Any]],
    classes: Sequence[str],
    train_counts: Sequence[int],
    context: dict[str, Any],
    images: dict[str, str],
) -> None:
    """report.md, per_class_recall.{png,csv} and quality_per_class.csv into ``folder``.

    ``context`` holds the run's facts (steps, seeds, test images); ``images`` maps a
    caption to a path relative to ``folder`` (sample grids of earlier stages).
    """
    frame = recall_frame(summary, classes)
    test_counts = context.get("test_counts") or []
    frame.to_csv(folder / "per_class_recall.csv", lineterminator="\n", float_format="%.6f")
    plot_recall(frame, train_counts, folder / "per_class_recall.png", test_counts or None)
    rows = [
        {"variant": variant, "class": name, **values}
        for variant, q in quality.items()
        for name, values in q["classes"].items()
    ]
    pd.DataFrame(rows).to_csv(
        folder / "quality_per_class.csv", index=False, lineterminator="\n", float_format="%.6f"
    )

    balanced = len(set(test_counts)) <= 1
    test_text = f"{context['test_images']} {'balanced ' if balanced else ''}real test images" + (
        "" if balanced else f" (per class {min(test_counts)} to {max(test_counts)})"
    )
    parts = [
        "# Does synthetic data help?",
        "",
        *(verdict_lines(verdicts) or ["- No GAN condition ran."]),
        "",
        "## Protocol",
        "",
        f"Every condition trains the same classifier ({_model_text(context.get('model'))}) "
        f"for the same {context['steps']} optimizer steps (AdamW, one-cycle schedule: "
        "warm-up then cosine decay), and is scored after its **last** step, never at a "
        f"best step, on {test_text}. {context['seeds']} run(s) per condition, run *r* of "
        "each starting from the same seed; mean ± std over runs. *Tail recall*: mean recall "
        f"of the {len(context.get('tail_classes', []))} rarest train classes "
        f"({', '.join(map(str, context.get('tail_classes', [])))}). *Gap closed*: the "
        "fraction of the baseline-to-full gap in balanced accuracy. The verdict compares "
        "each variant's best GAN condition with the best classical condition and counts it "
        "a help only beyond their combined seed noise (std). "
        + convergence_text(context.get("convergence")),
        "",
        *(f"> **Warning:** {line}." for line in evaluate_warnings(classes, context)),
        "",
        "## Downstream classifier",
        "",
        downstream_table(summary),
        "",
        "![per-class recall](per_class_recall.png)",
        "",
    ]
    if quality:
        parts += [
            "## GAN quality",
            "",
            "Fréchet distance (FD) in the penultimate features of our own classifier "
            "(not Inception FID), against the test split; the *floor* is real train vs "
            "test, *blurred* a Gaussian-blurred train set. Class mixes are re-weighted to "
            "the test split's. Diversity: 1 - mean MS-SSIM of same-class pairs, relative "
            "to the real train images. NN distance: median pixel distance of a synthetic "
            "image to its nearest train image over that of a test image (< 1: closer to "
            "the train set than fresh real data; copy fraction: share closer than 95% of "
            "test images, about 0.05 without memorization).",
            "",
            quality_table({v: q["overall"] for v, q in quality.items()}, "variant"),
            "",
        ]
        for variant, q in quality.items():
            parts += [f"### {variant}, per class", "", quality_table(q["classes"], "class"), ""]
    if images:
        parts += ["## Samples", ""]
        for caption, path in images.items():
            parts += [f"**{caption}**", "", f"![{caption}]({path})", ""]
    (folder / "report.md").write_text("\n".join(parts))
