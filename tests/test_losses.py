"""Adversarial losses and penalties against hand-computed values; DiffAugment; EMA."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augment import losses
from augment.nn.diffaugment import DiffAugment
from augment.nn.ema import EMA

REAL = torch.tensor([2.0, 0.0])
FAKE = torch.tensor([-1.0, 1.0])


def sp(x: float) -> float:  # softplus
    return math.log1p(math.exp(x))


@pytest.mark.parametrize(
    ("kind", "d_expected", "g_expected"),
    [
        ("ns", (sp(-2) + sp(0)) / 2 + (sp(-1) + sp(1)) / 2, (sp(1) + sp(-1)) / 2),
        ("minimax", (sp(-2) + sp(0)) / 2 + (sp(-1) + sp(1)) / 2, -(sp(-1) + sp(1)) / 2),
        ("wasserstein", 0.0 - 1.0, -0.0),
        ("hinge", (0 + 1) / 2 + (0 + 2) / 2, -0.0),
        ("lsgan", 0.5 * (1 + 1) / 2 + 0.5 * (1 + 1) / 2, 0.5 * (4 + 0) / 2),
        # real - fake = [3, -1]
        ("rsgan", (sp(-3) + sp(1)) / 2, (sp(3) + sp(-1)) / 2),
        # mean real 1, mean fake 0
        # fake - mean real = [-2, 0], real - mean fake = [2, 0]
        (
            "ragan",
            (sp(-2) + sp(0)) / 2 + (sp(-2) + sp(0)) / 2,
            (sp(2) + sp(0)) / 2 + (sp(2) + sp(0)) / 2,
        ),
        ("rahinge", (0 + 1) / 2 + (0 + 1) / 2, (3 + 1) / 2 + (3 + 1) / 2),
    ],
)
def test_losses_match_hand_computed_values(kind, d_expected, g_expected):
    assert losses.discriminator_loss(kind, REAL, FAKE).item() == pytest.approx(d_expected)
    assert losses.generator_loss(kind, FAKE, REAL).item() == pytest.approx(g_expected)


def test_relativistic_generator_loss_needs_real_logits():
    with pytest.raises(ValueError, match="relativistic"):
        losses.generator_loss("ragan", FAKE)


def test_gradient_penalty_of_a_linear_critic():
    # critic(x) = sum(w * x) has gradient w everywhere: penalty = (|w| - 1)^2
    w = torch.full((1, 2, 2), 0.5)  # |w| = 1 -> zero penalty
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    assert losses.gradient_penalty(critic, real, fake).item() == pytest.approx(0.0, abs=1e-10)
    double = lambda x: 2 * critic(x)  # noqa: E731
    assert losses.gradient_penalty(double, real, fake).item() == pytest.approx(1.0)


def test_r1_penalty_is_the_squared_gradient_norm():
    real = torch.randn(3, 1, 2, 2, requires_grad=True)
    logits = (3 * real).flatten(1).sum(1)
    assert losses.r1_penalty(logits, real).item() == pytest.approx(9 * 4)


def test_diffaugment_keeps_shapes_and_is_differentiable():
    x = torch.randn(8, 3, 16, 16, requires_grad=True)
    out = DiffAugment("color,translation,cutout")(x)
    assert out.shape == x.shape
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert torch.equal(DiffAugment("")(x), x)
    cut = DiffAugment("cutout")(torch.ones(64, 1, 8, 8))
    assert (cut == 0).flatten(1).sum(1).float().mean() > 4  # a square of about 4x4 is zeroed
    with pytest.raises(ValueError, match="unknown DiffAugment policy"):
        DiffAugment("rotate")


def test_translation_moves_content_and_fills_zeros():
    x = torch.zeros(256, 1, 8, 8)
    x[:, :, 3:5, 3:5] = 1
    out = DiffAugment("translation")(x)
    assert torch.equal(out.sum((1, 2, 3)), x.sum((1, 2, 3)))  # a 1 px shift keeps the blob
    assert (out != x).any()


def test_ada_probability_follows_the_overfitting_heuristic():
    from augment.nn.diffaugment import AugmentProbability

    ada = AugmentProbability(target=0.6, speed=100)
    sure = torch.tensor([2.0, 1.0, 3.0, 0.5])  # r_t = 1 > 0.6: D has memorized, raise p
    ada.update(sure)
    assert float(ada.p) == pytest.approx(4 / 100)
    for _ in range(30):
        ada.update(sure)
    assert float(ada.p) == 1.0  # clipped
    unsure = torch.tensor([1.0, -1.0, -2.0, 0.3])  # r_t = 0 < 0.6: lower it
    ada.update(unsure)
    assert float(ada.p) == pytest.approx(1 - 4 / 100)

    x = torch.ones(512, 1, 8, 8)
    assert torch.equal(DiffAugment("cutout")(x, 0.0), x)  # p 0: the identity
    torch.manual_seed(0)
    changed = (DiffAugment("cutout")(x, 0.25) != x).flatten(1).any(1).float().mean()
    assert 0.18 < float(changed) < 0.32  # about a quarter of the images are cut


def test_ema_warms_up_then_tracks():
    live = nn.Linear(1, 1, bias=False)
    ema = EMA(live, decay=0.9)
    with torch.no_grad():
        live.weight.fill_(1.0)
    start = ema.shadow.weight.item()
    ema.update(live)  # first decay is min(0.9, 2/11)
    expected = start + (1 - 2 / 11) * (1.0 - start)
    assert ema.shadow.weight.item() == pytest.approx(expected)
    for _ in range(200):
        ema.update(live)
    assert ema.shadow.weight.item() == pytest.approx(1.0, abs=1e-6)
    assert not ema.shadow.weight.requires_grad


def test_mode_seeking_is_the_inverse_gap_ratio():
    a, b = torch.zeros(2, 1, 2, 2), torch.full((2, 1, 2, 2), 0.5)  # image gap 0.5
    za, zb = torch.zeros(2, 4), torch.full((2, 4), 2.0)  # noise gap 2
    assert losses.mode_seeking(a, b, za, zb).item() == pytest.approx(1 / (0.25 + 1e-5))
    assert losses.mode_seeking(a, a, za, zb).item() == pytest.approx(1e5)  # collapsed: huge


def test_mode_seeking_generator_loss_pairs_labels(registry):
    from augment.variant import DataSpec

    variant = registry.create("cgan", {"mode_seeking": 1.0}, DataSpec(28, 1, tuple("0123")), 0)
    batch = {"image": torch.zeros(8, 1, 28, 28), "label": torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])}
    out = variant.generator_loss(batch)
    assert out.logs["mode_seeking"] > 0 and torch.isfinite(out.loss)


def test_paired_batches_and_a_term_a_game():
    from augment.tasks.synthesis import paired, with_games_mode_seeking
    from augment.variant import LossOutput

    batch = {"image": torch.arange(5.0).view(5, 1, 1, 1), "label": torch.tensor([3, 1, 4, 1, 5])}
    pairs = paired(batch)  # the first half (2 rows) twice
    assert pairs["label"].tolist() == [3, 1, 3, 1]
    assert pairs["image"].flatten().tolist() == [0.0, 1.0, 0.0, 1.0]
    a, b = torch.zeros(2, 1, 2, 2), torch.full((2, 1, 2, 2), 0.5)
    za, zb = torch.zeros(2, 4), torch.full((2, 4), 2.0)  # each game's term 1 / 0.25
    games = {
        "coarse": (torch.cat([a, b]), torch.cat([za, zb])),
        "fine": (torch.cat([b, a]), torch.cat([za, zb])),
    }
    out = with_games_mode_seeking(LossOutput(torch.tensor(1.0), {"g_adv": 1.0}), games, 0.1)
    term = 1 / (0.25 + 1e-5)
    assert out.logs["mode_seeking_coarse"] == pytest.approx(term)
    assert out.logs["mode_seeking"] == pytest.approx(2 * term)
    assert out.loss.item() == pytest.approx(1.0 + 0.1 * 2 * term)
    off = LossOutput(torch.tensor(1.0), {})
    assert with_games_mode_seeking(off, games, 0.0) is off


def test_lecam_penalty_and_its_moving_anchors() -> None:
    anchors = losses.LeCamAnchors(gamma=0.5)
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-2.0, 0.0])
    # anchors start at 0: (1^2 + 3^2) / 2 + ((-2)^2 + 0^2) / 2
    assert float(anchors(real, fake)) == pytest.approx(5.0 + 2.0)
    assert (float(anchors.real), float(anchors.fake)) == (1.0, -0.5)  # 0.5 * 0 + 0.5 * mean
    # now real logits are pulled towards alpha_F = -0.5, fake ones towards alpha_R = 1
    expected = ((1.5**2 + 3.5**2) / 2) + ((3.0**2 + 1.0**2) / 2)
    assert float(anchors(real, fake)) == pytest.approx(expected)
    assert "real" in anchors.state_dict() and "fake" in anchors.state_dict()


def test_began_equilibrium_steps_k_and_measures_convergence() -> None:
    equilibrium = losses.BoundaryEquilibrium(gamma=0.5, lambda_k=0.1)
    real, fake = torch.tensor(0.4, requires_grad=True), torch.tensor(0.1, requires_grad=True)
    # k_0 = 0: L_D = L(x); then k_1 = clip(0 + 0.1 * (0.5 * 0.4 - 0.1), 0, 1) = 0.01
    loss = equilibrium.discriminator_loss(real, fake)
    assert loss.item() == pytest.approx(0.4) and float(equilibrium.k) == pytest.approx(0.01)
    # L_D = 0.4 - 0.01 * 0.3, whose gradient reaches L(G(z)) with -k_t (k_t before the step)
    fake = torch.tensor(0.3, requires_grad=True)
    loss = equilibrium.discriminator_loss(real, fake)
    assert loss.item() == pytest.approx(0.4 - 0.01 * 0.3)
    loss.backward()
    assert float(fake.grad) == pytest.approx(-0.01)
    assert float(equilibrium.k) == pytest.approx(0.0)  # 0.01 + 0.1 * (0.2 - 0.3) clipped at 0
    # M = L(x) + |gamma L(x) - L(G(z))| = 0.4 + |0.2 - 0.3|
    assert equilibrium.convergence(real, fake) == pytest.approx(0.5)
    for _ in range(100):  # fakes that reconstruct too well push k up to its clip at 1
        equilibrium.discriminator_loss(torch.tensor(1.0), torch.tensor(0.0))
    assert float(equilibrium.k) == 1.0 and "k" in equilibrium.state_dict()


def test_group_spectral_penalty_groups_each_class_and_squares_its_top_singular_value() -> None:
    assert [losses.group_shape(n) for n in (16, 96, 48, 7)] == [(4, 4), (8, 12), (6, 8), (1, 7)]
    # class 0: [[3, 0], [0, 4]] -> sigma_max 4; class 1: [[1, 1], [1, 1]] -> 2 (rank one)
    affine = torch.tensor([[3.0, 0.0, 0.0, 4.0], [1.0, 1.0, 1.0, 1.0]], requires_grad=True)
    penalty = losses.group_spectral_penalty(affine)
    assert penalty.item() == pytest.approx((16 + 4) / 2)
    # d sigma^2 / dG = 2 sigma u v^T, halved by the mean over 2 classes. Class 0: u = v =
    # e_2, so only its 4 moves (2 * 4 / 2); class 1: u = v = [1, 1] / sqrt(2), every entry
    # 2 * 2 * (1/2) / 2
    penalty.backward()
    assert affine.grad[0].tolist() == pytest.approx([0.0, 0.0, 0.0, 4.0])
    assert affine.grad[1].tolist() == pytest.approx([1.0, 1.0, 1.0, 1.0])


def test_multiscale_losses_and_feature_matching_by_hand() -> None:
    """Two scales, each (one map, logits): the sums and means pix2pixHD and SPADE use."""
    real = [
        [torch.ones(1, 1, 2, 2), torch.tensor([2.0])],
        [torch.zeros(1, 1, 2, 2), torch.tensor([0.5])],
    ]
    fake = [
        [torch.zeros(1, 1, 2, 2), torch.tensor([-1.0])],
        [torch.full((1, 1, 2, 2), 3.0), torch.tensor([1.0])],
    ]
    # |1 - 0| at the first scale, |0 - 3| at the second: the mean of 1 and 3
    assert losses.feature_matching(real, fake).item() == pytest.approx(2.0)
    # hinge: G's loss is -D(fake) summed over scales; D's is relu(1 - r) + relu(1 + f) a scale
    assert losses.multiscale_generator_loss("hinge", fake, real).item() == pytest.approx(0.0)
    per_scale = losses.multiscale_discriminator_losses("hinge", real, fake)
    assert [x.item() for x in per_scale] == pytest.approx([0.0 + 0.0, 0.5 + 2.0])
    # a relativistic kind reads the real logits: rsgan, softplus(-(f - r)) a scale
    expected = F.softplus(torch.tensor(3.0)) + F.softplus(torch.tensor(-0.5))
    assert losses.multiscale_generator_loss("rsgan", fake, real).item() == pytest.approx(
        expected.item()
    )


def lattice_batch(n: int = 16, side: int = 32, amplitude: float = 0.0, seed: int = 0) -> Tensor:
    """Smooth random colour images f32[n, 3, side, side] in about [-1, 1], plus a diagonal
    cosine of ``amplitude`` at (0.25, 0.25) cycles per pixel (a lattice)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, side // 4, side // 4, generator=generator) * 2 - 1
    images = F.interpolate(coarse, size=side, mode="bilinear", align_corners=False)
    ys, xs = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    return images + amplitude * torch.cos(2 * torch.pi * 0.25 * (ys + xs)).float()


def test_log_power_spectrum_is_the_metrics_spectrum_in_torch() -> None:
    from augment.metrics.spectrum import power_spectrum

    images = lattice_batch(amplitude=0.3)
    ours = torch.fft.fftshift(losses.log_power_spectrum(images)).exp().numpy()
    uint8 = ((images.permute(0, 2, 3, 1).numpy() + 1) * 127.5).astype(np.float64)
    theirs = power_spectrum(uint8) / 127.5**2 / (32 * 32)  # the same images in [0, 255]
    np.testing.assert_allclose(ours, theirs + 1e-8, rtol=1e-3, atol=1e-9)
    grey = losses.log_power_spectrum(images[:, :1])  # one channel: its own values
    assert grey.shape == (32, 32) and torch.isfinite(grey).all()


def test_spectrum_anchor_follows_real_batches_and_penalizes_a_lattice() -> None:
    anchor = losses.SpectrumAnchor(32, gamma=0.5)
    real = lattice_batch(seed=0)
    anchor.observe(real)  # the first batch: the anchor is its spectrum
    torch.testing.assert_close(anchor.real, losses.log_power_spectrum(real))
    anchor.observe(lattice_batch(seed=1))
    expected = 0.5 * losses.log_power_spectrum(real) + 0.5 * losses.log_power_spectrum(
        lattice_batch(seed=1)
    )
    torch.testing.assert_close(anchor.real, expected)
    # images of the same kind are near the anchor; the same images with a lattice are not
    same_kind = float(anchor(lattice_batch(seed=2)))
    latticed = float(anchor(lattice_batch(seed=2, amplitude=0.3)))
    assert latticed > 4 * same_kind  # one frequency (and its mirror) of 1024
    assert set(anchor.state_dict()) == {"real", "started"}  # checkpointed with the critic


def test_spectral_penalty_removes_a_lattice_by_gradient_descent() -> None:
    """The penalty's gradient, alone, takes a lattice out of images it optimizes, and leaves
    their content (the smooth part) about as it was."""
    anchor = losses.SpectrumAnchor(32)
    anchor.observe(lattice_batch(n=64, seed=3))
    clean = lattice_batch(seed=4)
    images = lattice_batch(seed=4, amplitude=0.3).requires_grad_()

    def lattice_power(x: Tensor) -> float:  # luma power at (0.25, 0.25): FFT index [8, 8]
        return float(torch.fft.fft2(x.mean(dim=1)).abs().square().mean(dim=0)[8, 8])

    before, lattice_before = float(anchor(images.detach())), lattice_power(images.detach() - clean)
    optimizer = torch.optim.Adam([images], lr=0.01)
    for _ in range(150):
        optimizer.zero_grad()
        anchor(images).backward()
        optimizer.step()
    after = images.detach()
    assert float(anchor(after)) < before / 4
    assert lattice_power(after) < 0.05 * lattice_before
    assert (after - clean).abs().mean() < 0.05  # the cosine's own mean |.| is 0.19
