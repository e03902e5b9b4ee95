"""The variant API: what a GAN plugin implements.

A variant is a recipe (networks + losses + default hyper-parameters); it owns no training
loop. The one loop in :mod:`augment.train` drives every variant through:

* ``generator`` / ``discriminator``: the modules to optimize (a ModuleDict where a recipe
  has several), built once in ``__init__`` from ``build_generator``/``build_discriminator``;
* ``discriminator_loss(batch)`` then ``after_discriminator_step()``, ``d_steps`` times;
* ``generator_loss(batch)`` once;
* ``export_module(generator)``: a module whose ``forward`` matches the task's ONNX contract.

Task base classes (:class:`SynthesisVariant`, ...) implement the losses shared by a whole
family, chosen through their ``Params``; a plugin mostly picks defaults and networks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from augment import losses
from augment.config import StrictModel
from augment.nn.diffaugment import DiffAugment

Task = Literal["synthesize", "translate", "upscale"]
TASKS: tuple[Task, ...] = ("synthesize", "translate", "upscale")
Batch = dict[str, Tensor]


@dataclass(frozen=True)
class DataSpec:
    """What a variant needs to know about the data it will be trained on."""

    image_size: int
    channels: int
    classes: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    scale: int = 1

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass
class LossOutput:
    """A loss to minimize and the scalars to log for it."""

    loss: Tensor
    logs: dict[str, float] = field(default_factory=dict)


class Params(StrictModel):
    """Hyper-parameters every variant has. Subclasses add their own and change defaults."""

    optimizer: Literal["adam", "rmsprop"] = "adam"
    lr_g: float = Field(2e-4, gt=0)
    lr_d: float = Field(2e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)
    d_steps: int = Field(1, ge=0, description="discriminator steps per generator step")
    ema_decay: float = Field(0.999, ge=0, lt=1, description="generator EMA decay; 0 disables EMA")


class Variant(ABC):
    """Base class of every GAN recipe. Subclasses set ``name``, ``task`` and ``Params``."""

    name: ClassVar[str]
    task: ClassVar[Task]
    Params: ClassVar[type[Params]] = Params
    description: ClassVar[str] = ""

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

    def after_discriminator_step(self) -> None:
        """Called after each discriminator update (weight clipping lives here)."""

    @abstractmethod
    def export_module(self, generator: nn.Module) -> nn.Module:
        """Wrap ``generator`` (the live or EMA copy) so ``forward`` matches the ONNX contract."""

    @abstractmethod
    def example_inputs(self, batch_size: int, seed: int = 0) -> dict[str, Tensor]:
        """Fixed named inputs of the export module, used for ONNX export and parity."""

    def metadata(self) -> dict[str, Any]:
        """Variant-specific ONNX metadata (the exporter adds the common keys)."""
        return {}


class SynthesisParams(Params):
    """Knobs of the class-conditional image synthesis family (cGAN ... SN-GAN, AC-GAN)."""

    latent_dim: int = Field(64, ge=1)
    width: int = Field(32, ge=8, description="channels of the first discriminator block")
    loss: losses.Adversarial = "ns"
    conditioning: Literal["concat", "projection", "none"] = "concat"
    d_norm: Literal["batch", "layer", "none"] = "batch"
    spectral_norm: bool = False
    gradient_penalty: float = Field(0.0, ge=0, description="WGAN-GP weight (lambda)")
    r1: float = Field(0.0, ge=0, description="R1 penalty weight (gamma)")
    weight_clip: float | None = Field(None, gt=0, description="WGAN critic weight clipping")
    aux_weight: float = Field(0.0, ge=0, description="AC-GAN auxiliary classifier weight")
    minibatch_std: bool = Field(
        False, description="discriminator sees each batch's spread (counters mode collapse)"
    )
    mode_seeking: float = Field(
        0.0, ge=0, description="MSGAN weight: rewards images that differ when z differs"
    )
    diffaugment: str = Field("", description="comma list of color,translation,cutout")

    @model_validator(mode="after")
    def _check(self) -> SynthesisParams:
        DiffAugment.parse(self.diffaugment)
        if self.conditioning == "none" and self.aux_weight == 0:
            raise ValueError("conditioning 'none' needs aux_weight > 0 or labels are ignored")
        if self.d_norm == "batch" and self.gradient_penalty > 0:
            raise ValueError("gradient_penalty needs d_norm 'layer' or 'none' (not batch)")
        return self


class SynthesisExport(nn.Module):
    """ONNX contract of the synthesize task: (z f32[N,latent], label i64[N]) -> image [-1,1]."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, z: Tensor, label: Tensor) -> Tensor:
        return self.generator(z, label).clamp(-1.0, 1.0)


class SynthesisVariant(Variant):
    """Class-conditional synthesis: the adversarial recipe shared by the whole family.

    ``generator(z, label) -> image`` and ``discriminator(image, label) -> (logits[N],
    class_logits[N,K] | None)``; loss, penalties, clipping, auxiliary classifier and
    DiffAugment are chosen by :class:`SynthesisParams`.
    """

    task: ClassVar[Task] = "synthesize"
    Params: ClassVar[type[Params]] = SynthesisParams
    params: SynthesisParams

    def __init__(self, params: Params, data: DataSpec) -> None:
        super().__init__(params, data)
        self.augment = DiffAugment(self.params.diffaugment)

    def sample(self, labels: Tensor) -> Tensor:
        """Generated images for ``labels`` with fresh latent noise."""
        z = torch.randn(labels.shape[0], self.params.latent_dim, device=labels.device)
        return self.generator(z, labels)

    def _aux(self, class_logits: Tensor | None, labels: Tensor) -> Tensor:
        if self.params.aux_weight == 0 or class_logits is None:
            return torch.zeros((), device=labels.device)
        return self.params.aux_weight * F.cross_entropy(class_logits, labels)

    def discriminator_loss(self, batch: Batch) -> LossOutput:
        p = self.params
        real, labels = batch["image"], batch["label"]
        with torch.no_grad():
            fake = self.sample(labels)
        real_aug = self.augment(real).requires_grad_(p.r1 > 0)
        real_logits, real_classes = self.discriminator(real_aug, labels)
        fake_logits, fake_classes = self.discriminator(self.augment(fake), labels)
        adversarial = losses.discriminator_loss(p.loss, real_logits, fake_logits)
        aux = self._aux(real_classes, labels) + self._aux(fake_classes, labels)
        loss = adversarial + aux
        logs = {
            "d_adv": adversarial.item(),
            "d_real": real_logits.mean().item(),
            "d_fake": fake_logits.mean().item(),
        }
        if p.gradient_penalty > 0:
            penalty = losses.gradient_penalty(
                lambda x: self.discriminator(x, labels)[0], real, fake
            )
            loss = loss + p.gradient_penalty * penalty
            logs["gp"] = penalty.item()
        if p.r1 > 0:
            penalty = losses.r1_penalty(real_logits, real_aug)
            loss = loss + 0.5 * p.r1 * penalty
            logs["r1"] = penalty.item()
        if p.aux_weight > 0:
            logs["d_aux"] = aux.item()
        return LossOutput(loss, logs)

    def after_discriminator_step(self) -> None:
        if self.params.weight_clip is not None and self.discriminator is not None:
            clip = self.params.weight_clip
            with torch.no_grad():
                for weight in self.discriminator.parameters():
                    weight.clamp_(-clip, clip)

    def generator_loss(self, batch: Batch) -> LossOutput:
        p = self.params
        labels = batch["label"]
        if p.mode_seeking > 0:  # two halves with the same labels and different noise
            half = labels[: len(labels) // 2]
            labels = torch.cat([half, half])
        z = torch.randn(len(labels), p.latent_dim, device=labels.device)
        fake = self.generator(z, labels)
        fake_logits, fake_classes = self.discriminator(self.augment(fake), labels)
        real_logits = None
        if p.loss in losses.RELATIVISTIC:
            real_logits, _ = self.discriminator(self.augment(batch["image"]), labels)
        adversarial = losses.generator_loss(p.loss, fake_logits, real_logits)
        aux = self._aux(fake_classes, labels)
        loss = adversarial + aux
        logs = {"g_adv": adversarial.item()}
        if p.aux_weight > 0:
            logs["g_aux"] = aux.item()
        if p.mode_seeking > 0:
            penalty = losses.mode_seeking(*fake.chunk(2), *z.chunk(2))
            loss = loss + p.mode_seeking * penalty
            logs["mode_seeking"] = penalty.item()
        return LossOutput(loss, logs)

    def export_module(self, generator: nn.Module) -> nn.Module:
        return SynthesisExport(generator)

    def example_inputs(self, batch_size: int, seed: int = 0) -> dict[str, Tensor]:
        rng = torch.Generator().manual_seed(seed)
        z = torch.randn(batch_size, self.params.latent_dim, generator=rng)
        label = torch.arange(batch_size, dtype=torch.int64) % max(self.data.num_classes, 1)
        return {"z": z, "label": label}

    def metadata(self) -> dict[str, Any]:
        return {"latent_dim": self.params.latent_dim}
