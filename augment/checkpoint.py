"""Checkpoint I/O of the training loop: what a checkpoint holds, its fingerprint, atomic
writes, loading with clear errors, random states, and the variant rebuilt from one.

A checkpoint is a dict of tensors and plain values (``torch.load(weights_only=True)``
reads it) with the keys :data:`CHECKPOINT_KEYS`: the networks, the EMA copy, both
optimizers, the step, the number of batches drawn, the loss history and every random
state, so that a resumed run ends with the weights of an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from augment.distributed import World
from augment.errors import ModelError, TrainingDiverged, first_line
from augment.io import atomic_path
from augment.nn.ema import EMA
from augment.seeding import derive_seed, seed_everything
from augment.variant import DataSpec, Variant

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


#: Params added after checkpoints were written, with the value that means "off": left out
#: of the fingerprint while off, so a run of an older version still resumes.
LATER_KNOBS: dict[str, Any] = {"spectral": 0.0}


def fingerprint(variant: Variant, data_sha256: str, keys: dict[str, Any], seed: int) -> str:
    """What a checkpoint must match to be resumed: everything that changes the weights
    (``keys``: the loop's own, :meth:`augment.train.TrainConfig.resume_keys`)."""
    params = variant.params.model_dump(mode="json")
    for knob, off in LATER_KNOBS.items():
        if params.get(knob, off) == off:
            params.pop(knob, None)
    return json.dumps(
        {
            "variant": variant.name,
            "params": params,
            "data": data_sha256,
            "config": keys,
            "seed": seed,
        },
        sort_keys=True,
    )


def data_spec_state(spec: DataSpec) -> dict[str, Any]:
    """``spec`` as plain values, the way checkpoints keep it."""
    return vars(spec) | {"classes": list(spec.classes), "domains": list(spec.domains)}


def rng_state(device: torch.device) -> dict[str, Any]:
    """This process's random state (CPU, and ``device``'s when it is a GPU)."""
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return {"cpu": torch.get_rng_state(), "cuda": cuda}


def restore_rng(
    state: dict[str, Any], world: World, device: torch.device, seed: int, where: Path
) -> None:
    """This rank's random state as saved; from a run with another number of processes,
    a fresh one (the run continues, but no longer bitwise like an uninterrupted one)."""
    ranks = state.get("rng_ranks") or []
    if len(ranks) == world.size and world.active:
        mine = ranks[world.rank]
        torch.set_rng_state(mine["cpu"])
        if mine["cuda"] is not None and device.type == "cuda":
            torch.cuda.set_rng_state(mine["cuda"], device)
    elif not ranks and not world.active:
        torch.set_rng_state(state["rng_cpu"])
        if state["rng_cuda"] and device.type == "cuda":
            torch.cuda.set_rng_state_all(state["rng_cuda"])
    else:
        if world.main:
            log.warning(
                "%s: saved by %d processes, resumed by %d: random streams start afresh",
                where,
                max(len(ranks), 1),
                world.size,
            )
        seed_everything(derive_seed(seed, "resume", state["step"], world.rank))


def check_finite(networks: list[nn.Module], variant: str, step: int, path: Path) -> None:
    """TrainingDiverged naming the first weight that is NaN/inf: such weights are never saved."""
    for module in networks:
        for name, weight in module.named_parameters():
            if not torch.isfinite(weight).all():
                raise TrainingDiverged(
                    f"{variant}: weight {name} is NaN/inf at step {step}; "
                    f"the last good checkpoint ({path}) is kept"
                )


def write_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` atomically (the previous checkpoint stays until the new one is whole)."""
    buffer = io.BytesIO()  # torch's zip writer reports a full disk as an obscure error
    torch.save(interned(state), buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())


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
    """Rebuild the variant of a checkpoint and the generator to export (EMA when present),
    told the last step trained (``Variant.at_step``), as at the end of training."""
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
    step = int(state["step"])
    variant.at_step(max(step - 1, 0), max(step, 1))
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
