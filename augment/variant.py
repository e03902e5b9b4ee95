"""The variant API: what a GAN plugin implements.

A variant is a recipe (networks + losses + default hyper-parameters); it owns no training
loop. The one loop in :mod:`augment.train` drives every variant through:

* ``generator`` / ``discriminator``: the modules to optimize (a ModuleDict where a recipe
  has several), built once in ``__init__`` from ``build_generator``/``build_discriminator``;
* ``discriminator_loss(batch)`` then ``after_discriminator_step()``, ``d_steps`` times;
* ``generator_loss(batch)`` once;
* ``export_module(generator)``: a module whose ``forward`` matches the task's ONNX contract.

Each task's recipe base class lives in :mod:`augment.tasks` (``synthesis.SynthesisVariant``,
``upscale.UpscaleVariant``, ``translate.TranslateVariant``) and implements the losses
shared by a whole family, chosen through its ``Params``; a plugin mostly picks defaults
and networks.
"""

from __future__ import annotations

import importlib
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from augment.config import StrictModel
from augment.tasks import Task

if TYPE_CHECKING:
    from augment.data.batches import TrainingData

Batch = dict[str, Tensor]
#: ``first_rows(key, n)``: a batch of the first ``n`` training images of each value of
#: the per-image input ``key`` (e.g. each ``domain``), fixed for a run: preview inputs.
FirstRows = Callable[[str, int], Batch]


@dataclass(frozen=True)
class DataSpec:
    """What a variant needs to know about the data it will be trained on."""

    image_size: int
    channels: int
    classes: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass
class LossOutput:
    """A loss to minimize and the scalars to log for it."""

    loss: Tensor
    logs: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Preview:
    """A sample grid: ``images`` f32[rows*columns,C,H,W] in [-1, 1] row by row, and a label
    per row where the rows are the classes (then the loop also checks their diversity)."""

    images: Tensor
    columns: int
    row_labels: tuple[str, ...] | None = None


def device_of(module: nn.Module) -> torch.device:
    """Where ``module``'s weights live (the CPU for a module without any)."""
    tensor = next(module.parameters(), None)
    return torch.device("cpu") if tensor is None else tensor.device


class Params(StrictModel):
    """Hyper-parameters every variant has. Subclasses add their own and change defaults."""

    optimizer: Literal["adam", "rmsprop"] = "adam"
    lr_g: float = Field(2e-4, gt=0)
    lr_d: float = Field(2e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)
    d_steps: int = Field(1, ge=0, description="discriminator steps per generator step")
    ema_decay: float = Field(0.999, ge=0, lt=1, description="generator EMA decay; 0 disables EMA")
    lr_decay: Literal["none", "linear", "cosine"] = Field(
        "none", description="learning-rate decay to 0 over the run's steps, from decay_from"
    )
    decay_from: float = Field(0.0, ge=0, lt=1, description="fraction of the steps before decay")


class Variant(ABC):
    """Base class of every GAN recipe. Subclasses set ``name``, ``task`` and ``Params``."""

    name: ClassVar[str]
    task: ClassVar[Task]
    Params: ClassVar[type[Params]] = Params
    description: ClassVar[str] = ""
    #: Params fields this variant inherits but does not use (e.g. ``mode_seeking`` when it
    #: overrides the generator loss): a recipe that sets one is an error naming it, instead
    #: of a knob that silently does nothing.
    unsupported: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, params: Params, data: DataSpec) -> None:
        if not isinstance(params, self.Params):
            raise TypeError(f"{self.name} expects {self.Params.__qualname__}, got {type(params)}")
        self.params = params
        self.data = data
        self.generator = self.build_generator()
        self.discriminator = self.build_discriminator()

    @abstractmethod
    def build_generator(self) -> nn.Module:
        """The module(s) optimized by the generator optimizer and exported."""

    @abstractmethod
    def build_discriminator(self) -> nn.Module | None:
        """The module(s) optimized by the discriminator optimizer (None: no adversary)."""

    @abstractmethod
    def discriminator_loss(self, batch: Batch) -> LossOutput:
        """Loss of one discriminator step on a real batch."""

    @abstractmethod
    def generator_loss(self, batch: Batch) -> LossOutput:
        """Loss of one generator step (the batch gives labels, real images where needed)."""

    def trains_discriminator(self) -> bool:
        """Whether this training step updates the discriminator (default: when there is one)."""
        return self.discriminator is not None

    def after_discriminator_step(self) -> None:
        """Called after each discriminator update (weight clipping lives here)."""

    def at_step(self, step: int, steps: int) -> None:
        """Called before training step ``step`` (0-based) of ``steps``, and with the last
        step trained when a checkpoint is restored: schedules that are a function of the
        step only, and so resume exactly, live here (the run's fraction done after this
        step is ``(step + 1) / steps``)."""

    def check_data(self, data: TrainingData) -> None:
        """ModelError when ``data`` lacks a per-image input this recipe trains on."""

    def preview(self, module: nn.Module, n: int, seed: int, first_rows: FirstRows) -> Preview:
        """The sample grid of export ``module`` (in eval mode, under no_grad): by default
        ``n`` samples of each class from fixed inputs, a row per class, or ``n`` samples
        in one row for recipes without a ``label`` input."""
        k = max(self.data.num_classes, 1)
        inputs = self.example_inputs(k * n, seed=seed)
        labels = None
        if "label" in inputs:
            inputs["label"] = torch.arange(k).repeat_interleave(n)
            labels = self.data.classes
        device = device_of(module)
        images = module(*(v.to(device) for v in inputs.values()))
        return Preview(images, n, labels)

    @abstractmethod
    def export_module(self, generator: nn.Module) -> nn.Module:
        """Wrap ``generator`` (the live or EMA copy) so ``forward`` matches the ONNX contract."""

    @abstractmethod
    def example_inputs(self, batch_size: int, seed: int = 0) -> dict[str, Tensor]:
        """Fixed named inputs of the export module, used for ONNX export and parity."""

    def metadata(self) -> dict[str, Any]:
        """Variant-specific ONNX metadata (the exporter adds the common keys)."""
        return {}


class PretrainPhase:
    """Mixed into a recipe (before :class:`Variant`) whose generator first trains
    ``params.pretrain_steps`` steps on its own loss before the critic joins in (ESRGAN's
    PSNR phase, Iizuka et al.'s completion-network phase): keeps the step that
    :meth:`Variant.at_step` gives (so a resumed run knows its phase) and trains the critic,
    when there is one, from then on."""

    step: int = 0  # the step being trained, or the last one trained after a restore
    discriminator: nn.Module | None
    params: Any

    def at_step(self, step: int, steps: int) -> None:
        self.step = step

    def trains_discriminator(self) -> bool:
        return self.discriminator is not None and self.step >= self.params.pretrain_steps


class ClampedExport(nn.Module):
    """The generator as exported: its output clamped to the contract's [-1, 1].

    synthesize: (z f32[N,latent], label i64[N]) -> image; upscale: image f32[N,C,h,w] ->
    f32[N,C,h*s,w*s]; translate: image (+ domain i64[N]) -> image.
    """

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, *inputs: Tensor) -> Tensor:
        return self.generator(*inputs).clamp(-1.0, 1.0)


#: Names that lived here before the task bases moved to :mod:`augment.tasks`:
#: still importable from here, with a DeprecationWarning, for one release.
_MOVED = {
    "SynthesisParams": "augment.tasks.synthesis",
    "SynthesisVariant": "augment.tasks.synthesis",
    "condition_strength": "augment.tasks.synthesis",
    "UpscaleParams": "augment.tasks.upscale",
    "UpscaleVariant": "augment.tasks.upscale",
    "gaussian_blur": "augment.tasks.upscale",
    "TranslateParams": "augment.tasks.translate",
    "TranslateVariant": "augment.tasks.translate",
    "Translator": "augment.tasks.translate",
}


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = _MOVED[name]
    warnings.warn(
        f"augment.variant.{name} moved to {module}.{name}", DeprecationWarning, stacklevel=2
    )
    return getattr(importlib.import_module(module), name)
