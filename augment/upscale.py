"""Upscaling a labelled dataset and measuring what it is worth.

The ``upscale@<variant>`` stage makes a low-resolution copy of prepared splits with the
documented degradation (:func:`downscale`: anti-aliased bicubic, as the upscalers are
trained), upscales it back with an exported model, and compares the result with nearest
and bicubic interpolation: PSNR/SSIM against the originals and the judge classifier's
accuracy on each (does the classifier see the upscaled images as well as the real ones?).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator
from tqdm import tqdm

from augment.config import StrictModel
from augment.data.images import side_by_side, write_png
from augment.data.manifest import Manifest
from augment.errors import DataError
from augment.io import atomic_path
from augment.metrics.image import psnr, rgb_to_luma, ssim
from augment.runtime import OnnxGenerator, from_uint8, to_uint8
from augment.tiling import check_tiling

Split = Literal["train", "val", "test"]
BASELINES = ("nearest", "bicubic")


class UpscaleConfig(StrictModel):
    """params.yaml ``upscale``."""

    variants: list[str] = Field(default_factory=list, description="upscale@<variant> stages")
    splits: list[Split] = Field(default_factory=lambda: ["test"], min_length=1)
    batch_size: int = Field(64, ge=1)
    tile: int | None = Field(256, ge=1, description="low-resolution tile side; null: no tiles")
    overlap: int = Field(16, ge=0)
    grid: int = Field(8, ge=1, description="images in reports' side_by_side.png")

    @model_validator(mode="after")
    def _check(self) -> UpscaleConfig:
        check_tiling(self.tile, self.overlap)
        return self


def downscale(images: np.ndarray, scale: int) -> np.ndarray:
    """u8 ``N x H x W x C`` -> ``N x H/s x W/s x C``: anti-aliased bicubic downscaling.

    This is the degradation the upscale recipes train with (without blur or noise).
    """
    import torch

    from augment.data.images import to_tensor
    from augment.nn.sr import bicubic_downscale

    _, height, width, _ = images.shape
    if height % scale or width % scale:
        raise DataError(f"images of {height}x{width} are not a multiple of the scale {scale}")
    with torch.no_grad():
        return to_uint8(bicubic_downscale(to_tensor(images), scale).numpy())


def interpolate(images: np.ndarray, scale: int, mode: str) -> np.ndarray:
    """u8 ``N x h x w x C`` enlarged ``scale`` times by ``mode`` (nearest, bicubic)."""
    import torch
    from torch.nn import functional as F

    from augment.data.images import to_tensor

    kwargs = {} if mode == "nearest" else {"align_corners": False}
    with torch.no_grad():
        out = F.interpolate(to_tensor(images), scale_factor=scale, mode=mode, **kwargs)
    return to_uint8(out.clamp(-1, 1).numpy())


def upscale_batches(
    generator: OnnxGenerator,
    images: np.ndarray,
    batch_size: int = 64,
    tile: int | None = 256,
    overlap: int = 16,
    progress: bool = True,
) -> np.ndarray:
    """u8 ``N x h x w x C`` upscaled by ``generator`` (``batch_size`` images per call)."""
    chunks = []
    steps = range(0, len(images), batch_size)
    for start in tqdm(steps, desc="upscaling", unit="batch", disable=None if progress else True):
        batch = from_uint8(images[start : start + batch_size])
        chunks.append(to_uint8(generator.upscale(batch, batch_size, tile, overlap)))
    if not chunks:
        s = generator.info.scale
        n, h, w, c = images.shape
        return np.zeros((n, h * s, w * s, c), np.uint8)
    return np.concatenate(chunks)


def image_quality(output: np.ndarray, target: np.ndarray, shave: int) -> dict[str, float]:
    """Mean PSNR and SSIM of u8 images against ``target``, ``shave`` border pixels removed.

    For colour images also on luma (BT.601), the usual super-resolution convention.
    """
    if shave:
        output = output[:, shave:-shave, shave:-shave]
        target = target[:, shave:-shave, shave:-shave]
    scores = {
        "psnr": float(np.mean(psnr(output, target))),
        "ssim": float(np.mean(ssim(output, target))),
    }
    if output.shape[-1] == 3:
        luma, luma_target = rgb_to_luma(output), rgb_to_luma(target)
        scores["psnr_y"] = float(np.mean(psnr(luma, luma_target)))
        scores["ssim_y"] = float(np.mean(ssim(luma, luma_target)))
    return {k: round(v, 4) for k, v in scores.items()}


@dataclass
class SplitResult:
    """What upscaling one split gave: images, quality and accuracy per method."""

    images: int
    quality: dict[str, dict[str, float]]
    accuracy: dict[str, float]


@dataclass
class UpscaleResult:
    variant: str
    scale: int
    low_resolution: tuple[int, int]
    high_resolution: tuple[int, int]
    splits: dict[str, SplitResult]
    seconds: float

    @property
    def megapixels_per_second(self) -> float:
        pixels = sum(r.images for r in self.splits.values()) * np.prod(self.high_resolution)
        return float(pixels / 1e6 / max(self.seconds, 1e-9))


def upscale_dataset(
    generator: OnnxGenerator,
    manifest: Manifest,
    config: UpscaleConfig,
    out_dir: str | Path,
    load: Any,
    judge: Any = None,
    report_dir: str | Path | None = None,
) -> UpscaleResult:
    """Low-resolution copies of ``config.splits`` upscaled by ``generator`` into ``out_dir``.

    ``out_dir`` (replaced atomically) receives ``lowres/`` and ``upscaled/`` PNGs under the
    prepared relative paths and ``manifest.csv`` listing the upscaled images: real images
    (their content is real) whose ``variant`` and ``model_sha256`` name the upscaler.
    ``load(manifest) -> (u8 images, labels)`` decodes a manifest's images; ``judge`` (a
    classifier) scores originals, baselines and upscaled images alike.
    """
    from augment.classifier import judge_accuracies

    scale = generator.info.scale
    rows: list[dict[str, str]] = []
    results: dict[str, SplitResult] = {}
    seconds = 0.0
    figure: np.ndarray | None = None
    shapes: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0))
    out_dir = Path(out_dir)
    with atomic_path(out_dir, is_dir=True) as tmp:
        for split in config.splits:
            part = manifest.subset(split=split, source="real")
            if len(part) == 0:
                raise DataError(f"{manifest.origin or 'manifest'}: no real images in {split!r}")
            original, labels = load(part)
            lowres = downscale(original, scale)
            started = time.perf_counter()
            upscaled = upscale_batches(
                generator, lowres, config.batch_size, config.tile, config.overlap
            )
            seconds += time.perf_counter() - started
            outputs = {mode: interpolate(lowres, scale, mode) for mode in BASELINES}
            outputs[generator.info.variant] = upscaled
            results[split] = SplitResult(
                images=len(original),
                quality={m: image_quality(o, original, scale) for m, o in outputs.items()},
                accuracy=judge_accuracies(judge, {"original": original, **outputs}, labels),
            )
            shapes = (lowres.shape[1:3], original.shape[1:3])
            if figure is None:
                names = [manifest.classes[k] for k in labels]
                figure = side_by_side([*outputs.values(), original], config.grid, names)
            rows += _write_split(tmp, part, lowres, upscaled, generator)
        Manifest.from_rows(rows, tmp).write(tmp / "manifest.csv")
    if report_dir is not None and figure is not None:
        write_png(Path(report_dir) / "side_by_side.png", figure)
    return UpscaleResult(
        generator.info.variant, scale, shapes[0], shapes[1], results, round(seconds, 3)
    )


def _write_split(
    root: Path, part: Manifest, lowres: np.ndarray, upscaled: np.ndarray, generator: OnnxGenerator
) -> list[dict[str, str]]:
    """PNG files of one split under lowres/ and upscaled/; the manifest rows of the latter."""
    rows = []
    frame = part.frame
    for i, path in enumerate(tqdm(frame["path"], desc="writing", unit="img", disable=None)):
        # the source's relative path (absolute ones: <split>/<row>.png), as a PNG
        name = Path(f"{frame.at[i, 'split']}/{i:06d}" if Path(path).is_absolute() else path)
        name = name.with_suffix(".png")
        for folder, image in (("lowres", lowres[i]), ("upscaled", upscaled[i])):
            (root / folder / name).parent.mkdir(parents=True, exist_ok=True)
            write_png(root / folder / name, image, atomic=False)
        rows.append(
            {
                "path": (Path("upscaled") / name).as_posix(),
                "label": frame.at[i, "label"],
                "split": frame.at[i, "split"],
                "domain": frame.at[i, "domain"],
                "source": "real",
                "variant": generator.info.variant,
                "model_sha256": generator.sha256,
            }
        )
    return rows


def report_markdown(result: UpscaleResult) -> str:
    """reports/upscale/<variant>/report.md: quality and accuracy per split and method."""
    (h, w), (H, W) = result.low_resolution, result.high_resolution
    lines = [
        f"# Upscaling with {result.variant} (x{result.scale}: {h}x{w} -> {H}x{W})",
        "",
        "Low-resolution copies made by anti-aliased bicubic downscaling (the degradation "
        "the upscalers train with), upscaled back and compared with the originals. "
        "Accuracy: the judge classifier on each version.",
        "",
        f"Columns: low resolution (nearest) | bicubic | {result.variant} | original",
        "",
        "![side by side](side_by_side.png)",
    ]
    for split, part in result.splits.items():
        keys = list(next(iter(part.quality.values())))
        header = ["method", *keys] + (["judge accuracy"] if part.accuracy else [])
        lines += ["", f"## {split} ({part.images} images)", "", "| " + " | ".join(header) + " |"]
        lines.append("|" + "---|" * len(header))
        if part.accuracy:
            blank = [""] * len(keys)
            lines.append(f"| original | {' | '.join(blank)} | {part.accuracy['original']:.2%} |")
        for method, scores in part.quality.items():
            cells = [f"{scores[k]:.4f}" if "ssim" in k else f"{scores[k]:.2f}" for k in keys]
            if part.accuracy:
                cells.append(f"{part.accuracy[method]:.2%}")
            lines.append(f"| {method} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"
