"""Class-conditional DCGAN networks sized to any square image (Radford et al., 2016).

The spatial plan starts from a ``base`` of 4..7 pixels and doubles ``n`` times to reach the
image size (28 = 7*2^2, 32 = 4*2^3, 64 = 4*2^4, 8 = 4*2^1). Conditioning:

* generator: a learned class embedding concatenated to z (Mirza & Osindero, 2014);
* discriminator ``concat``: one-hot class maps concatenated to the image channels;
  ``projection``: inner product of a class embedding with the features (Miyato & Koyama,
  2018); ``none``: unconditional (AC-GAN relies on its auxiliary classifier head).

Shapes: N batch, C image channels, S image side, K classes, ``width`` the channel count
of the generator's last and the discriminator's first feature map (doubling per step).
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

Norm = Literal["batch", "layer", "none"]
Conditioning = Literal["concat", "projection", "none"]


def spatial_plan(image_size: int) -> tuple[int, int]:
    """(base, doublings) with base in 4..7 and base * 2**doublings == image_size."""
    # halve as long as the size stays divisible and the result stays >= 4 px
    n = 0
    while image_size % (2 ** (n + 1)) == 0 and image_size // 2 ** (n + 1) >= 4:
        n += 1
    base = image_size // 2**n
    # e.g. 20 = 5*2^2 and 48 = 6*2^3 pass; 36 (base 9) and odd sizes (n = 0) do not
    if not 4 <= base <= 7 or n == 0:
        raise ValueError(
            f"image size {image_size} is not base*2^n with base 4..7 and n >= 1 "
            "(resize in prepare: e.g. image_size 28, 32 or 64)"
        )
    return base, n


def norm_layer(kind: Norm, channels: int) -> nn.Module:
    """BatchNorm, layer norm over (C,H,W) via one-group GroupNorm, or identity."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    # GroupNorm(1, C) normalizes each sample over all of (C, H, W) with a per-channel affine:
    # no statistics shared across the batch, as gradient penalties need
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    return nn.Identity()


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialization: weights ~ N(0, 0.02), norm scales ~ N(1, 0.02), biases 0.

    Works on spectrally normalized layers too (it initializes the original weight).
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            # with spectral norm, ``m.weight`` is the computed W / sigma(W), not a leaf
            weight = (
                m.parametrizations.weight.original
                if parametrize.is_parametrized(m, "weight")
                else m.weight
            )
            nn.init.normal_(weight, 0.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class ConditionalGenerator(nn.Module):
    """(z f32[N,latent], label i64[N]) -> image f32[N,C,S,S] in [-1,1].

    ``norm="none"`` drops the batch norms (and gives the layers biases instead): BEGAN's
    autoencoder critic decodes with this network, and a critic's output must not depend
    on what else is in its batch.
    """

    def __init__(
        self,
        latent_dim: int,
        num_classes: int,
        channels: int,
        image_size: int,
        width: int = 64,
        norm: Literal["batch", "none"] = "batch",
    ) -> None:
        super().__init__()
        batch_norm = norm == "batch"
        base, doublings = spatial_plan(image_size)
        # halving once per doubling ends at width/2 channels: 28 px, width 64: 128 -> 64 -> 32
        top = width * 2 ** (doublings - 1)  # channels at the base resolution
        self.base, self.top = base, top
        # e_y: [K, latent], one code per class, the same size as z
        self.embed = nn.Embedding(num_classes, latent_dim)
        self.project = nn.Sequential(  # [N, 2*latent] -> [N, top*base*base]
            nn.Linear(2 * latent_dim, top * base * base, bias=not batch_norm),
            nn.BatchNorm1d(top * base * base) if batch_norm else nn.Identity(),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        c = top
        for _ in range(doublings):  # [N, c, s, s] -> [N, c/2, 2s, 2s]
            out = max(c // 2, width // 2)
            # k4 s2 p1 transposed conv: out side = (s - 1)*2 - 2*1 + 4 = 2s exactly; no bias
            # before a batch norm, which subtracts the mean anyway
            blocks += [
                nn.ConvTranspose2d(c, out, 4, stride=2, padding=1, bias=not batch_norm),
                norm_layer(norm, out),
                nn.ReLU(inplace=True),
            ]
            c = out
        # 3x3 conv to image channels; tanh bounds the output to (-1, 1) like the data
        blocks += [nn.Conv2d(c, channels, 3, padding=1), nn.Tanh()]  # -> [N, C, S, S]
        self.upsample = nn.Sequential(*blocks)
        dcgan_init(self)
        nn.init.normal_(self.embed.weight)  # class codes on the scale of z
        # lambda of transitional conditioning (SynthesisVariant.at_step sets it; 1: a
        # plain conditional generator); not saved, since it is a function of the step
        self.register_buffer("condition_strength", torch.ones(()), persistent=False)

    def forward(self, z: Tensor, label: Tensor) -> Tensor:
        # lambda * e_y; at lambda = 0 the generator sees only z (unconditional)
        code = self.condition_strength * self.embed(label)  # [N, latent]
        # [N, latent] ++ [N, latent] -> [N, 2*latent] -> [N, top*base*base]
        h = self.project(torch.cat([z, code], dim=1))
        # [N, top, base, base] -> (doublings x2) -> [N, C, S, S]
        return self.upsample(h.view(-1, self.top, self.base, self.base))


def with_class_maps(
    image: Tensor, label: Tensor, num_classes: int, strength: Tensor | float = 1.0
) -> Tensor:
    """[N, C, S, S] ++ K one-hot class maps -> [N, C+K, S, S]: label [N] -> one-hot [N, K]
    scaled by ``strength`` -> maps [N, K, S, S] (a view, no copy), concatenated."""
    onehot = F.one_hot(label, num_classes).to(image.dtype) * strength
    maps = onehot[:, :, None, None].expand(-1, -1, *image.shape[2:])
    return torch.cat([image, maps], dim=1)


class ConditionalEncoder(nn.Module):
    """(image f32[N,C,S,S], label i64[N]) -> code f32[N,out_dim].

    The label enters as K one-hot maps beside the image channels (as the ``concat``
    discriminator's does), then DCGAN's discriminator body (:func:`downsampling_stack`)
    and one linear map. The conditional VAE's q(z | x, y) (``out_dim = 2 * latent``: mu and
    log-variance) and BEGAN's autoencoder critic read images with it.
    """

    def __init__(
        self,
        out_dim: int,
        num_classes: int,
        channels: int,
        image_size: int,
        width: int = 32,
        norm: Norm = "batch",
    ) -> None:
        super().__init__()
        base, doublings = spatial_plan(image_size)
        self.num_classes = num_classes
        layers = downsampling_stack(channels + num_classes, width, doublings, norm)
        self.features = nn.Sequential(*layers, nn.Flatten())  # -> [N, F]
        self.head = nn.Linear(width * 2 ** (doublings - 1) * base * base, out_dim)
        dcgan_init(self)

    def forward(self, image: Tensor, label: Tensor) -> Tensor:
        return self.head(self.features(with_class_maps(image, label, self.num_classes)))


def encoder_and_decoder(
    latent_dim: int, code_dim: int, num_classes: int, channels: int, image_size: int, width: int
) -> nn.ModuleDict:
    """An encoder and a decoder in one module (one optimizer and one EMA for both):
    ``encoder`` (image, label) -> f32[N, code_dim] (:class:`ConditionalEncoder`) and
    ``decoder`` (z f32[N, latent_dim], label) -> image, the conditional DCGAN generator.
    The VAE's q and p (``code_dim = 2 latent_dim``: mu ++ log-variance), BiGAN's E and G."""
    return nn.ModuleDict(
        {
            "encoder": ConditionalEncoder(code_dim, num_classes, channels, image_size, width),
            "decoder": ConditionalGenerator(latent_dim, num_classes, channels, image_size, width),
        }
    )


class CriticOutput(NamedTuple):
    reconstruction: Tensor  # f32[N,C,S,S]: the autoencoder's copy of the image
    class_logits: Tensor  # f32[N,K] from the code: the auxiliary classifier (AC-GAN's)


class AutoencoderCritic(nn.Module):
    """BEGAN's discriminator (Berthelot et al., 2017) with an auxiliary classifier:
    image f32[N,C,S,S] -> CriticOutput(its reconstruction, class logits f32[N,K]).

    Encoder (a :class:`ConditionalEncoder` of one class: its one map is a constant plane,
    no class information) -> code h f32[N,code_dim] -> decoder (a batch-norm-free
    :class:`ConditionalGenerator` of one class: unconditional),
    and a linear class head on h (AC-GAN, Odena et al., 2017). The energy is the
    reconstruction error: low on the data it learned, high elsewhere. The class reaches
    the critic through the head only: told the class, the decoder could draw the class's
    template from the label alone, and a generator drawing that template would be
    reconstructed perfectly (measured: one image a class); not told it at all, the critic
    is class-blind and so is the generator (judge agreement at chance).
    """

    def __init__(
        self, code_dim: int, num_classes: int, channels: int, image_size: int, width: int = 32
    ) -> None:
        super().__init__()
        self.encoder = ConditionalEncoder(code_dim, 1, channels, image_size, width, "none")
        self.decoder = ConditionalGenerator(code_dim, 1, channels, image_size, width, norm="none")
        self.classifier = nn.Linear(code_dim, num_classes)
        # DCGAN's N(0, 0.02) weights rely on batch norm to restore the scale of each layer's
        # output; without it the signal shrinks ~50x a layer and the autoencoder learns only
        # the background. He initialization keeps the variance through (Leaky)ReLU layers.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, a=0.2)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, image: Tensor) -> CriticOutput:
        one_class = torch.zeros(image.shape[0], dtype=torch.int64, device=image.device)
        code = self.encoder(image, one_class)  # [N, code_dim]
        return CriticOutput(self.decoder(code, one_class), self.classifier(code))


class MinibatchStd(nn.Module):
    """Append the mean standard deviation over groups of samples as one more channel.

    [N, C, H, W] -> [N, C+1, H, W] (Karras et al., 2018): a collapsed generator makes
    batches with no spread, which the discriminator can then see and punish.
    """

    def __init__(self, group: int = 4) -> None:
        super().__init__()
        self.group = group

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = math.gcd(n, self.group)  # the largest group size that divides the batch
        # [N, C, H, W] -> [g, N/g, C, H, W]: group j holds samples j, j + N/g, j + 2N/g, ...
        # population std over the g members of each group, per feature; the 1e-8 inside the
        # root (the paper's) keeps the gradient finite where a group agrees exactly (the
        # constant background of real digits): d sqrt(v)/dv is infinite at v = 0
        spread = (x.view(g, -1, c, h, w).var(dim=0, unbiased=False) + 1e-8).sqrt()  # [N/g,C,H,W]
        # one scalar per group (mean over C, H, W), tiled back so sample i gets group i mod N/g
        spread = spread.mean(dim=(1, 2, 3)).view(-1, 1, 1, 1).repeat(g, 1, h, w)  # [N,1,H,W]
        return torch.cat([x, spread], dim=1)


class DiscriminatorOutput(NamedTuple):
    logits: Tensor  # f32[N]: real/fake logit or critic value
    class_logits: Tensor | None  # f32[N,K] from the auxiliary classifier (AC-GAN), else None


def downsampling_stack(
    c_in: int, width: int, doublings: int, norm: Norm, use_spectral_norm: bool = False
) -> list[nn.Module]:
    """DCGAN's discriminator body: [N, c_in, S, S] -> [N, width * 2^(n-1), S/2^n, S/2^n].

    ``n = doublings`` blocks of a k4 s2 p1 conv (out side ``(s + 2 - 4)/2 + 1 = s/2``; a
    bias only without a norm), the norm (not on the first block, as in DCGAN) and
    LeakyReLU(0.2); channels ``width``, ``2 width``, ... :class:`ConditionalEncoder` (the
    conditional VAE's and BEGAN's) reads images with the same body.
    """
    sn = spectral_norm if use_spectral_norm else (lambda m: m)
    layers: list[nn.Module] = []
    c = width
    for i in range(doublings):  # [N, c_in, s, s] -> [N, c, s/2, s/2]
        layers.append(sn(nn.Conv2d(c_in, c, 4, stride=2, padding=1, bias=norm == "none")))
        if i > 0:
            layers.append(norm_layer(norm, c))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
        c_in, c = c, c * 2
    return layers


class ConditionalDiscriminator(nn.Module):
    """(image f32[N,C,S,S], label i64[N]) -> DiscriminatorOutput.

    ``use_spectral_norm`` wraps every conv, the linear head and the projection embedding
    in spectral normalization (Miyato et al., 2018): ``W_SN = W / sigma(W)``, ``sigma`` the
    largest singular value of ``W`` (conv kernels as [out, in*k*k] matrices), estimated by
    one power iteration per training forward, which bounds each layer's Lipschitz
    constant by about 1.
    ``auxiliary_classifier`` adds AC-GAN's class head (Odena et al., 2017).
    """

    def __init__(
        self,
        num_classes: int,
        channels: int,
        image_size: int,
        width: int = 64,
        conditioning: Conditioning = "concat",
        norm: Norm = "batch",
        use_spectral_norm: bool = False,
        auxiliary_classifier: bool = False,
        minibatch_std: bool = False,
    ) -> None:
        super().__init__()
        base, doublings = spatial_plan(image_size)
        sn = spectral_norm if use_spectral_norm else (lambda m: m)
        self.num_classes, self.conditioning = num_classes, conditioning
        # ``concat`` feeds K one-hot maps beside the C image channels
        c_in = channels + (num_classes if conditioning == "concat" else 0)
        layers = downsampling_stack(c_in, width, doublings, norm, use_spectral_norm)
        c_in = width * 2 ** (doublings - 1)  # channels at base x base
        if minibatch_std:  # [N, c_in, base, base] -> [N, c_in + 1, base, base]
            layers.append(MinibatchStd())
            c_in += 1
        self.features = nn.Sequential(*layers, nn.Flatten())  # -> [N, c_in*base*base]
        feature_dim = self.feature_dim = c_in * base * base
        # psi: [N, F] -> [N, 1], the unconditional part of the logit
        self.adversarial = sn(nn.Linear(feature_dim, 1))
        # e_y: [K, F], one projection vector per class (spectrally normalized like psi)
        self.projection = (
            sn(nn.Embedding(num_classes, feature_dim)) if conditioning == "projection" else None
        )
        # AC-GAN head [N, F] -> [N, K]; never spectrally normalized
        self.classifier = nn.Linear(feature_dim, num_classes) if auxiliary_classifier else None
        dcgan_init(self)
        # lambda of transitional conditioning: scales the class term (projection or
        # one-hot maps), so at 0 this is an unconditional critic; not saved (see generator)
        self.register_buffer("condition_strength", torch.ones(()), persistent=False)

    def forward(self, image: Tensor, label: Tensor) -> DiscriminatorOutput:
        return self.score(self.features_of(image, label), label)

    def features_of(self, image: Tensor, label: Tensor) -> Tensor:
        """The shared body's features h f32[N, F] (heads such as InfoGAN's Q read them)."""
        if self.conditioning == "concat":  # the maps scaled by lambda
            image = with_class_maps(image, label, self.num_classes, self.condition_strength)
        return self.features(image)

    def score(self, h: Tensor, label: Tensor) -> DiscriminatorOutput:
        """The logits (and class logits) of features ``h`` f32[N, F] for ``label``."""
        logits = self.adversarial(h).squeeze(1)  # [N, 1] -> [N]
        if self.projection is not None:
            # D(x, y) = psi(h) + lambda * <e_y, h>  (Miyato & Koyama, 2018; lambda: Shahbazi)
            # with e_y = projection(label) [N, F]; the inner product sums over F -> [N]
            logits = logits + self.condition_strength * (self.projection(label) * h).sum(dim=1)
        classes = self.classifier(h) if self.classifier is not None else None  # [N, K]
        return DiscriminatorOutput(logits, classes)
