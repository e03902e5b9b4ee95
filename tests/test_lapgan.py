"""LAPGAN (the lapgan plugin): the sampling chain coarse to fine, each level trained on the
real pyramid, z split between the levels, and refusals."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tiny import SPEC

from augment.errors import ConfigError


def up2(x):
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def test_the_chain_adds_each_level_s_band_pass_to_the_upsampled_image(registry):
    """image = u(u(G_0(z_0))) + u(h_1) + h_2 with h_k what G_k adds to the image below it;
    with every refiner's last conv zeroed, the image is the coarse one upsampled."""
    variant = registry.create("lapgan", {"width": 8, "latent_dim": 24}, SPEC, seed=0)
    generator = variant.generator.eval()
    z, label = torch.randn(3, 24), torch.tensor([0, 5, 9])
    z_0, z_1, z_2 = generator.split(z)
    assert (z_0.shape[1], z_1.shape[1], z_2.shape[1]) == (8, 8, 8)  # 24 - 2 levels x 8
    with torch.no_grad():
        coarse = generator.coarse(z_0, label)  # [3, 1, 7, 7]
        middle = up2(coarse) + generator.refiners[0](up2(coarse), z_1, label)
        expected = up2(middle) + generator.refiners[1](up2(middle), z_2, label)
        assert coarse.shape == (3, 1, 7, 7) and expected.shape == (3, 1, 28, 28)
        assert torch.allclose(generator(z, label), expected, atol=1e-6)
        for refiner in generator.refiners:
            refiner.net[-1].weight.zero_()
            refiner.net[-1].bias.zero_()
        assert torch.allclose(generator(z, label), up2(up2(coarse)), atol=1e-6)


def test_each_level_learns_from_the_real_pyramid(registry, mnist_small):
    """Critic k's inputs, real and generated, share the real low-pass u(I_{k-1}) as their
    first channels; the real one's band-pass restores I_k exactly."""
    variant = registry.create("lapgan", {"width": 8, "latent_dim": 24}, SPEC, seed=0)
    images = torch.as_tensor(mnist_small[0][:6]).permute(0, 3, 1, 2).float() / 127.5 - 1
    batch = {"image": images, "label": torch.as_tensor(mnist_small[1][:6])}
    games = list(variant.games(batch, train_generator=False))
    assert [real.shape[-1] for real, _ in games] == [7, 14, 28]
    real_0, fake_0 = games[0]
    assert torch.allclose(real_0, F.avg_pool2d(images, 4), atol=1e-6)
    assert fake_0.shape == real_0.shape and not fake_0.requires_grad
    pyramid = {28: images, 14: F.avg_pool2d(images, 2), 7: F.avg_pool2d(images, 4)}
    for real, fake in games[1:]:
        side = real.shape[-1]
        low = up2(pyramid[side // 2])
        assert torch.allclose(real[:, :1], low, atol=1e-6) and torch.equal(fake[:, :1], real[:, :1])
        assert torch.allclose(real[:, :1] + real[:, 1:], pyramid[side], atol=1e-6)
    trained = list(variant.games(batch, train_generator=True))
    assert all(fake.requires_grad for _, fake in trained)


def test_z_too_small_for_the_levels_and_knobs_it_ignores_are_refused(registry):
    with pytest.raises(ValueError, match="latent_dim 16 leaves no z for the coarsest level"):
        registry.create("lapgan", {"latent_dim": 16, "noise_dim": 8}, SPEC)
    with pytest.raises(ConfigError, match="diffaugment"):
        registry.create("lapgan", {"diffaugment": "translation"}, SPEC)


def test_mode_seeking_penalizes_the_level_that_ignores_its_noise(registry, mnist_small):
    """One MSGAN term a level, each on what that level generates against its own z_k, over
    pairs that share the class and the real coarse image: a refiner whose noise plane is
    cut off makes identical band-passes for a pair, and only its term explodes."""
    params = {"width": 8, "latent_dim": 24, "mode_seeking": 0.5}
    variant = registry.create("lapgan", params, SPEC, seed=0)
    images = torch.as_tensor(mnist_small[0][:6]).permute(0, 3, 1, 2).float() / 127.5 - 1
    batch = {"image": images, "label": torch.as_tensor(mnist_small[1][:6])}
    out = variant.generator_loss(batch)
    terms = [out.logs[f"mode_seeking_level{k}"] for k in range(3)]
    assert out.logs["mode_seeking"] == pytest.approx(sum(terms), rel=1e-5)
    assert out.loss.item() == pytest.approx(out.logs["g_adv"] + 0.5 * sum(terms), rel=1e-4)
    assert all(0 < t < 1e3 for t in terms), terms
    with torch.no_grad():
        variant.generator.refiners[1].noise.weight.zero_()  # h_2 no longer reads z_2
        variant.generator.refiners[1].noise.bias.zero_()
    cut = variant.generator_loss(batch).logs
    assert cut["mode_seeking_level2"] == pytest.approx(1e5, rel=1e-3)  # a collapsed pair
    assert cut["mode_seeking_level0"] < 1e3 and cut["mode_seeking_level1"] < 1e3


def test_a_relativistic_loss_reads_each_critic_s_real_logits(registry, mnist_small):
    variant = registry.create("lapgan", {"loss": "rahinge", "width": 8, "latent_dim": 24}, SPEC)
    images = torch.as_tensor(mnist_small[0][:4]).permute(0, 3, 1, 2).float() / 127.5 - 1
    batch = {"image": images, "label": torch.as_tensor(mnist_small[1][:4])}
    out = variant.generator_loss(batch)
    assert torch.isfinite(out.loss) and set(out.logs) == {
        "g_adv",
        "g_level0",
        "g_level1",
        "g_level2",
    }
