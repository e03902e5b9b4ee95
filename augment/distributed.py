"""Data-parallel training on PyTorch's distributed engine (launched by ``torchrun``).

Under ``torchrun --nproc_per_node=N`` every process holds a full replica of the variant's
networks, takes its share of each global batch, and averages its gradients with the
others (all-reduce) before every optimizer step, so the replicas stay identical; rank 0
alone writes checkpoints, grids and logs. gloo on CPU, NCCL on CUDA.

Why not the ``DistributedDataParallel`` wrapper: a GAN step runs the discriminator inside
the generator's loss with its weights frozen, gradient penalties differentiate twice, and
the variants call their networks directly; DDP's reducer expects one forward and one
backward per wrapped module per step. Averaging gradients explicitly gives the same
arithmetic (one all-reduce per optimizer update: gradients and logged losses in one
flat bucket) and works for every recipe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn
from torch import distributed as dist
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from augment.config import StrictModel
from augment.errors import ConfigError, ModelError

log = logging.getLogger(__name__)


def resolve_device(device: str, index: int = 0) -> torch.device:
    """``cuda:<index>`` when asked for or (``auto``) available, else the CPU."""
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ModelError("device 'cuda' requested but torch sees no CUDA device")
        return torch.device("cuda", index)
    return torch.device("cpu")


@dataclass(frozen=True)
class World:
    """This process's place in the job: ``rank`` of ``size`` (1 outside torchrun)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes outputs."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1

    # -- collectives (no-ops in a single process) ---------------------------------------
    def broadcast(self, modules: Sequence[nn.Module]) -> None:
        """Copy rank 0's parameters and buffers to every rank."""
        if self.active:
            for module in modules:
                for tensor in module.state_dict().values():
                    dist.broadcast(tensor, src=0)

    def average(self, weights: Iterable[Tensor], values: Sequence[float]) -> list[float]:
        """Average the gradients of ``weights`` (in place) and ``values`` (returned) over
        the ranks in one all-reduce of one flat bucket; NaN on any rank is NaN on all."""
        if not self.active:
            return list(values)
        grads = [w.grad for w in weights if w.grad is not None]
        device = grads[0].device if grads else self._device
        scalars = torch.tensor(values, dtype=torch.float32, device=device)
        flat = _flatten_dense_tensors([*grads, scalars])
        dist.all_reduce(flat)
        flat /= self.size
        means = _unflatten_dense_tensors(flat, [*grads, scalars])
        for grad, mean in zip(grads, means, strict=False):
            grad.copy_(mean)
        return means[-1].tolist()

    def gather(self, value: Any) -> list[Any]:
        """``value`` of every rank, in rank order."""
        if not self.active:
            return [value]
        values: list[Any] = [None] * self.size
        dist.all_gather_object(values, value)
        return values

    def check_replicas(self, modules: Sequence[nn.Module]) -> None:
        """RuntimeError unless every rank holds the same weights (a bug, not user error)."""
        if not self.active:
            return
        total = sum(float(p.detach().double().sum()) for m in modules for p in m.parameters())
        values = self.gather(total)
        if len(set(values)) > 1:
            raise RuntimeError(f"data-parallel replicas diverged: weight sums {values}")

    @property
    def _device(self) -> torch.device:
        if dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")


SINGLE_PROCESS = World()


def batch_splits(batch_size: int, processes: int) -> bool:
    """Whether ``processes`` ranks can share a global batch of ``batch_size``: each takes an
    equal share of at least 2 images (batch norm needs 2)."""
    return batch_size % processes == 0 and batch_size // processes >= 2


def under_torchrun() -> bool:
    """Whether this process was started by torchrun (which sets ``TORCHELASTIC_RUN_ID``)."""
    return "TORCHELASTIC_RUN_ID" in os.environ


class Launcher(StrictModel):
    """``train.launcher`` of params.yaml: the train stage starts itself under torchrun.

    One machine: ``{nproc_per_node: N}`` (``--standalone``: a local rendezvous on a free
    port). Several: the same ``launcher`` on every node with ``nnodes``, this node's
    ``node_rank`` and the ``rdzv_endpoint`` (``host:port``) of the rendezvous, which
    torchrun's c10d backend serves from the node whose address it names.
    """

    nproc_per_node: int = Field(ge=1, description="processes on this machine (GPUs, or CPU ranks)")
    nnodes: int = Field(1, ge=1, description="machines in the job")
    node_rank: int = Field(0, ge=0, description="this machine's index, 0 .. nnodes-1")
    rdzv_endpoint: str | None = Field(None, description="host:port of the rendezvous (nnodes > 1)")
    max_restarts: int = Field(0, ge=0, description="torchrun restarts of a failed group")

    @model_validator(mode="after")
    def _check(self) -> Launcher:
        if self.nnodes > 1 and not self.rdzv_endpoint:
            raise ValueError(f"nnodes {self.nnodes} needs rdzv_endpoint (host:port of node 0)")
        if self.node_rank >= self.nnodes:
            raise ValueError(f"node_rank {self.node_rank} is not below nnodes {self.nnodes}")
        return self

    @property
    def processes(self) -> int:
        """The number of training processes in the whole job."""
        return self.nproc_per_node * self.nnodes

    def command(self, module: str, args: list[str], job: str) -> list[str]:
        """The torchrun command line that runs ``python -m module *args`` as this launcher
        says; ``job`` names the rendezvous (one per stage, so two stages never meet)."""
        torchrun = [sys.executable, "-m", "torch.distributed.run"]
        if self.nnodes == 1 and self.rdzv_endpoint is None:
            where = ["--standalone"]
        else:
            where = [
                f"--nnodes={self.nnodes}",
                f"--node_rank={self.node_rank}",
                "--rdzv_backend=c10d",
                f"--rdzv_endpoint={self.rdzv_endpoint}",
                f"--rdzv_id={job}",
            ]
        return [
            *torchrun,
            *where,
            f"--nproc_per_node={self.nproc_per_node}",
            f"--max_restarts={self.max_restarts}",
            "-m",
            module,
            *args,
        ]


def world_from_env() -> World:
    """The World torchrun describes in RANK / WORLD_SIZE / LOCAL_RANK (or a single one)."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise ConfigError(
            "RANK / WORLD_SIZE / LOCAL_RANK must be integers (set by torchrun)"
        ) from None
    return World(rank, size, local)


def is_main_process() -> bool:
    """Whether this process writes outputs (rank 0, or not launched by torchrun)."""
    return world_from_env().main


@contextlib.contextmanager
def process_group(cuda: bool) -> Iterator[World]:
    """Join torchrun's process group for the duration (gloo on CPU, NCCL on CUDA).

    Outside torchrun this yields a single-process World and touches nothing.
    """
    world = world_from_env()
    if not world.active or dist.is_initialized():
        yield world
        return
    if cuda:
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    if world.main:
        log.info("data-parallel training over %d processes", world.size)
    try:
        yield world
    finally:
        dist.destroy_process_group()
