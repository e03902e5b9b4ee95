"""The one training loop: every variant, every task.

``fit`` alternates ``d_steps`` discriminator updates with one generator update, keeps the
generator EMA, logs losses, writes sample grids, checkpoints every ``checkpoint_every``
steps and resumes from the last checkpoint: a run killed and restarted ends with the same
weights as one that was never interrupted (same seed, deterministic kernels).

What lives elsewhere: checkpoint I/O in :mod:`augment.checkpoint`, the batch order in
:mod:`augment.data.batches`, sample grids and the collapse check in
:mod:`augment.previews`. Task-specific behaviour is the variant's
(:meth:`~augment.variant.Variant.check_data`, ``at_step``, ``preview``).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator
from torch import Tensor, nn
from tqdm.auto import tqdm

from augment import checkpoint, previews
from augment.config import StrictModel
from augment.data.batches import BatchStream, DomainStream, TrainingData
from augment.data.images import to_tensor
from augment.distributed import (
    SINGLE_PROCESS,
    Launcher,
    World,
    batch_splits,
    process_group,
    resolve_device,
)
from augment.errors import ConfigError, ModelError, TrainingDiverged
from augment.io import atomic_path
from augment.nn.ema import EMA
from augment.seeding import derive_seed, seed_everything
from augment.variant import Batch, LossOutput, Params, Variant

log = logging.getLogger(__name__)


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
    launcher: Launcher | None = Field(
        None,
        description="the train stage runs itself under torchrun with these settings "
        "(data-parallel; batch_size stays the global batch); null: one process",
    )

    @model_validator(mode="after")
    def _split_batch(self) -> TrainConfig:
        # the launcher's processes share the global batch (fit checks the actual world too)
        n = self.launcher.processes if self.launcher else 1
        if not batch_splits(self.batch_size, n):
            raise ValueError(
                f"batch_size {self.batch_size} does not split into equal shares of at least "
                f"2 images over the launcher's {n} processes"
            )
        return self

    def resume_keys(self) -> dict[str, Any]:
        """The settings a checkpoint must share to be resumed (those that change the
        weights). ``steps`` is not one, so raising it continues a finished run."""
        keys = self.model_dump(include={"batch_size", "sampling"})
        if self.precision != "fp32":  # (not in fp32 fingerprints: older checkpoints match)
            keys["precision"] = self.precision
        return keys


@dataclass(frozen=True)
class TrainOutputs:
    """Where ``fit`` writes: the checkpoint, the sample grids, the loss log (CSV) and,
    when given, the training time behind the checkpoint (``timing``: JSON, ``step`` and
    ``seconds``; kept out of the checkpoint, whose bytes depend on the weights alone)."""

    checkpoint: Path
    samples: Path
    losses: Path
    timing: Path | None = None


@dataclass(frozen=True)
class TrainResult:
    steps: int
    resumed_from: int
    seconds: float  # the steps' training time, over the runs that trained them (``timing``)
    seconds_per_epoch: float
    final_losses: dict[str, float]
    diversity: dict[str, float]  # per class (label-conditioned variants), see class_diversity


def make_optimizer(params: Params, modules: nn.Module, lr: float) -> torch.optim.Optimizer:
    weights = [w for w in modules.parameters() if w.requires_grad]
    if params.optimizer == "rmsprop":
        return torch.optim.RMSprop(weights, lr=lr)
    return torch.optim.Adam(weights, lr=lr, betas=params.betas)


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
        data: TrainingData,
        config: TrainConfig,
        outputs: TrainOutputs,
        seed: int,
        world: World = SINGLE_PROCESS,
    ) -> None:
        self.variant, self.data, self.config = variant, data, config
        self.outputs, self.seed, self.world = outputs, seed, world
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
        # every per-image input on the device: image, label and what translators add
        self.inputs: dict[str, Tensor] = {
            "image": to_tensor(data.images).to(self.device),
            "label": torch.as_tensor(data.labels, dtype=torch.long, device=self.device),
        }
        if data.domain is not None:
            self.inputs["domain"] = torch.as_tensor(
                data.domain, dtype=torch.long, device=self.device
            )
            self.stream: BatchStream | DomainStream = DomainStream(
                self.inputs["domain"].cpu(), config.batch_size, seed
            )
        else:
            labels = self.inputs["label"].cpu()
            self.stream = BatchStream(labels, config.batch_size, seed, config.sampling)
        for name in ("target", "plain"):  # (paired targets; the plain originals)
            if getattr(data, name) is not None:
                self.inputs[name] = to_tensor(getattr(data, name)).to(self.device)
        keys = config.resume_keys()
        self.fingerprint = checkpoint.fingerprint(variant, data.digest(), keys, seed)
        # what versions before the digest wrote: the manifest's hash in its place (resumed,
        # as those versions would have; the next checkpoint carries the digest)
        self.manifest_fingerprint = checkpoint.fingerprint(variant, data.sha256, keys, seed)
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.pending: defaultdict[str, list[float]] = defaultdict(list)  # since the last log row
        self.earlier_seconds = 0.0  # the training time of the runs this one resumed
        self.started = time.perf_counter()  # (reset when the first step of this run begins)

    @property
    def networks(self) -> list[nn.Module]:
        return [m for m in (self.generator, self.discriminator) if m is not None]

    # -- checkpoints (the I/O is augment.checkpoint's) -----------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "format": checkpoint.CHECKPOINT_FORMAT,
            "fingerprint": self.fingerprint,
            "variant": self.variant.name,
            "params": self.variant.params.model_dump(mode="json"),
            "data_spec": checkpoint.data_spec_state(self.variant.data),
            "data_sha256": self.data.sha256,
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
            "rng_ranks": (
                self.world.gather(checkpoint.rng_state(self.device)) if self.world.active else []
            ),
            "history": self.history,
            "pending": dict(self.pending),
        }

    def save(self) -> None:
        """Checkpoint atomically (rank 0); weights that are no longer finite are never saved.

        Every rank takes part: the checks and the gathering of random states are collective.
        """
        path = self.outputs.checkpoint
        checkpoint.check_finite(self.networks, self.variant.name, self.step, path)
        self.world.check_replicas(self.networks)
        state = self.state()
        if self.world.main:
            checkpoint.write_checkpoint(path, state)
            if self.outputs.timing is not None:  # after the checkpoint it describes
                with atomic_path(self.outputs.timing) as tmp:
                    timing = {"step": self.step, "seconds": round(self.trained_seconds(), 3)}
                    tmp.write_text(json.dumps(timing) + "\n")

    def trained_seconds(self) -> float:
        """The seconds of training behind the current weights, over every run."""
        return self.earlier_seconds + time.perf_counter() - self.started

    def read_timing(self) -> float:
        """The training time of the runs before this one: ``timing``'s seconds when it
        describes the resumed checkpoint, or an earlier step (a run killed between the two
        writes: its last steps untimed, with a warning); otherwise 0."""
        path = self.outputs.timing
        if path is None or not path.exists():
            return 0.0
        try:
            timing = json.loads(path.read_text())
            step, seconds = int(timing["step"]), float(timing["seconds"])
        except (ValueError, KeyError, TypeError):
            log.warning("%s: unreadable; the training time counts this run only", path)
            return 0.0
        if step != self.step:
            log.warning("%s: of step %d, the checkpoint's is %d: the training time "
                        "misses some steps", path, step, self.step)  # fmt: skip
        return seconds if step <= self.step else 0.0

    def try_resume(self) -> bool:
        path = self.outputs.checkpoint
        if not path.exists():
            return False
        state = checkpoint.load_checkpoint(path)
        if state["fingerprint"] not in (self.fingerprint, self.manifest_fingerprint):
            log.warning("%s: trained with other params or data; starting afresh", path)
            return False
        with checkpoint.weights_of(str(path), self.variant.name):
            self.generator.load_state_dict(state["generator"])
            if self.discriminator is not None:
                self.discriminator.load_state_dict(state["discriminator"])
                self.opt_d.load_state_dict(state["opt_d"])
            if self.ema:
                self.ema.load_state_dict(state["ema"])
            self.opt_g.load_state_dict(state["opt_g"])
        checkpoint.restore_rng(state, self.world, self.device, self.seed, path)
        self.step, self.stream.drawn = state["step"], state["batches_drawn"]
        self.history = list(state["history"])
        self.pending.update(state.get("pending", {}))
        self.earlier_seconds = self.read_timing()
        if self.world.main:
            log.info("resumed %s from step %d (%s)", self.variant.name, self.step, path)
        return True

    # -- one step ----------------------------------------------------------------------
    def batch(self) -> Batch:
        """This rank's share of the next global batch (all of it in a single process)."""
        idx = self.stream.next_indices()[self.world.rank :: self.world.size]
        return self.rows(idx.to(self.device))

    def rows(self, idx: Tensor) -> Batch:
        """The batch of the images at ``idx``: every per-image input."""
        return {key: values[idx] for key, values in self.inputs.items()}

    def first_rows(self, key: str, n: int) -> Batch:
        """The first ``n`` images of each value of input ``key`` (fixed preview inputs)."""
        values = self.inputs[key]
        idx = torch.cat(
            [torch.nonzero(values == v).flatten()[:n] for v in range(int(values.max()) + 1)]
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
        self.variant.at_step(self.step, self.config.steps)
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
    def collapse_remedies(self) -> list[str]:
        """The variant's own knobs against mode collapse (those its Params have and use)."""
        fields = set(type(self.variant.params).model_fields) - self.variant.unsupported
        return [knob for knob in ("mode_seeking", "diffaugment") if knob in fields]

    def write_samples(self, path: Path) -> np.ndarray | None:
        """The variant's preview of the sampling generator (EMA when kept) as a grid at
        ``path``; returns its tiles u8[classes, n, H, W, C] when its rows are classes."""
        generator = self.ema.shadow if self.ema else self.generator
        module = self.variant.export_module(generator)
        n = self.config.samples_per_class
        was_training = generator.training
        generator.eval()
        with torch.no_grad():
            preview = self.variant.preview(
                module, n, derive_seed(self.seed, "grid"), self.first_rows
            )
        generator.train(was_training)
        tiles = previews.write_grid(path, preview)
        if preview.row_labels is None:
            return None
        return tiles.reshape(max(len(preview.row_labels), 1), n, *tiles.shape[1:])

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
            previews.remove_stale_grids(self.outputs.samples, self.step)
        if self.step:  # as at the end of the last step trained (for previews and export)
            self.variant.at_step(self.step - 1, total)
        self.generator.train()
        if self.discriminator is not None:
            self.discriminator.train()
        self.started = time.perf_counter()
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
        seconds = self.trained_seconds()
        batches_per_step = max(self.variant.params.d_steps, 1)
        per_epoch = seconds / max(total, 1) * self.stream.per_epoch / batches_per_step
        diversity: dict[str, float] = {}
        if main:  # also after a resume with nothing left to do: outputs complete
            self.write_losses()
            samples = self.write_samples(self.outputs.samples / "final.png")
            if samples is not None:
                diversity = previews.class_diversity(
                    samples,
                    self.data.images,
                    self.data.labels,
                    self.variant.data.classes,
                    self.seed,
                    self.config.collapse_warning,
                    self.variant.name,
                    self.collapse_remedies(),
                )
        final = {k: v for k, v in (self.history[-1] if self.history else {}).items() if k != "step"}
        return TrainResult(total, resumed_from, seconds, per_epoch, final, diversity)


def fit(
    variant: Variant,
    data: TrainingData,
    config: TrainConfig,
    outputs: TrainOutputs,
    seed: int,
    progress: bool = True,
) -> TrainResult:
    """Train ``variant`` on ``data`` (images, labels and the per-image inputs its task
    needs; :meth:`Variant.check_data` says which are missing).

    Resumes from ``outputs.checkpoint`` when it exists and matches (variant, params, data,
    seed); writes the checkpoint, sample grids and a loss log. Under ``torchrun`` the
    processes train one model data-parallel: ``config.batch_size`` is the global batch,
    each process takes an equal share, and rank 0 writes every output. Raises TrainingDiverged
    (keeping the last good checkpoint) when a loss becomes NaN/inf or explodes.
    """
    variant.check_data(data)
    device = resolve_device(config.device)
    with process_group(cuda=device.type == "cuda") as world:
        if not batch_splits(config.batch_size, world.size):
            raise ConfigError(
                f"train.batch_size {config.batch_size} must split into equal shares of at "
                f"least 2 images over {world.size} processes"
            )
        return Trainer(variant, data, config, outputs, seed, world).run(progress)
