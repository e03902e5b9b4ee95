"""The one training loop: every variant, every task.

``fit`` alternates ``d_steps`` discriminator updates with one generator update, keeps the
generator EMA, logs losses, writes sample grids, checkpoints every ``checkpoint_every``
steps and resumes from the last checkpoint: a run killed and restarted ends with the same
weights as one that was never interrupted (same seed, deterministic kernels).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from torch import Tensor, nn
from tqdm.auto import tqdm

from augment.config import StrictModel
from augment.data.images import image_grid, to_tensor, to_uint8, write_png
from augment.distributed import SINGLE_PROCESS, World, process_group
from augment.errors import ConfigError, ModelError, TrainingDiverged, first_line
from augment.io import atomic_path
from augment.metrics.image import ms_ssim_diversity
from augment.nn.ema import EMA
from augment.seeding import derive_seed, seed_everything
from augment.variant import Batch, DataSpec, LossOutput, Params, TranslateVariant, Variant

log = logging.getLogger(__name__)
CHECKPOINT_FORMAT = 1
#: What every checkpoint holds (``pending`` and ``rng_ranks`` are newer and optional).
CHECKPOINT_KEYS = (
    "fingerprint",
    "variant",
    "params",
    "data_spec",
    "data_sha256",
    "step",
    "batches_drawn",
    "generator",
    "discriminator",
    "ema",
    "opt_g",
    "opt_d",
    "rng_cpu",
    "rng_cuda",
    "history",
)


class TrainConfig(StrictModel):
    """How long and how to train; the recipe's own knobs live in the variant's Params."""

    steps: int = Field(2000, ge=1, description="generator steps")
    batch_size: int = Field(64, ge=2)
    sampling: Literal["uniform", "balanced"] = Field(
        "uniform", description="real batches drawn uniformly or class-balanced"
    )
    checkpoint_every: int = Field(500, ge=1)
    sample_every: int = Field(500, ge=1)
    log_every: int = Field(25, ge=1)
    samples_per_class: int = Field(8, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = Field(0, ge=0, description="torch CPU threads; 0 keeps torch's default")
    divergence_threshold: float = Field(1e4, gt=0, description="|loss| above this is divergence")
    collapse_warning: float = Field(
        0.5,
        ge=0,
        le=1,
        description="warn when a class's final samples are less diverse than this fraction "
        "of its real images (MS-SSIM diversity)",
    )
    precision: Literal["fp32", "bf16"] = Field(
        "fp32", description="bf16: forward passes under bfloat16 autocast (CUDA, recent CPUs)"
    )


@dataclass(frozen=True)
class TrainOutputs:
    """Where ``fit`` writes: the checkpoint, the sample grids and the loss log (CSV)."""

    checkpoint: Path
    samples: Path
    losses: Path


@dataclass(frozen=True)
class TrainResult:
    steps: int
    resumed_from: int
    seconds: float
    seconds_per_epoch: float
    final_losses: dict[str, float]
    diversity: dict[str, float]  # per class (label-conditioned variants), see class_diversity


def resolve_device(device: str, index: int = 0) -> torch.device:
    """``cuda:<index>`` when asked for or (``auto``) available, else the CPU."""
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ModelError("device 'cuda' requested but torch sees no CUDA device")
        return torch.device("cuda", index)
    return torch.device("cpu")


class BatchStream:
    """Deterministic real batches: batch ``k`` depends only on (seed, k), so resume is exact.

    ``uniform`` walks a fresh permutation per epoch; ``balanced`` draws each class equally
    often (with replacement), which shows tail classes to the discriminator more often.
    """

    def __init__(self, labels: Tensor, batch_size: int, seed: int, sampling: str) -> None:
        self.labels, self.batch_size, self.seed, self.sampling = labels, batch_size, seed, sampling
        self.per_epoch = max(len(labels) // batch_size, 1)
        counts = torch.bincount(labels).double()
        self.weights = (1.0 / counts.clamp(min=1))[labels]
        self.drawn = 0
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.long)

    def next_indices(self) -> Tensor:
        epoch, position = divmod(self.drawn, self.per_epoch)
        self.drawn += 1
        if epoch != self._epoch:
            rng = torch.Generator().manual_seed(derive_seed(self.seed, "epoch", epoch))
            n = self.per_epoch * self.batch_size
            if self.sampling == "balanced":
                self._order = torch.multinomial(self.weights, n, replacement=True, generator=rng)
            else:
                self._order = torch.randperm(len(self.labels), generator=rng)[:n]
                if len(self._order) < n:  # fewer images than one batch: repeat
                    self._order = self._order.repeat(math.ceil(n / len(self._order)))[:n]
            self._epoch = epoch
        start = position * self.batch_size
        return self._order[start : start + self.batch_size]


class DomainStream:
    """Batches with an equal share of each domain (translation): one :class:`BatchStream`
    per domain, uniform within it; batch ``k`` still depends only on (seed, k)."""

    def __init__(self, domains: Tensor, batch_size: int, seed: int) -> None:
        count = int(domains.max()) + 1
        if batch_size < count:
            raise ModelError(
                f"batch_size {batch_size} cannot hold one image of each of {count} domains"
            )
        self.rows = [torch.nonzero(domains == d).flatten() for d in range(count)]
        empty = [d for d, rows in enumerate(self.rows) if len(rows) == 0]
        if empty:
            raise ModelError(f"domain {empty[0]} has no training images")
        self.streams = [
            BatchStream(
                torch.zeros(len(rows), dtype=torch.long),
                batch_size // count,
                derive_seed(seed, "domain", d),
                "uniform",
            )
            for d, rows in enumerate(self.rows)
        ]
        self.per_epoch = max(s.per_epoch for s in self.streams)

    @property
    def drawn(self) -> int:
        return self.streams[0].drawn

    @drawn.setter
    def drawn(self, value: int) -> None:
        for stream in self.streams:
            stream.drawn = value

    def next_indices(self) -> Tensor:
        pairs = zip(self.rows, self.streams, strict=True)
        return torch.cat([rows[stream.next_indices()] for rows, stream in pairs])


def make_optimizer(params: Params, modules: nn.Module, lr: float) -> torch.optim.Optimizer:
    weights = [w for w in modules.parameters() if w.requires_grad]
    if params.optimizer == "rmsprop":
        return torch.optim.RMSprop(weights, lr=lr)
    return torch.optim.Adam(weights, lr=lr, betas=params.betas)


def fingerprint(variant: Variant, data_sha256: str, config: TrainConfig, seed: int) -> str:
    """What a checkpoint must match to be resumed: everything that changes the weights.

    The number of steps is not part of it, so raising ``steps`` continues a finished run.
    """
    keys = config.model_dump(include={"batch_size", "sampling"})
    if config.precision != "fp32":  # (not in fp32 fingerprints: older checkpoints still match)
        keys["precision"] = config.precision
    return json.dumps(
        {
            "variant": variant.name,
            "params": variant.params.model_dump(mode="json"),
            "data": data_sha256,
            "config": keys,
            "seed": seed,
        },
        sort_keys=True,
    )


def lr_factor(decay: str, start: float, progress: float) -> float:
    """The learning-rate multiplier at ``progress`` (0..1) of a run: 1 until ``start``,
    then falling to 0 linearly or along a half cosine (``decay`` "none" keeps 1)."""
    if decay == "none" or progress <= start:
        return 1.0
    t = min(1.0, (progress - start) / (1.0 - start))
    return 1.0 - t if decay == "linear" else 0.5 * (1.0 + math.cos(math.pi * t))


class Trainer:
    """State of one run; ``fit`` is the public entry point."""

    def __init__(
        self,
        variant: Variant,
        images: np.ndarray,
        labels: np.ndarray,
        config: TrainConfig,
        outputs: TrainOutputs,
        seed: int,
        data_sha256: str,
        domains: np.ndarray | None = None,
        targets: np.ndarray | None = None,
        world: World = SINGLE_PROCESS,
    ) -> None:
        self.variant, self.config, self.outputs, self.seed = variant, config, outputs, seed
        self.world = world
        self.device = resolve_device(config.device, world.local_rank)
        if config.threads:
            torch.set_num_threads(config.threads)
        self.generator = variant.generator.to(self.device)
        self.discriminator = (
            variant.discriminator.to(self.device) if variant.discriminator is not None else None
        )
        world.broadcast(self.networks)  # replicas start from rank 0's weights
        # every rank draws its own noise (one rank: the single-process stream)
        ranked = (world.rank, world.size) if world.active else ()
        seed_everything(derive_seed(seed, "train", variant.name, *ranked))
        p = variant.params
        self.opt_g = make_optimizer(p, self.generator, p.lr_g)
        self.opt_d = (
            make_optimizer(p, self.discriminator, p.lr_d)
            if self.discriminator is not None
            else None
        )
        self.ema = EMA(self.generator, p.ema_decay) if p.ema_decay > 0 else None
        self.images = to_tensor(images).to(self.device)
        self.labels = torch.as_tensor(labels, dtype=torch.long, device=self.device)
        self.extra: dict[str, Tensor] = {}  # per-image inputs besides image and label
        if domains is not None:
            self.extra["domain"] = torch.as_tensor(domains, dtype=torch.long, device=self.device)
            self.stream: BatchStream | DomainStream = DomainStream(
                self.extra["domain"].cpu(), config.batch_size, seed
            )
        else:
            self.stream = BatchStream(self.labels.cpu(), config.batch_size, seed, config.sampling)
        if targets is not None:
            self.extra["target"] = to_tensor(targets).to(self.device)
        self.data_sha256 = data_sha256
        self.fingerprint = fingerprint(variant, data_sha256, config, seed)
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.pending: defaultdict[str, list[float]] = defaultdict(list)  # since the last log row

    @property
    def networks(self) -> list[nn.Module]:
        return [m for m in (self.generator, self.discriminator) if m is not None]

    # -- checkpoints -------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "fingerprint": self.fingerprint,
            "variant": self.variant.name,
            "params": self.variant.params.model_dump(mode="json"),
            "data_spec": vars(self.variant.data)
            | {
                "classes": list(self.variant.data.classes),
                "domains": list(self.variant.data.domains),
            },
            "data_sha256": self.data_sha256,
            "step": self.step,
            "batches_drawn": self.stream.drawn,
            "generator": self.generator.state_dict(),
            "discriminator": (
                self.discriminator.state_dict() if self.discriminator is not None else {}
            ),
            "ema": self.ema.state_dict() if self.ema else {},
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict() if self.opt_d else {},
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "rng_ranks": self.world.gather(self.rng_state()) if self.world.active else [],
            "history": self.history,
            "pending": dict(self.pending),
        }

    def rng_state(self) -> dict[str, Any]:
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        return {"cpu": torch.get_rng_state(), "cuda": cuda}

    def save(self) -> None:
        """Checkpoint atomically (rank 0); weights that are no longer finite are never saved.

        Every rank takes part: the checks and the gathering of random states are collective.
        """
        for module in self.networks:
            for name, weight in module.named_parameters():
                if not torch.isfinite(weight).all():
                    raise TrainingDiverged(
                        f"{self.variant.name}: weight {name} is NaN/inf at step {self.step}; "
                        f"the last good checkpoint ({self.outputs.checkpoint}) is kept"
                    )
        self.world.check_replicas(self.networks)
        state = self.state()
        if not self.world.main:
            return
        buffer = io.BytesIO()  # torch's zip writer reports a full disk as an obscure error
        torch.save(interned(state), buffer)
        with atomic_path(self.outputs.checkpoint) as tmp:
            tmp.write_bytes(buffer.getbuffer())

    def try_resume(self) -> bool:
        path = self.outputs.checkpoint
        if not path.exists():
            return False
        state = load_checkpoint(path)
        if state["fingerprint"] != self.fingerprint:
            log.warning("%s: trained with other params or data; starting afresh", path)
            return False
        with weights_of(str(path), self.variant.name):
            self.generator.load_state_dict(state["generator"])
            if self.discriminator is not None:
                self.discriminator.load_state_dict(state["discriminator"])
                self.opt_d.load_state_dict(state["opt_d"])
            if self.ema:
                self.ema.load_state_dict(state["ema"])
            self.opt_g.load_state_dict(state["opt_g"])
        self.restore_rng(state)
        self.step, self.stream.drawn = state["step"], state["batches_drawn"]
        self.history = list(state["history"])
        self.pending.update(state.get("pending", {}))
        log.info("resumed %s from step %d (%s)", self.variant.name, self.step, path)
        return True

    def restore_rng(self, state: dict[str, Any]) -> None:
        """This rank's random state as saved; from a run with another number of processes,
        a fresh one (the run continues, but no longer bitwise like an uninterrupted one)."""
        ranks = state.get("rng_ranks") or []
        if len(ranks) == self.world.size and self.world.active:
            mine = ranks[self.world.rank]
            torch.set_rng_state(mine["cpu"])
            if mine["cuda"] is not None and self.device.type == "cuda":
                torch.cuda.set_rng_state(mine["cuda"], self.device)
        elif not ranks and not self.world.active:
            torch.set_rng_state(state["rng_cpu"])
            if state["rng_cuda"] and self.device.type == "cuda":
                torch.cuda.set_rng_state_all(state["rng_cuda"])
        else:
            if self.world.main:
                log.warning(
                    "%s: saved by %d processes, resumed by %d: random streams start afresh",
                    self.outputs.checkpoint,
                    max(len(ranks), 1),
                    self.world.size,
                )
            seed_everything(derive_seed(self.seed, "resume", state["step"], self.world.rank))

    # -- one step ----------------------------------------------------------------------
    def batch(self) -> Batch:
        """This rank's share of the next global batch (all of it in a single process)."""
        idx = self.stream.next_indices()[self.world.rank :: self.world.size]
        return self.rows(idx.to(self.device))

    def rows(self, idx: Tensor) -> Batch:
        """The batch of the images at ``idx``: image, label and any extra inputs."""
        return {"image": self.images[idx], "label": self.labels[idx]} | {
            k: v[idx] for k, v in self.extra.items()
        }

    def preview_batch(self) -> Batch:
        """Fixed images for translation previews: the first few of each domain."""
        n = self.config.samples_per_class
        domains = self.extra["domain"]
        idx = torch.cat(
            [torch.nonzero(domains == d).flatten()[:n] for d in range(int(domains.max()) + 1)]
        )
        return self.rows(idx)

    def update(
        self,
        compute: Callable[[Batch], LossOutput],
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        which: str,
    ) -> dict[str, float]:
        bf16 = self.config.precision == "bf16"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            out = compute(batch)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        # gradients and logged values averaged over the processes in one exchange (no-op
        # in a single process); a NaN/exploded loss stops before the weights change
        weights = (w for group in optimizer.param_groups for w in group["params"])
        names = list(out.logs)
        value, *logged = self.world.average(weights, [float(out.loss.detach()), *out.logs.values()])
        if not math.isfinite(value) or abs(value) > self.config.divergence_threshold:
            raise TrainingDiverged(
                f"{self.variant.name}: {which} loss is {value:.4g} at step {self.step + 1}; "
                f"the last good checkpoint ({self.outputs.checkpoint}) is kept. "
                "Lower the learning rates or add a penalty (gradient_penalty, r1, spectral_norm)"
            )
        optimizer.step()
        return {f"{which}_loss": value, **dict(zip(names, logged, strict=True))}

    def train_step(self) -> dict[str, float]:
        logs: dict[str, float] = {}
        p = self.variant.params
        factor = lr_factor(p.lr_decay, p.decay_from, self.step / self.config.steps)
        self.variant.at_progress((self.step + 1) / self.config.steps)
        for optimizer, base in ((self.opt_g, p.lr_g), (self.opt_d, p.lr_d)):
            for group in optimizer.param_groups if optimizer else ():
                group["lr"] = base * factor
        batch: Batch | None = None
        if self.discriminator is not None and self.variant.trains_discriminator():
            self.discriminator.requires_grad_(True)
            for _ in range(self.variant.params.d_steps):
                batch = self.batch()
                logs |= self.update(self.variant.discriminator_loss, batch, self.opt_d, "d")
                self.variant.after_discriminator_step()
            self.discriminator.requires_grad_(False)  # G step: no D gradients to compute
        batch = batch if batch is not None else self.batch()
        logs |= self.update(self.variant.generator_loss, batch, self.opt_g, "g")
        if self.ema:
            self.ema.update(self.generator)
        return logs

    # -- outputs -----------------------------------------------------------------------
    @property
    def sampling_generator(self) -> nn.Module:
        return self.ema.shadow if self.ema else self.generator

    def write_samples(self, path: Path) -> np.ndarray | None:
        """One row per class, ``samples_per_class`` columns, fixed noise across steps.

        Returns the samples of a label-conditioned generator as u8 [classes, n, H, W, C]."""
        generator = self.sampling_generator
        module = self.variant.export_module(generator)
        k, n = max(self.variant.data.num_classes, 1), self.config.samples_per_class
        inputs = self.variant.example_inputs(k * n, seed=derive_seed(self.seed, "grid"))
        if "label" in inputs:
            inputs["label"] = torch.arange(k).repeat_interleave(n)
        labels = self.variant.data.classes if "label" in inputs else None
        was_training = generator.training
        generator.eval()
        with torch.no_grad():
            if isinstance(self.variant, TranslateVariant):
                images, n = self.variant.preview(module, self.preview_batch())
            else:
                images = module(*(v.to(self.device) for v in inputs.values()))
        generator.train(was_training)
        tiles = to_uint8(images.cpu())
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            write_png(tmp, image_grid(tiles, nrow=n, row_labels=labels))
        return None if labels is None else tiles.reshape(k, n, *tiles.shape[1:])

    def class_diversity(self, samples: np.ndarray) -> dict[str, float]:
        """Per class: MS-SSIM diversity of its samples over that of as many real images
        (about 1: as varied as the data; near 0: the class collapsed to one image).
        Warns naming the classes below ``collapse_warning``."""
        labels = self.labels.cpu().numpy()
        ratios: dict[str, float] = {}
        for index, name in enumerate(self.variant.data.classes):
            real = self.images[np.flatnonzero(labels == index)[: samples.shape[1]]]
            if len(real) < 2:
                continue
            reference = ms_ssim_diversity(to_uint8(real.cpu()), seed=self.seed)
            if reference > 0:
                ratios[name] = ms_ssim_diversity(samples[index], seed=self.seed) / reference
        collapsed = [
            f"{c} ({r:.2f})" for c, r in ratios.items() if r < self.config.collapse_warning
        ]
        if collapsed:
            log.warning(
                "%s: samples of class %s are far less diverse than its real images "
                "(diversity ratio < %g): mode collapse? Try more steps, mode_seeking or "
                "diffaugment",
                self.variant.name,
                ", ".join(collapsed),
                self.config.collapse_warning,
            )
        return ratios

    def remove_stale_samples(self) -> None:
        """Grids of a previous run past the step this run starts from no longer apply."""
        for path in self.outputs.samples.glob("step_*.png"):
            if not path.stem[5:].isdigit() or int(path.stem[5:]) > self.step:
                path.unlink()
        (self.outputs.samples / "final.png").unlink(missing_ok=True)

    def write_losses(self) -> None:
        with atomic_path(self.outputs.losses) as tmp:
            pd.DataFrame(self.history).to_csv(tmp, index=False, float_format="%.6g")

    def run(self, progress: bool = True) -> TrainResult:
        resumed_from = self.step if self.try_resume() else 0
        total = self.config.steps
        if self.step > total:
            raise ModelError(
                f"{self.outputs.checkpoint}: already trained {self.step} steps, more than "
                f"steps={total}; raise steps or delete the checkpoint"
            )
        main = self.world.main  # rank 0 writes grids, logs and checkpoints
        if main:
            self.remove_stale_samples()
        self.generator.train()
        if self.discriminator is not None:
            self.discriminator.train()
        started = time.perf_counter()
        bar = tqdm(
            total=total,
            initial=self.step,
            desc=f"train {self.variant.name}",
            unit="step",
            disable=not (progress and main),
            dynamic_ncols=True,
        )
        with bar:
            while self.step < total:
                for key, value in self.train_step().items():
                    self.pending[key].append(value)
                self.step += 1
                bar.update()
                if self.step % self.config.log_every == 0 or self.step == total:
                    row = {"step": self.step} | {
                        k: float(np.mean(v)) for k, v in self.pending.items()
                    }
                    self.history.append(row)
                    self.pending.clear()
                    bar.set_postfix(
                        {k: f"{v:.3f}" for k, v in row.items() if k in ("d_loss", "g_loss")}
                    )
                if main and (self.step % self.config.sample_every == 0 or self.step == total):
                    self.write_samples(self.outputs.samples / f"step_{self.step:06d}.png")
                if self.step % self.config.checkpoint_every == 0 or self.step == total:
                    self.save()
        seconds = time.perf_counter() - started
        done = total - resumed_from
        batches_per_step = max(self.variant.params.d_steps, 1)
        per_epoch = seconds / max(done, 1) * self.stream.per_epoch / batches_per_step
        diversity: dict[str, float] = {}
        if main:  # also after a resume with nothing left to do: outputs complete
            self.write_losses()
            samples = self.write_samples(self.outputs.samples / "final.png")
            diversity = {} if samples is None else self.class_diversity(samples)
        final = {k: v for k, v in (self.history[-1] if self.history else {}).items() if k != "step"}
        return TrainResult(total, resumed_from, seconds, per_epoch, final, diversity)


def fit(
    variant: Variant,
    images: np.ndarray,
    labels: np.ndarray,
    config: TrainConfig,
    outputs: TrainOutputs,
    seed: int,
    data_sha256: str = "",
    progress: bool = True,
    domains: np.ndarray | None = None,
    targets: np.ndarray | None = None,
) -> TrainResult:
    """Train ``variant`` on u8[N,H,W,C] ``images`` with class-index ``labels``.

    Translators also need each image's ``domains`` index (batches take an equal share of
    each; ``labels`` are -1 where unknown) and, when paired, the u8 ``targets``.

    Resumes from ``outputs.checkpoint`` when it exists and matches (variant, params, data,
    seed); writes the checkpoint, sample grids and a loss log. Under ``torchrun`` the
    processes train one model data-parallel: ``config.batch_size`` is the global batch,
    each process takes an equal share, and rank 0 writes every output. Raises TrainingDiverged
    (keeping the last good checkpoint) when a loss becomes NaN/inf or explodes.
    """
    if len(images) == 0:
        raise ModelError("no training images")
    device = resolve_device(config.device)
    if isinstance(variant, TranslateVariant):
        if domains is None or len(domains) != len(images):
            raise ModelError(f"{variant.name}: a domain index per training image is needed")
        if variant.paired and (targets is None or targets.shape != images.shape):
            raise ModelError(f"{variant.name}: needs a paired target image per training image")
    with process_group(cuda=device.type == "cuda") as world:
        if config.batch_size % world.size or config.batch_size // world.size < 2:
            raise ConfigError(
                f"train.batch_size {config.batch_size} must split into equal shares of at "
                f"least 2 images over {world.size} processes"
            )
        trainer = Trainer(
            variant, images, labels, config, outputs, seed, data_sha256, domains, targets, world
        )
        return trainer.run(progress)


def interned(value: Any) -> Any:
    """``value`` with every string interned, so that equal states pickle to equal bytes
    (pickle shares repeated objects by identity: a resumed run's strings come from the
    loaded file, a straight run's from the code)."""
    if isinstance(value, str):
        return sys.intern(value)
    if isinstance(value, dict):
        return {interned(k): interned(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(interned(v) for v in value)
    return value


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by ``fit``, loaded with ``weights_only=True``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"{path}: checkpoint not found") from None
    except Exception as exc:  # pickle and zip errors of a file that is not ours
        raise ModelError(
            f"{path}: not a gan-augment checkpoint ({exc.__class__.__name__})"
        ) from None
    if not isinstance(state, dict):
        raise ModelError(f"{path}: not a gan-augment checkpoint (a {type(state).__name__})")
    if state.get("format") != CHECKPOINT_FORMAT:
        found = str(state.get("format", "none"))[:20]
        raise ModelError(
            f"{path}: not a gan-augment checkpoint (format {found}, expected {CHECKPOINT_FORMAT})"
        )
    missing = [key for key in CHECKPOINT_KEYS if key not in state]
    if missing:
        raise ModelError(f"{path}: not a gan-augment checkpoint (lacks {', '.join(missing)})")
    state["path"] = str(path)
    return state


def restore_variant(
    state: dict[str, Any],
    create: Callable[[str, dict[str, Any], DataSpec], Variant],
    use_ema: bool = True,
) -> tuple[Variant, nn.Module]:
    """Rebuild the variant of a checkpoint and the generator to export (EMA when present)."""
    where = state.get("path", "checkpoint")
    try:
        spec = state["data_spec"]
        data = DataSpec(
            image_size=spec["image_size"],
            channels=spec["channels"],
            classes=tuple(spec["classes"]),
            domains=tuple(spec["domains"]),
        )
    except (KeyError, TypeError) as exc:
        raise ModelError(f"{where}: inconsistent data_spec ({first_line(exc)})") from None
    variant = create(state["variant"], state["params"], data)
    with weights_of(where, variant.name):
        variant.generator.load_state_dict(state["generator"])
        generator = variant.generator
        if use_ema and state["ema"]:
            ema = EMA(variant.generator, variant.params.ema_decay)
            ema.load_state_dict(state["ema"])
            generator = ema.shadow
    return variant, generator.eval()


@contextlib.contextmanager
def weights_of(where: str, variant: str) -> Iterator[None]:
    """Tensors of a checkpoint that do not fit the variant's networks: one ModelError."""
    try:
        yield
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise ModelError(
            f"{where}: checkpoint does not match variant {variant!r} ({first_line(exc)})"
        ) from None
