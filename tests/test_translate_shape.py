"""The translators' shape consistency (augment.tasks.translate): a segmenter learns each
real image's layout (the foreground of its plain original) and every unpaired recipe pays
its misreading of a source's layout in that source's translation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from augment.errors import ConfigError
from augment.nn.segmenter import foreground
from augment.variant import DataSpec

DATA = DataSpec(16, 1, tuple("0123"), domains=("plain", "styled"))
UNPAIRED = ("cyclegan", "munit", "unit", "stargan")


def batch(seed: int = 0) -> dict[str, torch.Tensor]:
    """Four images of each domain; the styled ones' plain originals are their negatives."""
    rng = torch.Generator().manual_seed(seed)
    image = torch.rand(8, 1, 16, 16, generator=rng) * 2 - 1
    domain = torch.tensor([0, 1] * 4)
    plain = torch.where(domain[:, None, None, None] == 1, -image, image)
    return {"image": image, "domain": domain, "label": torch.tensor([0, -1] * 4), "plain": plain}


def generator_gradient(registry, name: str, shape: float) -> torch.Tensor:  # noqa: ANN001
    """The gradient of the generator's loss on its first parameter, the same networks and
    draws for every ``shape``."""
    torch.manual_seed(1)
    variant = registry.create(name, {"width": 8, "shape": shape}, DATA, seed=0)
    torch.manual_seed(2)
    out = variant.generator_loss(batch())
    assert ("shape" in out.logs) == (shape > 0)
    out.loss.backward()
    return next(variant.generator.parameters()).grad.clone()


@pytest.mark.parametrize("name", UNPAIRED)
def test_the_segmenter_learns_real_layouts_and_the_shape_term_reaches_the_translator(
    registry,  # noqa: ANN001
    name: str,
) -> None:
    variant = registry.create(name, {"width": 8, "shape": 1.0}, DATA, seed=0)
    segmenter = variant.discriminator["segmenter"]
    data = batch()
    out = variant.discriminator_loss(data)
    out.loss.backward()
    assert all(p.grad is None for p in variant.generator.parameters())
    assert all(p.grad is not None for p in segmenter.parameters())
    with torch.no_grad():  # what it learns: the real images' layouts, from their originals
        expected = F.cross_entropy(segmenter(data["image"]), foreground(data["plain"], 0.0))
    assert out.logs["segmenter"] == pytest.approx(expected.item(), rel=1e-5)
    # the generators start equal (seed 1): the term alone changes their gradient
    assert not torch.allclose(
        generator_gradient(registry, name, 1.0), generator_gradient(registry, name, 0.0)
    )


def test_layouts_come_from_the_plain_originals_or_the_images_themselves(registry) -> None:  # noqa: ANN001
    variant = registry.create("stargan", {"width": 8, "shape": 1.0, "threshold": 0.5}, DATA)
    data = batch()
    assert torch.equal(variant.layouts(data), (data["plain"].mean(dim=1) > 0.5).long())
    del data["plain"]  # no styled domain: every image is its own plain original
    assert torch.equal(variant.layouts(data), (data["image"].mean(dim=1) > 0.5).long())
    assert "segmenter" not in registry.create("stargan", {"width": 8}, DATA).discriminator


def test_a_paired_recipe_refuses_shape(registry) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError, match="pix2pix: shape is for unpaired recipes"):
        registry.create("pix2pix", {"width": 8, "shape": 1.0}, DATA)
