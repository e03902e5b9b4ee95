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

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator
from torch import Tensor, nn

from augment import losses
from augment.config import StrictModel
from augment.errors import ConfigError
from augment.nn.diffaugment import AugmentProbability, DiffAugment
from augment.runtime import Task

Batch = dict[str, Tensor]


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

    def at_progress(self, progress: float) -> None:
        """Called before each training step with the fraction of the run that step ends
        (``(step + 1) / steps``, so the last step sees 1.0): schedules that are a function
        of the step only, and so resume exactly, live here."""

    @abstractmethod
    def export_module(self, generator: nn.Module) -> nn.Module:
        """Wrap ``generator`` (the live or EMA copy) so ``forward`` matches the ONNX contract."""

    @abstractmethod
    def example_inputs(self, batch_size: int, seed: int = 0) -> dict[str, Tensor]:
        """Fixed named inputs of the export module, used for ONNX export and parity."""

    def metadata(self) -> dict[str, Any]:
        """Variant-specific ONNX metadata (the exporter adds the common keys)."""
        return {}


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
    lecam: float = Field(
        0.0, ge=0, description="LeCam regularization weight (Tseng et al., 2021; 0.3 in gSR)"
    )
    lecam_decay: float = Field(0.99, ge=0, lt=1, description="decay of LeCam's anchors")
    weight_clip: float | None = Field(None, gt=0, description="WGAN critic weight clipping")
    aux_weight: float = Field(0.0, ge=0, description="AC-GAN auxiliary classifier weight")
    minibatch_std: bool = Field(
        False, description="discriminator sees each batch's spread (counters mode collapse)"
    )
    mode_seeking: float = Field(
        0.0, ge=0, description="MSGAN weight: rewards images that differ when z differs"
    )
    diffaugment: str = Field("", description="comma list of color,translation,cutout")
    ada_target: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="ADA (Karras et al., 2020): apply DiffAugment with a probability that "
        "rises while E[sign D(real)] exceeds this target (0.6 in the paper); 0: always apply",
    )
    ada_speed: int = Field(20_000, ge=1, description="real images for ADA's p to go 0 -> 1")
    transition: tuple[float, float] = Field(
        (0.0, 0.0),
        description="transitional conditioning (Shahbazi et al., 2022): fractions of the run "
        "where the class condition fades in from 0 to full; (0, 0): conditional throughout",
    )

    @field_validator("diffaugment")
    @classmethod
    def _known_policies(cls, value: str) -> str:
        DiffAugment.parse(value)  # ValueError naming the unknown policy
        return value

    @model_validator(mode="after")
    def _check(self) -> SynthesisParams:
        if self.conditioning == "none" and self.aux_weight == 0:
            raise ValueError("conditioning 'none' needs aux_weight > 0 or labels are ignored")
        if self.d_norm == "batch" and self.gradient_penalty > 0:
            raise ValueError("gradient_penalty needs d_norm 'layer' or 'none' (not batch)")
        if self.ada_target > 0 and not DiffAugment.parse(self.diffaugment):
            raise ValueError("ada_target > 0 needs a diffaugment policy (what ADA applies)")
        start, end = self.transition
        if not 0 <= start <= end <= 1:
            raise ValueError(f"transition {list(self.transition)}: needs 0 <= start <= end <= 1")
        return self


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
        if self.params.lecam > 0 and self.discriminator is not None:
            # a submodule of the discriminator: its anchors are checkpointed with it
            self.discriminator.lecam = losses.LeCamAnchors(self.params.lecam_decay)
        if self.params.ada_target > 0 and self.discriminator is not None:  # p, likewise
            self.discriminator.ada = AugmentProbability(
                self.params.ada_target, self.params.ada_speed
            )

    def augmented(self, images: Tensor) -> Tensor:
        """DiffAugment as the discriminator sees it (with ADA's current ``p``, if on)."""
        ada = getattr(self.discriminator, "ada", None)
        return self.augment(images, ada.p if ada is not None else 1.0)

    def at_progress(self, progress: float) -> None:
        strength = condition_strength(self.params.transition, progress)
        for network in (self.generator, self.discriminator):
            if isinstance(getattr(network, "condition_strength", None), Tensor):
                network.condition_strength.fill_(strength)

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
        real_aug = self.augmented(real).requires_grad_(p.r1 > 0)
        real_logits, real_classes = self.discriminator(real_aug, labels)
        fake_logits, fake_classes = self.discriminator(self.augmented(fake), labels)
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
        if p.lecam > 0:
            penalty = self.discriminator.lecam(real_logits, fake_logits)
            loss = loss + p.lecam * penalty
            logs["lecam"] = penalty.item()
        if p.aux_weight > 0:
            logs["d_aux"] = aux.item()
        if p.ada_target > 0:
            self.discriminator.ada.update(real_logits)
            logs["ada_p"] = float(self.discriminator.ada.p)
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
        fake_logits, fake_classes = self.discriminator(self.augmented(fake), labels)
        real_logits = None
        if p.loss in losses.RELATIVISTIC:
            real_logits, _ = self.discriminator(self.augmented(batch["image"]), labels)
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
        return ClampedExport(generator)

    def example_inputs(self, batch_size: int, seed: int = 0) -> dict[str, Tensor]:
        rng = torch.Generator().manual_seed(seed)
        z = torch.randn(batch_size, self.params.latent_dim, generator=rng)
        label = torch.arange(batch_size, dtype=torch.int64) % max(self.data.num_classes, 1)
        return {"z": z, "label": label}

    def metadata(self) -> dict[str, Any]:
        return {"latent_dim": self.params.latent_dim}


def condition_strength(transition: tuple[float, float], progress: float) -> float:
    """lambda_t of transitional conditioning (Shahbazi et al., 2022, "Collapse by
    Conditioning"): 0 before ``start`` (an unconditional GAN, whose every class shares what
    the whole data set teaches), rising linearly to 1 at ``end`` (fully conditional).

    With few images a class, a class-conditional GAN collapses where the unconditional one
    on the same data does not; starting unconditional and fading the class condition in
    lets the tail classes start from what the head taught. ``(0, 0)``: always 1.
    """
    start, end = transition
    if progress >= end:
        return 1.0
    if progress <= start:
        return 0.0
    return (progress - start) / (end - start)


class UpscaleParams(Params):
    """Knobs of the super-resolution family (SRResNet, SRGAN, ESRGAN).

    Degradation model (how low-resolution inputs are made from the training images):
    Gaussian blur of ``blur`` sigma (high-resolution pixels), bicubic downscaling with
    anti-aliasing by the data's ``scale``, then Gaussian noise of std ``noise`` (on the
    [-1, 1] scale).
    """

    scale: int = Field(2, description="upscaling factor: a power of two (2, 4, 8)")
    lr_g: float = Field(1e-4, gt=0)
    lr_d: float = Field(1e-4, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    width: int = Field(32, ge=8, description="generator channels")
    blocks: int = Field(4, ge=1, description="residual blocks (RRDBs for rrdb)")
    rrdb: bool = Field(False, description="ESRGAN's residual-in-residual dense blocks")
    pixel_loss: Literal["l1", "mse"] = "l1"
    adversarial: float = Field(0.0, ge=0, description="adversarial weight; 0: no discriminator")
    loss: losses.Adversarial = "ns"
    feature: float = Field(
        0.0, ge=0, description="feature-loss weight, in the discriminator's features"
    )
    d_width: int = Field(32, ge=8, description="discriminator channels")
    pretrain_steps: int = Field(
        0, ge=0, description="generator steps with the pixel loss only (ESRGAN's PSNR phase)"
    )
    interpolation: float = Field(
        0.0, ge=0, le=1, description="exported weights: alpha * PSNR + (1 - alpha) * GAN"
    )
    blur: float = Field(0.0, ge=0)
    noise: float = Field(0.0, ge=0)

    @field_validator("scale")
    @classmethod
    def _power_of_two(cls, scale: int) -> int:
        if scale < 2 or scale & (scale - 1):
            raise ValueError("must be a power of two >= 2 (2, 4, 8)")
        return scale

    @model_validator(mode="after")
    def _check(self) -> UpscaleParams:
        if self.feature > 0 and self.adversarial == 0:
            raise ValueError("feature > 0 needs adversarial > 0 (features of the discriminator)")
        if self.interpolation > 0 and self.pretrain_steps == 0:
            raise ValueError("interpolation > 0 needs pretrain_steps > 0 (the PSNR weights)")
        return self


class UpscaleVariant(Variant):
    """Super-resolution by ``params.scale``: pixel loss, optionally adversarial + feature loss.

    The training images are the high-resolution targets; each batch is degraded on the fly
    (:meth:`degrade`) into the network's input. ``generator`` is a
    :class:`~augment.nn.sr.WithSnapshot`, which keeps the PSNR-phase weights for ESRGAN's
    network interpolation.
    """

    task: ClassVar[Task] = "upscale"
    Params: ClassVar[type[Params]] = UpscaleParams
    params: UpscaleParams

    def __init__(self, params: Params, data: DataSpec) -> None:
        super().__init__(params, data)
        if data.image_size % self.scale:
            raise ConfigError(
                f"{self.name}: image size {data.image_size} is not a multiple of scale {self.scale}"
            )

    @property
    def scale(self) -> int:
        return self.params.scale

    def metadata(self) -> dict[str, Any]:
        return {"scale": self.scale}

    def build_generator(self) -> nn.Module:
        from augment.nn.sr import SRGenerator, WithSnapshot

        p, d = self.params, self.data
        return WithSnapshot(SRGenerator(d.channels, p.scale, p.width, p.blocks, p.rrdb))

    def build_discriminator(self) -> nn.Module | None:
        from augment.nn.sr import SRDiscriminator

        if self.params.adversarial == 0:
            return None
        return SRDiscriminator(self.data.channels, self.params.d_width, self.data.image_size)

    def degrade(self, hr: Tensor) -> Tensor:
        """Low-resolution inputs for high-resolution images (the documented degradation)."""
        from augment.nn.sr import bicubic_downscale

        p = self.params
        if p.blur > 0:
            hr = gaussian_blur(hr, p.blur)
        lr = bicubic_downscale(hr, self.scale)
        if p.noise > 0:
            lr = lr + p.noise * torch.randn_like(lr)
        return lr.clamp(-1.0, 1.0)

    def trains_discriminator(self) -> bool:
        """The GAN phase: after ``pretrain_steps`` generator steps, when there is a critic."""
        steps = int(self.generator.steps)
        return self.discriminator is not None and steps >= self.params.pretrain_steps

    def discriminator_loss(self, batch: Batch) -> LossOutput:
        real = batch["image"]
        with torch.no_grad():
            fake = self.generator(self.degrade(real))
        real_logits = self.discriminator(real).logits
        fake_logits = self.discriminator(fake).logits
        loss = losses.discriminator_loss(self.params.loss, real_logits, fake_logits)
        logs = {"d_real": real_logits.mean().item(), "d_fake": fake_logits.mean().item()}
        return LossOutput(loss, logs)

    def generator_loss(self, batch: Batch) -> LossOutput:
        p = self.params
        generator = self.generator
        if p.pretrain_steps and int(generator.steps) == p.pretrain_steps:
            generator.snapshot()  # the PSNR-phase weights, for network interpolation
        adversarial_phase = self.trains_discriminator()  # decided before counting this step
        generator.steps += 1
        hr = batch["image"]
        sr = generator(self.degrade(hr))
        distance = F.l1_loss if p.pixel_loss == "l1" else F.mse_loss
        pixel = distance(sr, hr)
        loss, logs = pixel, {"pixel": pixel.item()}
        if adversarial_phase:
            fake = self.discriminator(sr)
            needs_real = p.feature > 0 or p.loss in losses.RELATIVISTIC
            real = self.discriminator(hr) if needs_real else None
            real_logits = None if real is None else real.logits.detach()
            adversarial = losses.generator_loss(p.loss, fake.logits, real_logits)
            loss = loss + p.adversarial * adversarial
            logs["g_adv"] = adversarial.item()
            if p.feature > 0 and real is not None:
                pairs = zip(fake.features, real.features, strict=True)
                feature = sum(F.l1_loss(f, r.detach()) for f, r in pairs)
                loss = loss + p.feature * feature
                logs["feature"] = float(feature.detach())
        return LossOutput(loss, logs)

    def export_module(self, generator: nn.Module) -> nn.Module:
        p = self.params
        snapshot_taken = p.pretrain_steps and int(generator.steps) > p.pretrain_steps
        return ClampedExport(generator.interpolated(p.interpolation if snapshot_taken else 0.0))

    def example_inputs(self, batch_size: int, seed: int = 0) -> dict[str, Tensor]:
        rng = torch.Generator().manual_seed(seed)
        size = self.data.image_size // self.scale
        image = torch.rand(batch_size, self.data.channels, size, size, generator=rng) * 2 - 1
        return {"image": image}


def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur (reflect padding) of f32[N,C,H,W]."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


class TranslateParams(Params):
    """Knobs of the image-to-image family (CycleGAN, StarGAN, Pix2Pix).

    Loss weights: ``cycle`` (CycleGAN's cycle consistency, StarGAN's reconstruction),
    ``identity`` (a translator fed an image already in its target domain keeps it),
    ``l1`` (Pix2Pix's distance to the paired target), ``domain`` (StarGAN's domain
    classification) and ``semantic`` (class consistency: a classifier trained alongside on
    the labeled images must still recognise each translated image's class).
    """

    width: int = Field(32, ge=8, description="generator channels of the first layer")
    blocks: int = Field(6, ge=1, description="residual blocks (ResNet generator)")
    levels: int = Field(3, ge=1, description="encoder steps (U-Net generator)")
    d_width: int = Field(32, ge=8, description="discriminator channels of the first layer")
    d_layers: int = Field(2, ge=1, description="stride-2 steps of the PatchGAN critic")
    loss: losses.Adversarial = "lsgan"
    gradient_penalty: float = Field(0.0, ge=0, description="WGAN-GP weight (lambda)")
    cycle: float = Field(10.0, ge=0)
    identity: float = Field(0.0, ge=0)
    l1: float = Field(0.0, ge=0)
    domain: float = Field(0.0, ge=0)
    semantic: float = Field(0.0, ge=0, description="class-consistency weight; 0 disables")
    pool_size: int = Field(0, ge=0, description="history of fakes shown to the critic")
    noise: int = Field(
        0,
        ge=0,
        description="size of a random code fed to the translator, so one image can get many "
        "translations (new backgrounds, colours); 0: deterministic",
    )
    mode_seeking: float = Field(
        0.0, ge=0, description="MSGAN weight (with noise): translations differ when codes do"
    )


class Translator(nn.Module):
    """The exported translator: ``image (+ domain) (+ noise) -> image`` clamped to [-1, 1].

    Its inputs after ``image`` are ``extra_inputs``: ``domain`` i64[N] for multi-domain
    recipes, ``noise`` f32[N,K] (standard normal) for stochastic ones (``noise`` = K > 0).
    """

    def __init__(self, variant: TranslateVariant, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator
        self.translate = variant.translate
        self.extra_inputs = variant.extra_inputs()

    def forward(self, image: Tensor, *extra: Tensor) -> Tensor:
        named = dict(zip(self.extra_inputs, extra, strict=True))
        translated = self.translate(self.generator, image, named.get("domain"), named.get("noise"))
        return translated.clamp(-1.0, 1.0)


class TranslateVariant(Variant):
    """Image-to-image translation between the ``data.domains``.

    Batches hold ``image`` and ``domain`` (each domain an equal share of the batch),
    ``label`` (-1 where unknown: the target domain's labels are never given to a
    translator) and, for ``paired`` recipes, ``target``: the image paired with ``image``.
    ``multi_domain`` recipes export ``(image, domain i64[N]) -> image`` (translate into
    ``domain``); the others export ``image -> image`` into the last domain.
    """

    task: ClassVar[Task] = "translate"
    Params: ClassVar[type[Params]] = TranslateParams
    params: TranslateParams
    multi_domain: ClassVar[bool] = True
    paired: ClassVar[bool] = False
    min_domains: ClassVar[int] = 2
    max_domains: ClassVar[int | None] = 2

    def __init__(self, params: Params, data: DataSpec) -> None:
        n = len(data.domains)
        if n < self.min_domains or (self.max_domains is not None and n > self.max_domains):
            most = "" if self.max_domains is None else f" and at most {self.max_domains}"
            raise ConfigError(
                f"{self.name}: translates between at least {self.min_domains}{most} domains, "
                f"got {n} ({', '.join(data.domains) or 'none'})"
            )
        super().__init__(params, data)

    @abstractmethod
    def translate(
        self, generator: nn.Module, image: Tensor, domain: Tensor | None, noise: Tensor | None
    ) -> Tensor:
        """``image`` f32[N,C,H,W] translated into ``domain`` i64[N] (None: one direction),
        drawing on ``noise`` f32[N,K] (None when ``noise`` is 0)."""

    def noise_for(self, image: Tensor) -> Tensor | None:
        """A fresh code f32[N,K] for ``image`` (None for a deterministic recipe)."""
        k = self.params.noise
        if k == 0:
            return None
        return torch.randn(len(image), k, device=image.device)

    def extra_inputs(self) -> tuple[str, ...]:
        """Names of the exported inputs after ``image``."""
        return ("domain",) * self.multi_domain + ("noise",) * (self.params.noise > 0)

    def diversity_loss(
        self, translate: Callable[[Tensor], Tensor], fake: Tensor, noise: Tensor | None
    ) -> LossOutput:
        """MSGAN's mode-seeking term: ``translate(code)`` of the same inputs with another
        code must differ from ``fake`` (drawn with ``noise``); without it a translator
        learns to ignore its code and every digit gets the same kind of background."""
        weight = self.params.mode_seeking
        if weight == 0 or noise is None:
            return LossOutput(torch.zeros((), device=fake.device))
        other = torch.randn_like(noise)
        penalty = losses.mode_seeking(fake, translate(other), noise, other)
        return LossOutput(weight * penalty, {"mode_seeking": penalty.item()})

    # -- class consistency (semantic loss), shared by the unpaired recipes ---------------
    def build_classifier(self) -> nn.Module | None:
        """The class-consistency judge, trained by the discriminator optimizer (or None)."""
        from augment.nn.translate import DigitClassifier

        if self.params.semantic == 0:
            return None
        return DigitClassifier(self.data.channels, max(self.data.num_classes, 1))

    def classifier_loss(self, images: Tensor, labels: Tensor, translated: Tensor) -> LossOutput:
        """Cross-entropy of the judge on the labeled real images and their translations."""
        known = labels >= 0
        if self.params.semantic == 0 or not known.any():
            return LossOutput(torch.zeros((), device=images.device))
        judge = self.discriminator["classifier"]
        logits = judge(torch.cat([images[known], translated[known].detach()]))
        loss = F.cross_entropy(logits, labels[known].repeat(2))
        return LossOutput(loss, {"classifier": loss.item()})

    def semantic_loss(self, translated: Tensor, labels: Tensor) -> LossOutput:
        """``semantic`` x cross-entropy of the judge on translations of labeled images."""
        known = labels >= 0
        if self.params.semantic == 0 or not known.any():
            return LossOutput(torch.zeros((), device=translated.device))
        loss = F.cross_entropy(self.discriminator["classifier"](translated[known]), labels[known])
        return LossOutput(self.params.semantic * loss, {"semantic": loss.item()})

    # -- export and previews -------------------------------------------------------------
    def export_module(self, generator: nn.Module) -> nn.Module:
        return Translator(self, generator)

    def example_inputs(self, batch_size: int, seed: int = 0) -> dict[str, Tensor]:
        rng = torch.Generator().manual_seed(seed)
        size, channels = self.data.image_size, self.data.channels
        inputs = {"image": torch.rand(batch_size, channels, size, size, generator=rng) * 2 - 1}
        if self.multi_domain:
            inputs["domain"] = torch.arange(batch_size, dtype=torch.int64) % len(self.data.domains)
        if self.params.noise:
            inputs["noise"] = torch.randn(batch_size, self.params.noise, generator=rng)
        return inputs

    def metadata(self) -> dict[str, Any]:
        return {"latent_dim": self.params.noise}  # noise per image: 0 for deterministic

    def preview(self, module: nn.Module, batch: Batch) -> tuple[Tensor, int]:
        """Rows of ``input | translated | reconstructed`` (two domains), ``input | into each
        other domain`` (more) or ``input | translated | paired target`` (paired).
        Returns the images row by row and the number of columns."""
        image, domain = batch["image"], batch["domain"]
        n = len(self.data.domains)

        def run(image: Tensor, domain: Tensor | None = None) -> Tensor:
            noise = self.noise_for(image)
            return module(image, *(x for x in (domain, noise) if x is not None))

        if not self.multi_domain:
            columns = [image, run(image)]
            columns += [batch["target"]] if "target" in batch else []
        else:
            others = [(domain + k) % n for k in range(1, n)]
            columns = [image, *(run(image, other) for other in others)]
            if n == 2:
                columns.append(run(columns[1], domain))
        return torch.stack(columns, dim=1).flatten(0, 1), len(columns)
