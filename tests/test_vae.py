"""The conditional VAE's pieces (augment.nn.vae) against hand-computed values, the cvae
and vaegan plugins learning to reconstruct, and BEGAN's autoencoder critic (the encoder it
shares)."""

from __future__ import annotations

import math

import pytest
import torch
from tiny import outputs, task_data

from augment.nn.dcgan import AutoencoderCritic, ConditionalEncoder
from augment.nn.vae import calibrated_gaussian_nll, gaussian_kl, reparameterize


def test_kl_of_a_diagonal_gaussian_to_the_standard_normal() -> None:
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    # 1/2 (mu^2 + sigma^2 - log sigma^2 - 1) per dimension: 1/2 (1 + 1 - 0 - 1) = 0.5, and
    # 1/2 (0 + 2 - log 2 - 1) = 0.1534; the standard normal itself: 0
    expected = torch.tensor([0.5 + 0.5 * (1.0 - math.log(2.0)), 0.0])
    assert torch.allclose(gaussian_kl(mu, logvar), expected, atol=1e-6)


def test_calibrated_nll_uses_the_batchs_maximum_likelihood_variance() -> None:
    target = torch.zeros(2, 1, 1, 2)
    reconstruction = torch.tensor([[[[1.0, 1.0]]], [[[0.0, 2.0]]]])
    nll, variance = calibrated_gaussian_nll(reconstruction, target)
    # squared errors [1, 1] and [0, 4]: sigma*^2 = 6/4 = 1.5; per image, D = 2:
    # sum / (2 * 1.5) + 2/2 * (log 1.5 + log 2 pi)
    constant = math.log(1.5) + math.log(2 * math.pi)
    assert variance.item() == pytest.approx(1.5)
    assert nll.tolist() == pytest.approx([2 / 3 + constant, 4 / 3 + constant])
    # the mean over the batch is D/2 (1 + log sigma*^2 + log 2 pi): the likelihood at sigma*
    assert nll.mean().item() == pytest.approx(1 + constant)
    perfect, variance = calibrated_gaussian_nll(target, target)
    assert torch.isfinite(perfect).all() and variance.item() == pytest.approx(1e-6)


def test_reparameterized_samples_carry_gradients_and_the_encoders_shapes() -> None:
    torch.manual_seed(0)
    encoder = ConditionalEncoder(24, 3, 1, 28, width=8)
    code = encoder(torch.randn(5, 1, 28, 28), torch.tensor([0, 1, 2, 0, 1]))
    mu, logvar = code.chunk(2, dim=1)
    assert mu.shape == logvar.shape == (5, 12)
    z = reparameterize(mu, logvar)
    z.sum().backward()
    assert encoder.head.weight.grad is not None
    flat = reparameterize(torch.zeros(20000, 1), torch.full((20000, 1), math.log(4.0)))
    assert flat.std().item() == pytest.approx(2.0, rel=0.05)  # sigma = exp(log 4 / 2)


def test_the_cvae_learns_to_reconstruct_its_digits(registry, mnist_small) -> None:
    """A few hundred steps on the small MNIST sample: the calibrated decoder's sigma (its
    reconstruction error) falls well below that of the untrained decoder."""
    spec, data = task_data(registry.get("cvae"), mnist_small)
    torch.manual_seed(0)
    variant = registry.create("cvae", {"width": 8, "latent_dim": 8}, spec)
    optimizer = torch.optim.Adam(variant.generator.parameters(), lr=2e-3)
    images = torch.from_numpy(data.images[:64]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    labels = torch.from_numpy(data.labels[:64]).long()
    batch = {"image": images, "label": labels}
    first = variant.generator_loss(batch).logs["sigma"]
    for _ in range(150):
        out = variant.generator_loss(batch)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    assert out.logs["sigma"] < 0.7 * first


def test_the_vaegan_learns_to_reconstruct_through_its_critics_features(
    registry, mnist_small, tmp_path
) -> None:
    """VAE-GAN through the one loop: with no pixel loss at all, the reconstruction measured
    in the critic's features makes decoding an image's code give that image back (pixel
    error 3x below a prior sample of the same class); a relativistic loss, which pairs
    one fake with each real image, is refused."""
    from augment.data.images import to_tensor
    from augment.errors import ConfigError
    from augment.train import TrainConfig, fit

    spec, data = task_data(registry.get("vaegan"), mnist_small)
    # a faster learning rate than the default 2e-4, so 150 steps suffice here
    params = {"width": 16, "lr_g": 1e-3, "lr_d": 1e-3}
    variant = registry.create("vaegan", params, spec, seed=0)
    config = TrainConfig(
        steps=150, batch_size=32, checkpoint_every=150, sample_every=150, collapse_warning=0.0
    )
    fit(variant, data, config, outputs(tmp_path), 0, progress=False)
    images, labels = to_tensor(data.images), torch.as_tensor(data.labels)
    network = variant.generator.eval()
    with torch.no_grad():
        mu, _ = network["encoder"](images, labels).chunk(2, dim=1)
        reconstruction = network["decoder"](mu, labels)
        prior = network["decoder"](torch.randn_like(mu), labels)
    error = (reconstruction - images).square().mean()
    assert error < (prior - images).square().mean() / 2
    with pytest.raises(ConfigError, match="vaegan's critic sees two fakes per real image"):
        registry.create("vaegan", {"loss": "ragan"}, spec)


def test_the_autoencoder_critic_judges_each_image_on_its_own() -> None:
    """BEGAN's critic (and the batch-norm-free generator it decodes with): an image's
    reconstruction and class logits do not depend on the rest of its batch, in training
    mode too."""
    torch.manual_seed(0)
    critic = AutoencoderCritic(16, 3, 1, 28, width=8).train()
    images = torch.randn(4, 1, 28, 28)
    together = critic(images)
    assert together.reconstruction.shape == images.shape
    assert together.class_logits.shape == (4, 3)
    alone = critic(images[:1])
    assert torch.allclose(alone.reconstruction, together.reconstruction[:1], atol=1e-5)
    assert torch.allclose(alone.class_logits, together.class_logits[:1], atol=1e-5)
