"""The GPU path, checked on the first GPU at hand, with CPU-vs-GPU figures side by side.

Run by ``benchmarks/gpu_check.sh`` (which first runs the conformance kit: on a GPU machine
its ``device: auto`` trains every variant on CUDA). Parts, each measured in this process
on this machine, so the ratios hold:

* ``environment``: torch and its CUDA, the GPUs, onnxruntime's providers.
* ``train``: the default variant (sngan, 28x28, 10 classes, global batch 64) for
  ``--steps`` steps through the one training loop: CPU fp32, CUDA fp32, CUDA bf16
  autocast; steps/s from the loop's own timer, and the losses finite.
* ``nccl``: the same training under ``torchrun --nproc_per_node=<GPUs>`` on NCCL (needs
  two GPUs: NCCL refuses two ranks on one device); the replicas' weights compared.
* ``generate``: an exported sngan through onnxruntime on the CPU provider and on the CUDA
  provider (the one ``augment generate --device cuda`` and ``GANSynthesize(device="cuda")``
  open), images/s at batch 256, the images of both compared, and ``GANSynthesize`` in an
  ``A.Compose`` on each device.

Without CUDA every GPU row says why it was skipped and the CPU rows are still measured,
so the script runs anywhere (``make test`` runs it with ``--smoke``).

    bash benchmarks/gpu_check.sh                          # on a GPU machine, ~8 minutes
    python benchmarks/gpu_check.py --steps 300            # this script alone
    python benchmarks/gpu_check.py --smoke --out /tmp/gpu  # a tiny run: does it work?

Writes ``benchmarks/results/gpu.json`` and ``.md`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np
import torch
from _results import parse_args, write_results

from augment.data.batches import TrainingData
from augment.export import export_onnx
from augment.registry import Registry
from augment.runtime import OnnxGenerator
from augment.testing import outputs, random_digits
from augment.train import TrainConfig, fit
from augment.transforms import GANSynthesize
from augment.variant import DataSpec

ROOT = Path(__file__).resolve().parents[1]
VARIANT = "sngan"
SPEC = DataSpec(28, 1, tuple(str(i) for i in range(10)))
SMOKE = {"steps": 3, "images": 512}
NO_CUDA = "skipped: torch sees no CUDA device"


def environment() -> dict[str, Any]:
    import onnxruntime as ort

    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if cuda
        else [],
        "bf16_supported": bool(cuda and torch.cuda.is_bf16_supported()),
        "onnxruntime": ort.__version__,
        "onnxruntime_providers": ort.get_available_providers(),
        "cpu_threads": torch.get_num_threads(),
    }


def train_once(device: str, precision: str, steps: int, workdir: Path) -> dict[str, Any]:
    """``steps`` steps of sngan on random digits: steps/s and whether the losses are finite."""
    images, labels = random_digits(n=640)
    data = TrainingData(images, labels)
    variant = Registry.from_plugins().create(VARIANT, {}, SPEC, seed=0)
    config = TrainConfig(
        steps=steps,
        batch_size=64,
        device=device,
        precision=precision,
        checkpoint_every=steps,
        sample_every=steps,
        log_every=1,
        collapse_warning=0.0,  # random weights at a few steps: no collapse worth a warning
    )
    result = fit(variant, data, config, outputs(workdir), seed=0, progress=False)
    return {
        "device": device,
        "precision": precision,
        "steps": result.steps,
        "steps_per_s": round(result.steps / result.seconds, 2),
        "losses_finite": all(math.isfinite(v) for v in result.final_losses.values()),
    }


def bench_train(steps: int, workdir: Path) -> list[dict[str, Any]]:
    rows = [train_once("cpu", "fp32", steps, workdir / "cpu")]
    for precision in ("fp32", "bf16"):
        if not torch.cuda.is_available():
            rows.append({"device": "cuda", "precision": precision, "status": NO_CUDA})
            continue
        rows.append(train_once("cuda", precision, steps, workdir / f"cuda-{precision}"))
    return rows


def bench_nccl(steps: int, workdir: Path) -> dict[str, Any]:
    """This script's ``--nccl-worker`` under torchrun, one process per GPU."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus < 2:
        reason = NO_CUDA if gpus == 0 else "skipped: one GPU (NCCL needs a rank per GPU)"
        return {"status": reason, "gpus": gpus}
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--standalone"),
        f"--nproc_per_node={gpus}",
        str(Path(__file__).resolve()),
        *("--nccl-worker", "--steps", str(steps), "--workdir", str(workdir)),
    ]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        return {"status": f"failed: {result.stderr.strip().splitlines()[-1:]}", "gpus": gpus}
    report = (workdir / "nccl.txt").read_text().split()
    return {"status": "ok", "gpus": gpus, "steps_per_s": float(report[0]), "wall_s": round(wall, 1)}


def nccl_worker(steps: int, workdir: Path) -> None:
    """One rank of the NCCL check: the loop trains data-parallel (it compares the replicas'
    weights at every checkpoint: a mismatch fails the run); rank 0 writes steps/s."""
    row = train_once("cuda", "fp32", steps, workdir / "nccl")
    if os.environ.get("RANK", "0") == "0":
        (workdir / "nccl.txt").write_text(f"{row['steps_per_s']}\n")


def timed_generate(model: OnnxGenerator, images: int) -> tuple[float, np.ndarray]:
    labels = np.arange(images) % len(SPEC.classes)
    model.generate(labels[:256], seed=0)  # session start and warm-up, not timed
    started = time.perf_counter()
    out = model.generate(labels, seed=1, batch_size=256)
    return images / (time.perf_counter() - started), out


def timed_transform(path: Path, device: str, images: int) -> float:
    compose = A.Compose([GANSynthesize(path, device=device, p=1.0)], seed=0)
    blank = np.zeros((28, 28, 1), np.uint8)
    compose(image=blank, class_label=0)  # warm-up
    started = time.perf_counter()
    for i in range(images):
        compose(image=blank, class_label=i % 10)
    return images / (time.perf_counter() - started)


def bench_generate(images: int, workdir: Path) -> list[dict[str, Any]]:
    variant = Registry.from_plugins().create(VARIANT, {}, SPEC, seed=0)
    path = workdir / f"{VARIANT}.onnx"
    export_onnx(variant, variant.generator, path)
    rows, reference = [], None
    for device in ("cpu", "cuda"):
        if device == "cuda" and not torch.cuda.is_available():
            rows.append({"device": device, "status": NO_CUDA})
            continue
        model = OnnxGenerator(path, task="synthesize", device=device)
        opened = model.session.get_providers()[0]
        if device == "cuda" and opened != "CUDAExecutionProvider":
            rows.append({"device": device, "status": f"skipped: onnxruntime opened {opened}"})
            continue
        speed, out = timed_generate(model, images)
        row = {"device": device, "provider": opened, "generate_images_per_s": round(speed)}
        if reference is None:
            reference = out
        else:  # the same seeds on the other provider: the same images up to float error
            row["max_abs_diff_vs_cpu"] = float(np.abs(out - reference).max())
        row["transform_images_per_s"] = round(timed_transform(path, device, images // 4))
        rows.append(row)
    return rows


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [
        "# The GPU path: CPU vs GPU side by side",
        "",
        f"`python benchmarks/gpu_check.py --steps {report['steps']}` "
        f"(torch {env['torch']}, CUDA {env['torch_cuda']}, GPUs: "
        f"{', '.join(env['gpus']) or 'none'}; onnxruntime {env['onnxruntime']} "
        f"with {', '.join(env['onnxruntime_providers'])}).",
        "",
        "| training (sngan, batch 64) | steps/s | vs CPU | losses finite |",
        "|---|---|---|---|",
    ]
    cpu = report["train"][0]["steps_per_s"]
    for row in report["train"]:
        name = f"{row['device']} {row['precision']}"
        if "status" in row:
            lines.append(f"| {name} | {row['status']} | | |")
            continue
        ratio = row["steps_per_s"] / cpu
        lines.append(f"| {name} | {row['steps_per_s']} | {ratio:.1f}x | {row['losses_finite']} |")
    nccl = report["nccl"]
    lines += ["", f"NCCL data-parallel training over {nccl['gpus']} GPUs: {nccl['status']}"]
    if "steps_per_s" in nccl:
        lines[-1] += f", {nccl['steps_per_s']} steps/s"
    lines += [
        "",
        "| onnxruntime | generate images/s (b256) | GANSynthesize images/s | max diff vs CPU |",
        "|---|---|---|---|",
    ]
    for row in report["generate"]:
        if "status" in row:
            lines.append(f"| {row['device']} | {row['status']} | | |")
            continue
        diff = row.get("max_abs_diff_vs_cpu")
        lines.append(
            f"| {row['provider']} | {row['generate_images_per_s']} | "
            f"{row['transform_images_per_s']} | {'' if diff is None else f'{diff:.2g}'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps per row")
    parser.add_argument("--images", type=int, default=20_000, help="images generated per row")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/gpu")
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--nccl-worker", action="store_true", help=argparse.SUPPRESS)
    args = parse_args(parser, SMOKE)
    if args.nccl_worker:
        nccl_worker(args.steps, args.workdir)
        return
    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        report = {
            "steps": args.steps,
            "images": args.images,
            "environment": environment(),
            "train": bench_train(args.steps, workdir),
            "nccl": bench_nccl(args.steps, workdir),
            "generate": bench_generate(args.images, workdir),
        }
    write_results(args.out, report, markdown(report))


if __name__ == "__main__":
    main()
