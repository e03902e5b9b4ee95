"""Class-conditional synthesis: :class:`SynthesisParams`, the family's shared adversarial
recipe :class:`SynthesisVariant`, :class:`ConditionalDCGAN` (that recipe on the DCGAN
networks of :mod:`augment.nn.dcgan`, which most synthesis plugins build on) and
:class:`ResidualGAN` (on the residual networks of :mod:`augment.nn.resnet_gan`: biggan,
sagan).

Exported contract: ``(z f32[N,latent_dim], label i64[N]) -> image f32[N,C,S,S]`` in [-1, 1].
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator
from torch import Tensor, nn

from augment import losses
from augment.nn.dcgan import ConditionalDiscriminator, ConditionalGenerator
from augment.nn.diffaugment import AugmentProbability, DiffAugment
from augment.nn.resnet_gan import ResNetDiscriminator, ResNetGenerator
from augment.tasks import Task
from augment.variant import Batch, ClampedExport, DataSpec, LossOutput, Params, Variant


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


#: The knobs :class:`SynthesisVariant`'s own losses read (its penalties, the class head,
#: ADA, transitional conditioning): a recipe that writes losses of its own on the shared
#: networks declares them ``unsupported`` (``SHARED_LOSS_KNOBS | {...}``), so that a recipe
#: setting one, which would change nothing, is refused.
SHARED_LOSS_KNOBS: frozenset[str] = frozenset(
    {"gradient_penalty", "r1", "lecam", "weight_clip", "aux_weight", "ada_target", "transition"}
)

#: What a recipe of several games with losses and critics of its own (a pyramid's levels,
#: stacked stages: lapgan, stackgan) does not read: the shared losses' knobs, the family
#: critic's settings (each game's critic is :func:`projection_critic`) and DiffAugment. Mode
#: seeking they read, one term a game (:func:`paired`, :func:`with_games_mode_seeking`).
STAGED_UNSUPPORTED: frozenset[str] = SHARED_LOSS_KNOBS | {
    "conditioning",
    "d_norm",
    "spectral_norm",
    "minibatch_std",
    "diffaugment",
    "ada_speed",
}


def summed_games(games: dict[str, Tensor], player: str) -> LossOutput:
    """The losses of several independent games (disjoint parameters: a pyramid's levels,
    stacked stages) summed into one, logged as ``<player>_adv`` and each as
    ``<player>_<game>``."""
    total = torch.stack(list(games.values())).sum()
    logs = {f"{player}_{name}": loss.item() for name, loss in games.items()}
    return LossOutput(total, {f"{player}_adv": total.item()} | logs)


def projection_critic(
    num_classes: int, channels: int, image_size: int, width: int
) -> ConditionalDiscriminator:
    """SN-GAN's critic: the DCGAN body with spectral norm, no norm layer and a class
    projection (``psi(h) + <e_y, h>``); each game's critic in lapgan and stackgan."""
    return ConditionalDiscriminator(
        num_classes,
        channels,
        image_size,
        width,
        conditioning="projection",
        norm="none",
        use_spectral_norm=True,
    )


class SynthesisContract:
    """The synthesize task's side of a variant, for any recipe (adversarial or not) whose
    ``params`` have ``latent_dim``: the exported ``(z f32[N,latent_dim], label i64[N]) ->
    image`` module (the generator, clamped to [-1, 1]), its fixed example inputs (``z`` ~
    N(0, I) from ``seed``, ``label`` cycling through the classes: export, parity checks,
    previews) and the ``latent_dim`` metadata. Mixed in before :class:`Variant`.

    A recipe that learns an encoder (BiGAN, ALI) also returns it from
    :meth:`encoder_module`: ``(image f32[N,C,S,S], label i64[N]) -> z f32[N, latent_dim]``,
    exported beside the generator as an ``encode`` model."""

    task: ClassVar[Task] = "synthesize"
    params: Any
    data: DataSpec

    def export_module(self, generator: nn.Module) -> nn.Module:
        return ClampedExport(generator)

    def encoder_module(self, generator: nn.Module) -> nn.Module | None:
        """The encoder inside ``generator`` (the trained or EMA module), or None: most
        generators have none."""
        return None

    def encoder_inputs(self, batch_size: int, seed: int = 0) -> dict[str, Tensor]:
        """Fixed inputs of the encoder: images uniform in [-1, 1] from ``seed`` and labels
        cycling through the classes (export and parity check)."""
        d, rng = self.data, torch.Generator().manual_seed(seed)
        image = torch.rand(batch_size, d.channels, d.image_size, d.image_size, generator=rng)
        label = torch.arange(batch_size, dtype=torch.int64) % max(d.num_classes, 1)
        return {"image": 2 * image - 1, "label": label}

    def example_inputs(self, batch_size: int, seed: int = 0) -> dict[str, Tensor]:
        rng = torch.Generator().manual_seed(seed)
        z = torch.randn(batch_size, self.params.latent_dim, generator=rng)
        label = torch.arange(batch_size, dtype=torch.int64) % max(self.data.num_classes, 1)
        return {"z": z, "label": label}

    def metadata(self) -> dict[str, Any]:
        return {"latent_dim": self.params.latent_dim}


class SynthesisVariant(SynthesisContract, Variant):
    """Class-conditional synthesis: the adversarial recipe shared by the whole family.

    ``generator(z, label) -> image`` and ``discriminator(image, label) -> (logits[N],
    class_logits[N,K] | None)``; loss, penalties, clipping, auxiliary classifier and
    DiffAugment are chosen by :class:`SynthesisParams`.
    """

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

    def at_step(self, step: int, steps: int) -> None:
        strength = condition_strength(self.params.transition, (step + 1) / steps)
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
        fake, z, labels = generated_for(
            self.generator, batch["label"], p.latent_dim, p.mode_seeking
        )
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
        for name, (weight, term) in self.generator_regularizers(fake, batch).items():
            loss = loss + weight * term
            logs[name] = term.item()
        return with_mode_seeking(LossOutput(loss, logs), fake, z, p.mode_seeking)

    def generator_regularizers(self, fake: Tensor, batch: Batch) -> dict[str, tuple[float, Tensor]]:
        """Terms a recipe adds to the generator's loss, given this step's generated images
        and real batch: ``name -> (weight, unweighted term)``, each logged by its name."""
        return {}


def generated_for(
    generator: nn.Module, labels: Tensor, latent_dim: int, mode_seeking: float
) -> tuple[Tensor, Tensor, Tensor]:
    """(images, z, labels) of one generator step: ``generator(z, labels)`` with fresh z ~
    N(0, I); with ``mode_seeking`` > 0 the batch is two halves with the same labels and
    different noise (the first half's labels repeated), the pairs MSGAN's term compares."""
    if mode_seeking > 0:
        labels = first_half_twice(labels)
    z = torch.randn(len(labels), latent_dim, device=labels.device)
    return generator(z, labels), z, labels


def with_mode_seeking(out: LossOutput, fake: Tensor, z: Tensor, weight: float) -> LossOutput:
    """``out`` plus ``weight`` x MSGAN's term (Mao et al., 2019) on the halves of a batch
    from :func:`generated_for`, logged as ``mode_seeking``; ``out`` itself when 0."""
    return with_games_mode_seeking(out, {"image": (fake, z)}, weight)


def first_half_twice(rows: Tensor) -> Tensor:
    """[N, ...] -> [2 (N // 2), ...]: the first N // 2 rows, then the same rows again (the
    two halves of MSGAN's pairs)."""
    half = rows[: len(rows) // 2]
    return torch.cat([half, half])


def paired(batch: Batch) -> Batch:
    """The batch's first half twice, every key: a staged generator run on it with fresh
    noise makes the pairs MSGAN's term compares, sharing every condition (the class, and a
    pyramid level's real coarse image)."""
    return {key: first_half_twice(value) for key, value in batch.items()}


def with_games_mode_seeking(
    out: LossOutput, games: dict[str, tuple[Tensor, Tensor]], weight: float
) -> LossOutput:
    """``out`` plus ``weight`` x the sum over games of MSGAN's term, each on what its own
    generator made from its own noise, ``game -> (generated, z)`` with the pairs in the two
    halves (a :func:`paired` batch); logged as ``mode_seeking`` (the sum) and, with several
    games, ``mode_seeking_<game>``. ``out`` itself when 0.

    A staged generator (a pyramid's levels, stacked stages) can ignore the noise of one game
    while another uses its own, so each game's noise is rewarded where it enters."""
    if weight == 0:
        return out
    terms = {
        game: losses.mode_seeking(*generated.chunk(2), *z.chunk(2))
        for game, (generated, z) in games.items()
    }
    total = torch.stack(list(terms.values())).sum()
    logs = {"mode_seeking": total.item()}
    if len(terms) > 1:
        logs |= {f"mode_seeking_{game}": term.item() for game, term in terms.items()}
    return LossOutput(out.loss + weight * total, out.logs | logs)


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


class ConditionalDCGAN(SynthesisVariant):
    """A synthesis variant on the DCGAN networks; subclasses set ``name`` and ``Params``."""

    params: SynthesisParams

    def build_generator(self) -> nn.Module:
        p, d = self.params, self.data
        return ConditionalGenerator(p.latent_dim, d.num_classes, d.channels, d.image_size, p.width)

    def build_discriminator(self) -> nn.Module:
        return ConditionalDiscriminator(**self.discriminator_args())

    def discriminator_args(self) -> dict[str, Any]:
        """The critic's arguments from the params (a recipe with its own subclass of
        :class:`ConditionalDiscriminator`, such as infogan's with a Q head, builds it
        from the same)."""
        p, d = self.params, self.data
        return {
            "num_classes": d.num_classes,
            "channels": d.channels,
            "image_size": d.image_size,
            "width": p.width,
            "conditioning": p.conditioning,
            "norm": p.d_norm,
            "use_spectral_norm": p.spectral_norm,
            "auxiliary_classifier": p.aux_weight > 0,
            "minibatch_std": p.minibatch_std,
        }


class ResidualParams(SynthesisParams):
    """The synthesis knobs plus the size of the class embedding the generator's blocks share."""

    embed_dim: int = Field(32, ge=1, description="size of the class embedding shared by blocks")
    gsr: float = Field(
        0.0,
        ge=0,
        description="group spectral regularization of the generator's per-class batch-norm "
        "gains (Rangwani et al., 2022; 0.5 in the paper): keeps tail classes from collapsing",
    )
    spectral: float = Field(
        0.0,
        ge=0,
        description="spectral regularization (after Durall et al., 2020): the generated images' "
        "2-D power spectrum is pulled to the real images' (against lattices, checkerboards)",
    )


class ResidualGAN(SynthesisVariant):
    """A synthesis variant on the residual networks (shared class-conditional batch norm,
    hierarchical z, projection critic); subclasses set ``name``, ``Params`` and, to add
    self-attention, :meth:`attention_side`."""

    # the residual discriminator has no normalization layer to choose and no minibatch std
    unsupported: ClassVar[frozenset[str]] = frozenset({"d_norm", "minibatch_std"})
    Params: ClassVar[type[Params]] = ResidualParams
    params: ResidualParams

    def __init__(self, params: Params, data: DataSpec) -> None:
        super().__init__(params, data)
        if self.params.spectral > 0 and self.discriminator is not None:
            # the real spectrum's moving anchor, checkpointed with the critic (as LeCam's)
            self.discriminator.spectrum = losses.SpectrumAnchor(data.image_size)

    def attention_side(self) -> int | None:
        """The feature-map side at which both networks attend (None: no self-attention)."""
        return None

    def build_generator(self) -> nn.Module:
        p, d = self.params, self.data
        return ResNetGenerator(
            p.latent_dim,
            d.num_classes,
            d.channels,
            d.image_size,
            p.width,
            embed_dim=p.embed_dim,
            spectral_norm=p.spectral_norm,
            attention=self.attention_side(),
        )

    def generator_regularizers(self, fake: Tensor, batch: Batch) -> dict[str, tuple[float, Tensor]]:
        p, terms = self.params, {}
        if p.gsr > 0:
            terms["gsr"] = (p.gsr, self.group_spectral_penalty())
        if p.spectral > 0:
            self.discriminator.spectrum.observe(batch["image"])
            terms["spectral"] = (p.spectral, self.discriminator.spectrum(fake))
        return terms

    def group_spectral_penalty(self) -> Tensor:
        """gSR's term, unweighted: the mean over the generator's norm layers' gains and
        biases of ``mean_y sigma_max(G_y)^2`` (:func:`losses.group_spectral_penalty`)."""
        terms = [losses.group_spectral_penalty(a) for a in self.generator.class_affines()]
        return torch.stack(terms).mean()

    def build_discriminator(self) -> nn.Module:
        p, d = self.params, self.data
        return ResNetDiscriminator(
            d.num_classes,
            d.channels,
            d.image_size,
            p.width,
            conditioning=p.conditioning,
            spectral_norm=p.spectral_norm,
            auxiliary_classifier=p.aux_weight > 0,
            attention=self.attention_side(),
        )
