"""Image-to-image translation: :class:`TranslateParams`, the exported
:class:`Translator` and the family's base :class:`TranslateVariant` (CycleGAN, StarGAN and
Pix2Pix implement its ``translate`` and losses).

Exported contract: ``image f32[N,C,S,S] (+ domain i64[N]) (+ noise f32[N,K]) -> image``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from augment import losses
from augment.errors import ConfigError, ModelError
from augment.nn.segmenter import MaskSegmenter, Threshold, foreground, mask_misread
from augment.tasks import Task
from augment.variant import Batch, DataSpec, FirstRows, LossOutput, Params, Preview, Variant

if TYPE_CHECKING:
    from augment.data.batches import TrainingData


class TranslateParams(Params):
    """Knobs of the image-to-image family (CycleGAN, StarGAN, Pix2Pix).

    Loss weights: ``cycle`` (CycleGAN's cycle consistency, StarGAN's reconstruction),
    ``identity`` (a translator fed an image already in its target domain keeps it),
    ``l1`` (Pix2Pix's distance to the paired target), ``domain`` (StarGAN's domain
    classification) and ``semantic`` (class consistency: a classifier trained alongside on
    the labeled images and their translations must still recognise each translated image's
    class, PixelDA's task classifier; with ``pseudo_labels`` it also learns the target's
    own images through its confident readings of them, so that what it recognises is a
    target-domain digit, not a source-like one: CyCADA's semantic loss with a judge that
    knows the target); ``shape`` (shape consistency: a segmenter trained on the real
    images of every domain must find, in each translation, the layout of its source:
    the foreground, above ``threshold``, of the source's plain original).
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
    pseudo_labels: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="with semantic: the judge also learns the unlabeled target images it "
        "reads with at least this confidence, as that class (self-training); 0: off",
    )
    pseudo_from: float = Field(
        0.25, ge=0, lt=1, description="fraction of the steps before pseudo-labels are used"
    )
    shape: float = Field(
        0.0,
        ge=0,
        description="shape consistency: a segmenter of the real images must read each "
        "source's layout from its translation (its cross-entropy's weight; 0: off)",
    )
    threshold: Threshold = 0.0  # with shape: where a plain original's layout is
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
        if self.paired and self.params.shape > 0:
            raise ConfigError(
                f"{self.name}: shape is for unpaired recipes (a paired one learns its "
                "target's layout from the pairs)"
            )

    @abstractmethod
    def translate(
        self, generator: nn.Module, image: Tensor, domain: Tensor | None, noise: Tensor | None
    ) -> Tensor:
        """``image`` f32[N,C,H,W] translated into ``domain`` i64[N] (None: one direction),
        drawing on ``noise`` f32[N,K] (None when ``noise`` is 0)."""

    progress: float = 0.0  # fraction of the run done after the step being trained

    def at_step(self, step: int, steps: int) -> None:
        self.progress = (step + 1) / steps

    def noise_for(self, image: Tensor) -> Tensor | None:
        """A fresh code f32[N,K] for ``image`` (None for a deterministic recipe)."""
        k = self.params.noise
        if k == 0:
            return None
        return torch.randn(len(image), k, device=image.device)

    @staticmethod
    def halves(batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
        """A two-domain batch split by domain: (images of A, images of B, labels of A's
        images); domain 0 is A, the labeled source."""
        in_a = batch["domain"] == 0
        return batch["image"][in_a], batch["image"][~in_a], batch["label"][in_a]

    def generator_adversarial(self, critic: nn.Module, fake: Tensor, real: Tensor) -> Tensor:
        """The generator's adversarial loss against ``critic`` on ``fake`` (the relativistic
        losses also read the critic on ``real``, as a constant)."""
        relativistic = self.params.loss in losses.RELATIVISTIC
        real_logits = critic(real).detach() if relativistic else None
        return losses.generator_loss(self.params.loss, critic(fake), real_logits)

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

    def readers(self) -> dict[str, nn.Module]:
        """The networks the discriminator optimizer trains beside the critics: the
        class-consistency judge ("classifier") when ``semantic`` > 0 and the layout
        segmenter ("segmenter", foreground or not per pixel) when ``shape`` > 0."""
        from augment.nn.translate import DigitClassifier

        p, d = self.params, self.data
        modules: dict[str, nn.Module] = {}
        if p.semantic > 0:
            modules["classifier"] = DigitClassifier(d.channels, max(d.num_classes, 1))
        if p.shape > 0:
            modules["segmenter"] = MaskSegmenter(d.channels, 2, p.d_width)
        return modules

    # -- class consistency (semantic loss), shared by the unpaired recipes ---------------

    def classifier_loss(
        self,
        images: Tensor,
        labels: Tensor,
        translated: Tensor,
        unlabeled: Tensor | None = None,
    ) -> LossOutput:
        """Cross-entropy of the judge on the labeled real images and their translations
        (``translated[i]`` is ``images[i]`` translated, so it keeps ``labels[i]``).

        With ``pseudo_labels`` t > 0, from ``pseudo_from`` of the run on, the unlabeled
        images (``images`` with label -1, and ``unlabeled``: the target's) the judge reads
        as class k with p(k | x) >= t join in with label k: self-training on the target
        domain, the judge's own confident readings as labels (as CyCADA's semantic loss
        reads target images with a classifier that knows them). The share admitted is
        logged as ``pseudo``."""
        p = self.params
        known = labels >= 0
        if p.semantic == 0 or not known.any():
            return LossOutput(torch.zeros((), device=images.device))
        judge = self.discriminator["classifier"]
        inputs = [images[known], translated[known].detach()]
        targets = [labels[known], labels[known]]
        logs: dict[str, float] = {}
        if p.pseudo_labels > 0 and self.progress > p.pseudo_from:
            pool = images[~known] if unlabeled is None else torch.cat([images[~known], unlabeled])
            if len(pool):
                with torch.no_grad():
                    confidence, reading = judge(pool).softmax(dim=1).max(dim=1)
                admitted = confidence >= p.pseudo_labels
                inputs.append(pool[admitted])
                targets.append(reading[admitted])
                logs["pseudo"] = admitted.float().mean().item()
        loss = F.cross_entropy(judge(torch.cat(inputs)), torch.cat(targets))
        return LossOutput(loss, {"classifier": loss.item()} | logs)

    def semantic_loss(self, translated: Tensor, labels: Tensor) -> LossOutput:
        """``semantic`` x cross-entropy of the judge on translations of labeled images."""
        known = labels >= 0
        if self.params.semantic == 0 or not known.any():
            return LossOutput(torch.zeros((), device=translated.device))
        loss = F.cross_entropy(self.discriminator["classifier"](translated[known]), labels[known])
        return LossOutput(self.params.semantic * loss, {"semantic": loss.item()})

    # -- shape consistency, shared by the unpaired recipes ------------------------------
    def layouts(self, batch: Batch) -> Tensor | None:
        """Label maps i64[N,H,W] of the batch's images: the foreground of each one's plain
        original (``plain``; the image itself where no domain has a style). None when
        ``shape`` is 0: nothing reads them, and the losses below are then zero."""
        if self.params.shape == 0:
            return None
        return foreground(batch.get("plain", batch["image"]), self.params.threshold)

    def segmenter_loss(self, images: Tensor, layouts: Tensor | None) -> LossOutput:
        """The segmenter's cross-entropy reading ``layouts`` from real ``images``."""
        if layouts is None:
            return LossOutput(torch.zeros((), device=images.device))
        misread = mask_misread(self.discriminator["segmenter"], images, layouts)
        return LossOutput(misread, {"segmenter": misread.item()})

    def shape_loss(self, translated: Tensor, layouts: Tensor | None) -> LossOutput:
        """``shape`` x the segmenter's cross-entropy reading each source's layout from its
        translation: ``translated[i]`` must keep the foreground ``layouts[i]``."""
        if layouts is None:
            return LossOutput(torch.zeros((), device=translated.device))
        misread = mask_misread(self.discriminator["segmenter"], translated, layouts)
        return LossOutput(self.params.shape * misread, {"shape": misread.item()})

    # -- two-domain recipes (cyclegan, munit, unit): a critic per domain -----------------
    def domain_critics(self, history: int | None = None) -> nn.ModuleDict:
        """A PatchGAN critic per domain ("a", "b"); with ``history`` (even 0) a history of
        that many fakes for each ("pool_a", "pool_b"); and the :meth:`readers`."""
        from augment.nn.translate import ImagePool, PatchDiscriminator

        p, d = self.params, self.data
        modules: dict[str, nn.Module] = {
            x: PatchDiscriminator(d.channels, p.d_width, p.d_layers) for x in ("a", "b")
        }
        if history is not None:
            shape = (d.channels, d.image_size, d.image_size)
            modules |= {f"pool_{x}": ImagePool(history, shape) for x in ("a", "b")}
        return nn.ModuleDict(modules | self.readers())

    def domain_critics_adversarial(
        self, real_a: Tensor, real_b: Tensor, fake_a: Tensor, fake_b: Tensor
    ) -> Tensor:
        """The generator's adversarial loss against both domains' critics: B's critic on the
        translations into B, A's on those into A (:meth:`generator_adversarial`)."""
        d = self.discriminator
        b = self.generator_adversarial(d["b"], fake_b, real_b)
        return b + self.generator_adversarial(d["a"], fake_a, real_a)

    def layout_halves(self, batch: Batch) -> tuple[Tensor, Tensor] | None:
        """:meth:`layouts` split by domain as :meth:`halves` splits the images (None when
        ``shape`` is 0)."""
        layouts = self.layouts(batch)
        if layouts is None:
            return None
        in_a = batch["domain"] == 0
        return layouts[in_a], layouts[~in_a]

    def domain_shape_loss(
        self, fake_a: Tensor, fake_b: Tensor, layouts: tuple[Tensor, Tensor] | None
    ) -> LossOutput:
        """:meth:`shape_loss` of both directions: ``fake_b`` (made from A's images) keeps
        A's layouts, ``fake_a`` B's."""
        if layouts is None:
            return self.shape_loss(fake_b, None)
        layout_a, layout_b = layouts
        return self.shape_loss(torch.cat([fake_b, fake_a]), torch.cat([layout_a, layout_b]))

    def domain_critics_loss(
        self,
        real_a: Tensor,
        real_b: Tensor,
        labels: Tensor,
        fake_a: Tensor,
        fake_b: Tensor,
        layouts: tuple[Tensor, Tensor] | None = None,
    ) -> LossOutput:
        """The mean of both critics' losses on their domain's real images and the fakes
        they are shown (through their history, if they have one), plus the judge's loss on
        A's labelled images and their translations ``fake_b`` (and, with ``pseudo_labels``,
        on the B images it reads confidently), plus the segmenter's on both domains' real
        images and their ``layouts`` (:meth:`layout_halves`; None when ``shape`` is 0)."""
        d, kind = self.discriminator, self.params.loss
        reals, fakes, logs = {"a": real_a, "b": real_b}, {"a": fake_a, "b": fake_b}, {}
        loss = torch.zeros((), device=real_a.device)
        for x in ("a", "b"):
            shown = d[f"pool_{x}"](fakes[x]) if f"pool_{x}" in d else fakes[x]
            critic = losses.discriminator_loss(kind, d[x](reals[x]), d[x](shown))
            loss, logs[f"d_{x}"] = loss + 0.5 * critic, critic.item()
        judge = self.classifier_loss(real_a, labels, fake_b, unlabeled=real_b)
        loss, logs = loss + judge.loss, logs | judge.logs
        if layouts is not None:
            segmenter = self.segmenter_loss(torch.cat([real_a, real_b]), torch.cat(layouts))
            loss, logs = loss + segmenter.loss, logs | segmenter.logs
        return LossOutput(loss, logs)

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

    def check_data(self, data: TrainingData) -> None:
        if data.domain is None:
            raise ModelError(f"{self.name}: a domain index per training image is needed")
        if self.paired and data.target is None:
            raise ModelError(f"{self.name}: needs a paired target image per training image")

    def preview(self, module: nn.Module, n: int, seed: int, first_rows: FirstRows) -> Preview:
        """Rows of ``input | translated | reconstructed`` (two domains), ``input | into each
        other domain`` (more) or ``input | translated | paired target`` (paired), for the
        first ``n`` training images of each domain."""
        batch = first_rows("domain", n)
        image, domain = batch["image"], batch["domain"]
        count = len(self.data.domains)

        def run(image: Tensor, domain: Tensor | None = None) -> Tensor:
            noise = self.noise_for(image)
            return module(image, *(x for x in (domain, noise) if x is not None))

        if not self.multi_domain:
            columns = [image, run(image)]
            columns += [batch["target"]] if "target" in batch else []
        else:
            others = [(domain + k) % count for k in range(1, count)]
            columns = [image, *(run(image, other) for other in others)]
            if count == 2:
                columns.append(run(columns[1], domain))
        return Preview(torch.stack(columns, dim=1).flatten(0, 1), len(columns))
