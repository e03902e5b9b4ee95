"""Exported synthesizers side by side: their samples, and where their power spectrum departs
from the real images'.

A lattice over flat regions is hard to see in a sample grid at its own size and easy to see
in the spectrum (Durall et al., 2020). For each ``--model LABEL=PATH.onnx`` this draws
``--per-class`` unfiltered samples of every class, compares their mean power spectrum with
the real images' of ``--real`` (a folder of class sub-folders, its ``train/`` when it has
one: the folder source's layout) by :func:`augment.metrics.spectral_excess`, and draws one
row a model: two samples of each class, enlarged 2x, beside the map of
``log10(P_samples / P_real)`` (zero frequency in the middle; white where the power is the
real images', red where it exceeds it, blue where it falls short; full colour at 10x).

    python benchmarks/spectra.py --real /tmp/colour/photos-64-images \\
      --model 5000-steps=/tmp/colour-ctl/photos-64/models/onnx/biggan.onnx \\
      --model spectral-1.0=/tmp/colour-spec/photos-64/models/onnx/biggan.onnx \\
      --out benchmarks/results/colour_photos_spectra

writes ``<out>.json``, ``<out>.md`` and ``<out>.png``. ``--smoke`` makes its own inputs (a
few random real images, an untrained biggan exported to ONNX) and checks the path runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _results import parse_args, write_results
from PIL import Image, ImageDraw

from augment.data.images import image_grid, label_font, write_png
from augment.data.sources.configs import FolderSource
from augment.data.sources.files import load_folder
from augment.errors import DataError
from augment.metrics.spectrum import ratio_excess, spectrum_ratio
from augment.runtime import OnnxGenerator, to_uint8


def real_images(root: Path, size: int, channels: int) -> np.ndarray:
    """Every image under ``root``'s class folders (their ``train/`` split when ``root`` is
    split into folders: the folder source's layout, :func:`load_folder`), u8[N,S,S,C]."""
    loaded = load_folder(FolderSource(root=str(root), channels=channels))
    images = loaded.images if loaded.split is None else loaded.images[loaded.split == "train"]
    if images.shape[1:3] != (size, size):
        raise DataError(
            f"{root}: {images.shape[2]}x{images.shape[1]} images, the models make {size}px"
        )
    return images


def ratio_map(ratio: np.ndarray, zoom: int) -> np.ndarray:
    """u8[S*zoom, S*zoom, 3]: a :func:`spectrum_ratio` ``P_samples / P_real`` as colour on a
    log10 scale, white at 1, full red at 10x the real power, full blue at a tenth."""
    t = np.clip(np.log10(ratio), -1.0, 1.0)[..., None]
    white, red, blue = np.ones(3), np.array([0.85, 0.1, 0.1]), np.array([0.1, 0.25, 0.85])
    colour = np.where(t > 0, white + t * (red - white), white - t * (blue - white))
    tile = (colour * 255).round().astype(np.uint8)
    return tile.repeat(zoom, axis=0).repeat(zoom, axis=1)


def figure(rows: list[tuple[str, np.ndarray, np.ndarray]], classes: list[str]) -> np.ndarray:
    """One row a model: its label, samples of each class (2x; ``len(classes)`` a line) and
    its ratio map."""
    pad, zoom = 4, 2
    lines = []
    for label, tiles, spectrum in rows:
        enlarged = tiles.repeat(zoom, 1).repeat(zoom, 2)
        samples = image_grid(enlarged, nrow=len(classes), pad=pad)
        height = max(samples.shape[0], spectrum.shape[0] + 2 * pad)
        line = np.zeros((height, 0, 3), np.uint8)
        for part in (samples, np.pad(spectrum, [(pad, pad), (pad, pad), (0, 0)])):
            part = np.pad(part, [(0, height - part.shape[0]), (0, 0), (0, 0)])
            line = np.concatenate([line, part], axis=1)
        lines.append((label, line))
    header = "classes: " + ", ".join(classes) + "   |   right: log10 spectrum ratio (red > real)"
    font = label_font(header)
    width = max(max(line.shape[1] for _, line in lines) + 160, int(font.getlength(header)) + 8)
    canvas = Image.new("RGB", (width, sum(line.shape[0] for _, line in lines) + 24))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 4), header, fill=(220, 220, 220), font=font)
    top = 24
    for label, line in lines:
        draw.text((4, top + 8), label, fill=(255, 255, 255), font=label_font(label))
        canvas.paste(Image.fromarray(line), (160, top))
        top += line.shape[0]
    return np.asarray(canvas)


def smoke_inputs(folder: Path) -> list[str]:
    """A few random 16-px colour images in two class folders and an untrained biggan."""
    from augment.export import export_onnx
    from augment.registry import Registry
    from augment.variant import DataSpec

    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        for i in range(4):
            write_png(
                folder / "real" / name / f"{i}.png", rng.integers(0, 256, (16, 16, 3), np.uint8)
            )
    spec = DataSpec(image_size=16, channels=3, classes=("a", "b"))
    variant = Registry.from_plugins().create("biggan", {"width": 8}, spec, seed=0)
    export_onnx(variant, variant.generator.eval(), folder / "untrained.onnx")
    return [f"untrained={folder / 'untrained.onnx'}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", type=Path, help="folder of class sub-folders (its train/)")
    parser.add_argument("--model", action="append", default=[], help="LABEL=PATH.onnx")
    parser.add_argument("--per-class", type=int, default=200, help="samples of each class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/spectra"))
    args = parse_args(parser, {"per_class": 4})
    started = time.time()
    if args.smoke:
        args.model = smoke_inputs(args.out.parent)
        args.real = args.out.parent / "real"
    if not args.model or args.real is None:
        sys.exit("spectra.py: give --real and at least one --model LABEL=PATH.onnx")
    models = {}
    for item in args.model:
        label, _, path = item.partition("=")
        if not path:
            sys.exit(f"spectra.py: --model {item!r}: expected LABEL=PATH.onnx")
        models[label] = OnnxGenerator(path, task="synthesize")
    first = next(iter(models.values())).info
    real = real_images(args.real, first.image_size, first.channels)
    results: dict[str, Any] = {}
    rows = []
    for label, model in models.items():
        classes = list(model.info.classes)
        labels = np.repeat(np.arange(len(classes)), args.per_class)
        samples = to_uint8(model.generate(labels, args.seed))
        ratio = spectrum_ratio(samples, real)
        results[label] = {"path": str(model.path)} | ratio_excess(ratio)
        shown = min(2, args.per_class)  # the first two samples of each class, in two rows
        tiles = np.concatenate([samples[i :: args.per_class] for i in range(shown)])
        rows.append((label, tiles, ratio_map(ratio, zoom=4)))
    picture = args.out.with_suffix(".png")
    picture.parent.mkdir(parents=True, exist_ok=True)
    write_png(picture, figure(rows, list(first.classes)))
    lines = [
        "# Power spectra of exported synthesizers against the real images",
        "",
        f"{args.per_class} samples a class, {len(real)} real images from `{args.real}`; "
        f"picture: [{picture.name}]({picture.name}).",
        "",
        "| model | largest excess | at (fy, fx) cycles/px | low | mid | high | corner |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, found in results.items():
        bands = found["bands"]
        fy, fx = found["peak_frequency"]
        lines.append(
            f"| {label} | x{found['peak_ratio']:.1f} | ({fy:.3f}, {fx:.3f}) | "
            + " | ".join(
                f"x{bands[b]:.2f}" if b in bands else "-" for b in ("low", "mid", "high", "corner")
            )
            + " |"
        )
    report = {"args": {k: str(v) for k, v in vars(args).items()}, "models": results}
    report["seconds"] = round(time.time() - started, 1)
    write_results(args.out, report, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
