"""StackGAN (the stackgan plugin): conditioning augmentation by hand, the seed fixing the
condition sample, stage II not training stage I, the matching-aware critic's wrong
classes, and sizes it cannot stack."""

from __future__ import annotations

import pytest
import torch
from tiny import SPEC

from augment.nn.vae import gaussian_kl
from augment.variant import DataSpec

PARAMS = {"width": 8, "latent_dim": 24, "ca_dim": 8}


def test_conditioning_augmentation_samples_around_the_class_and_pays_its_kl(registry, mnist_small):
    variant = registry.create("stackgan", PARAMS, SPEC, seed=0)
    generator = variant.generator.eval()
    label = torch.tensor([2, 2, 7])
    eps = torch.randn(3, 8)
    c, (mu, logvar) = generator.ca_one(generator.embed(label), eps)
    assert torch.allclose(c, mu + torch.exp(0.5 * logvar) * eps)
    assert torch.equal(mu[0], mu[1]) and not torch.equal(mu[0], mu[2])  # one mu per class
    # eps is z's tail: the same noise with another eps gives another image of the class
    z = torch.randn(1, 24).repeat(2, 1)
    z[1, 16:] = torch.randn(8)
    with torch.no_grad():
        images = generator(z, torch.tensor([2, 2]))
        sketch, _ = generator.sketch(z, torch.tensor([2, 2]))
        refined, _ = generator.refine(sketch, z, torch.tensor([2, 2]))
    assert images.shape == (2, 1, 28, 28) and sketch.shape == (2, 1, 14, 14)
    assert torch.equal(images, refined) and not torch.equal(images[0], images[1])
    images_t = torch.as_tensor(mnist_small[0][:4]).permute(0, 3, 1, 2).float() / 127.5 - 1
    batch = {"image": images_t, "label": torch.as_tensor(mnist_small[1][:4])}
    torch.manual_seed(3)
    out = variant.generator_loss(batch)
    torch.manual_seed(3)
    _, gaussians = variant.stages(variant.noise(batch["label"]), batch["label"])
    kl = sum(gaussian_kl(m, lv).mean() for m, lv in gaussians)
    assert out.logs["kl"] == pytest.approx(kl.item(), rel=1e-5)
    expected = out.logs["g_stage1"] + out.logs["g_stage2"] + kl.item()  # kl_weight 1
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)


def test_mode_seeking_pays_a_term_a_stage_on_pairs_of_one_class(registry, mnist_small):
    variant = registry.create("stackgan", PARAMS | {"mode_seeking": 1.0}, SPEC, seed=0)
    images = torch.as_tensor(mnist_small[0][:6]).permute(0, 3, 1, 2).float() / 127.5 - 1
    batch = {"image": images, "label": torch.as_tensor(mnist_small[1][:6])}
    out = variant.generator_loss(batch)
    stages = out.logs["mode_seeking_stage1"], out.logs["mode_seeking_stage2"]
    assert all(0 < t < 1e3 for t in stages) and out.logs["mode_seeking"] == pytest.approx(
        sum(stages), rel=1e-5
    )
    expected = out.logs["g_adv"] + out.logs["kl"] + sum(stages)
    assert out.loss.item() == pytest.approx(expected, rel=1e-4)


def test_stage_two_refines_a_detached_sketch(registry):
    """Stage I learns from its own critic only, as the paper's frozen stage I."""
    variant = registry.create("stackgan", PARAMS, SPEC, seed=0)
    (_, image), _ = variant.stages(torch.randn(4, 24), torch.tensor([0, 1, 2, 3]))
    image.sum().backward()
    stage_one = variant.generator.stage_one
    assert all(p.grad is None for p in stage_one.parameters())
    assert any(p.grad is not None for p in variant.generator.stage_two.parameters())


def test_the_matching_aware_critic_sees_every_real_image_with_another_class(registry):
    variant = registry.create("stackgan", PARAMS, SPEC, seed=0)
    label = torch.arange(10).repeat(20)
    wrong = variant.wrong_labels(label)
    assert (wrong != label).all() and set(wrong.tolist()) == set(range(10))
    off = registry.create("stackgan", PARAMS | {"matching_aware": False}, SPEC)
    assert off.wrong_labels(label) is None


def test_sizes_it_cannot_stack_and_too_small_a_z_are_refused(registry):
    with pytest.raises(ValueError, match="image size 14: stackgan's sketch is half the side"):
        registry.create("stackgan", PARAMS, DataSpec(image_size=14, channels=1, classes=("a", "b")))
    with pytest.raises(ValueError, match="latent_dim 8 leaves no noise beside ca_dim 8"):
        registry.create("stackgan", PARAMS | {"latent_dim": 8}, SPEC)
