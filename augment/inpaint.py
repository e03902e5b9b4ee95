"""Filling holes in a labelled dataset and measuring what it is worth.

The ``inpaint@<variant>`` stage cuts one seeded rectangular hole into every image of the
prepared splits, fills it three ways and compares them inside the hole:

* ``cut-out``: the hole left black (what ``A.CoarseDropout`` does by default);
* ``telea``: OpenCV's fast-marching inpainting (Telea, 2004; ``A.CoarseDropout``'s
  ``fill="inpaint_telea"``), the classical baseline;
* the model (``OnnxGenerator.inpaint``).

Quality: PSNR over the hole's pixels and SSIM over the hole's box (at least 7x7 pixels),
against the original.
Use: the judge classifier's accuracy on the original, cut-out, Telea-filled and
model-filled images (does a filled image keep its class better than a cut-out one?).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator
from tqdm import tqdm

from augment.config import StrictModel
from augment.data.images import side_by_side
from augment.data.manifest import Manifest
from augment.errors import DataError
from augment.metrics.image import psnr, ssim
from augment.runtime import OnnxGenerator, from_uint8, to_uint8
from augment.seeding import derive_seed

Split = Literal["train", "val", "test"]
BASELINES = ("cut-out", "telea")
#: PSNR of a hole filled without error (an infinite ratio, capped so means stay finite).
PSNR_CAP = 100.0
#: The smallest box SSIM is taken over (a hole's box is grown to it where smaller).
SSIM_SIDE = 7


class InpaintConfig(StrictModel):
    """params.yaml ``inpaint``."""

    variants: list[str] = Field(default_factory=list, description="inpaint@<variant> stages")
    splits: list[Split] = Field(default_factory=lambda: ["test"], min_length=1)
    hole_range: tuple[float, float] = Field(
        (0.25, 0.5), description="hole side / image side, drawn uniformly in this range"
    )
    batch_size: int = Field(64, ge=1)
    grid: int = Field(8, ge=1, description="rows of reports' side_by_side.png")

    @model_validator(mode="after")
    def _check(self) -> InpaintConfig:
        low, high = self.hole_range
        if not 0 < low <= high < 1:
            raise ValueError(f"hole_range {[low, high]} must satisfy 0 < low <= high < 1")
        return self


def seeded_holes(
    count: int, height: int, width: int, hole_range: tuple[float, float], seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """One rectangle per image, drawn as the recipe draws its training holes
    (:func:`augment.tasks.inpaint.random_holes`) from ``seed``: (bool[N,H,W] masks, True
    in the hole; i64[N,4] boxes as (top, left, bottom, right))."""
    import torch

    from augment.tasks.inpaint import random_holes

    generator = torch.Generator().manual_seed(seed)
    masks, boxes = random_holes(count, height, width, 1, hole_range, generator)
    return masks[:, 0].numpy() > 0, boxes.numpy()


def telea(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """u8[N,H,W,C] with the holes of ``masks`` (bool[N,H,W]) filled by OpenCV's Telea
    method (radius 3), image by image."""
    import cv2

    out = np.empty_like(images)
    for k in range(len(images)):
        filled = cv2.inpaint(images[k], masks[k].astype(np.uint8), 3, cv2.INPAINT_TELEA)
        out[k] = filled.reshape(images.shape[1:])
    return out


def grown(box: np.ndarray, side: int, height: int, width: int) -> tuple[slice, slice]:
    """The rows and columns of ``box`` (top, left, bottom, right) grown about its centre to
    at least ``side`` pixels a side, shifted inside the image (as far as it is that big)."""
    spans = []
    for start, stop, size in ((box[0], box[2], height), (box[1], box[3], width)):
        length = min(max(stop - start, side), size)
        first = min(max((start + stop - length) // 2, 0), size - length)
        spans.append(slice(int(first), int(first + length)))
    return spans[0], spans[1]


def hole_quality(output: np.ndarray, target: np.ndarray, boxes: np.ndarray) -> dict[str, float]:
    """Mean over images of the PSNR of the hole's pixels (capped at :data:`PSNR_CAP`) and
    of the SSIM of the hole's box (grown to :data:`SSIM_SIDE` pixels a side where it is
    smaller: SSIM needs a window), u8[N,H,W,C] against ``target``."""
    psnrs, ssims = [], []
    height, width = target.shape[1:3]
    for k, (top, left, bottom, right) in enumerate(boxes):
        hole = (k, slice(top, bottom), slice(left, right))
        psnrs.append(min(PSNR_CAP, psnr(output[hole], target[hole])))  # inf: no error
        rows, cols = grown(boxes[k], SSIM_SIDE, height, width)
        ssims.append(float(ssim(output[k, rows, cols], target[k, rows, cols])))
    return {"psnr": round(float(np.mean(psnrs)), 4), "ssim": round(float(np.mean(ssims)), 4)}


@dataclass
class SplitResult:
    """What filling one split's holes gave: images, quality and judge accuracy per method."""

    images: int
    hole_fraction: float  # mean share of an image's pixels in its hole
    quality: dict[str, dict[str, float]]
    accuracy: dict[str, float]


@dataclass
class InpaintResult:
    variant: str
    image_size: tuple[int, int]
    hole_range: tuple[float, float]
    splits: dict[str, SplitResult]
    seconds: float  # the model's time, all splits


def inpaint_dataset(
    generator: OnnxGenerator,
    manifest: Manifest,
    config: InpaintConfig,
    load: Any,
    judge: Any = None,
    seed: int = 0,
) -> tuple[InpaintResult, np.ndarray]:
    """Holes cut into ``config.splits`` and filled by the baselines and ``generator``:
    the result and a side-by-side figure (cut-out | Telea | model | original rows).

    ``load(manifest) -> (u8 images, labels)`` decodes a manifest's images; ``judge`` (a
    classifier and its classes) scores every version; the holes of a split come from
    ``seed`` and the split's name (the same holes for every variant)."""
    from augment.classifier import judge_accuracies

    results: dict[str, SplitResult] = {}
    seconds, figure, size = 0.0, None, (0, 0)
    for split in config.splits:
        part = manifest.subset(split=split, source="real")
        if len(part) == 0:
            raise DataError(f"{manifest.origin or 'manifest'}: no real images in {split!r}")
        original, labels = load(part)
        n, h, w, _ = original.shape
        seeded = derive_seed(seed, "inpaint", split)
        masks, boxes = seeded_holes(n, h, w, config.hole_range, seeded)
        cut = np.where(masks[..., None], np.uint8(0), original)
        started = time.perf_counter()
        filled = fill_holes(generator, original, masks, config.batch_size)
        seconds += time.perf_counter() - started
        outputs = {"cut-out": cut, "telea": telea(cut, masks), generator.info.variant: filled}
        results[split] = SplitResult(
            images=n,
            hole_fraction=round(float(masks.mean()), 4),
            quality={m: hole_quality(o, original, boxes) for m, o in outputs.items()},
            accuracy=judge_accuracies(judge, {"original": original, **outputs}, labels),
        )
        if figure is None:
            names = [manifest.classes[k] for k in labels]
            figure = side_by_side([*outputs.values(), original], config.grid, names)
            size = (h, w)
    assert figure is not None  # config.splits has at least one split
    result = InpaintResult(
        generator.info.variant, size, config.hole_range, results, round(seconds, 3)
    )
    return result, figure


def fill_holes(
    generator: OnnxGenerator, images: np.ndarray, masks: np.ndarray, batch_size: int
) -> np.ndarray:
    """u8 images with their holes filled by ``generator``, batch by batch (a progress bar)."""
    out = np.empty_like(images)
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc="inpainting", unit="batch", disable=None):
        stop = start + batch_size
        filled = generator.inpaint(from_uint8(images[start:stop]), masks[start:stop], batch_size)
        out[start:stop] = to_uint8(filled)
    return out


def report_markdown(result: InpaintResult) -> str:
    """reports/inpaint/<variant>/report.md: quality in the holes and judge accuracy."""
    low, high = result.hole_range
    h, w = result.image_size
    lines = [
        f"# Inpainting with {result.variant} ({h}x{w} images)",
        "",
        f"One rectangular hole per image, each side {low:.0%}-{high:.0%} of the image's "
        "(seeded: the same holes for every variant), filled three ways. PSNR over the "
        "hole's pixels, SSIM over the hole's box, against the original; accuracy: the "
        "judge classifier on each version.",
        "",
        f"Columns: cut-out (black) | Telea (OpenCV) | {result.variant} | original",
        "",
        "![side by side](side_by_side.png)",
    ]
    for split, part in result.splits.items():
        header = ["method", "PSNR in hole (dB)", "SSIM in hole"]
        header += ["judge accuracy"] if part.accuracy else []
        lines += [
            "",
            f"## {split} ({part.images} images, {part.hole_fraction:.0%} of each in its hole)",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        if part.accuracy:
            lines.append(f"| original | | | {part.accuracy['original']:.2%} |")
        for method, scores in part.quality.items():
            cells = [f"{scores['psnr']:.2f}", f"{scores['ssim']:.4f}"]
            cells += [f"{part.accuracy[method]:.2%}"] if part.accuracy else []
            lines.append(f"| {method} | {' | '.join(cells)} |")
        if part.accuracy:
            model = part.accuracy[result.variant]
            best = max(part.accuracy[b] for b in BASELINES)
            verdict = "keeps more" if model > best else "does not keep more"
            lines += [
                "",
                f"The judge on {result.variant}'s fills: {model:.2%}, against {best:.2%} for "
                f"the better baseline: filling the holes with {result.variant} {verdict} of "
                "the class than the classical fixes.",
            ]
    return "\n".join(lines) + "\n"
