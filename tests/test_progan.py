"""Progressive growing (augment.nn.progan, the progan plugin): the growth schedule by hand,
fade-in blending, equalized learning rate and pixel norm, a run resumed mid-fade equal to
an uninterrupted one, and the exported model independent of batching."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tiny import SPEC, outputs

from augment.checkpoint import load_checkpoint
from augment.data.batches import TrainingData
from augment.nn.progan import (
    EqualizedConv2d,
    PixelNorm,
    ProgressiveDiscriminator,
    ProgressiveGenerator,
    growth_at,
)
from augment.train import TrainConfig, fit


def test_growth_schedule_by_hand():
    """Three levels (7, 14, 28 px) over a run: a third each; the first half of a new
    level's third fades it in."""
    assert growth_at(0.1, 3, 0.5) == (0, 1.0)
    level, alpha = growth_at(0.5, 3, 0.5)  # half-way through level 1's span
    assert level == 1 and alpha == pytest.approx(1.0)
    level, alpha = growth_at(4 / 9, 3, 0.5)  # a third into level 1: two thirds faded in
    assert level == 1 and alpha == pytest.approx(2 / 3)
    assert growth_at(1.0, 3, 0.5) == (2, 1.0)
    assert growth_at(0.7, 3, 0.0) == (2, 1.0)  # no fade: each level switched on at once


def test_fade_in_blends_the_old_and_new_levels():
    torch.manual_seed(0)
    generator = ProgressiveGenerator(8, 10, 1, 28, width=8).eval()
    z, label = torch.randn(3, 8), torch.tensor([0, 4, 9])
    images = {}
    for alpha in (0.0, 0.25, 1.0):
        generator.grow(1, alpha)
        images[alpha] = generator(z, label)
        assert images[alpha].shape == (3, 1, 28, 28)
    # linear in alpha: a quarter of the way from the 7-px level (upsampled) to the 14-px one
    expected = torch.lerp(images[0.0], images[1.0], 0.25)
    assert torch.allclose(images[0.25], expected, atol=1e-5)
    generator.grow(0, 1.0)  # a 7-px image shown at 28 px: constant 4x4 blocks
    coarse = generator(z, label)
    assert torch.equal(
        coarse, coarse[..., ::4, ::4].repeat_interleave(4, 2).repeat_interleave(4, 3)
    )
    critic = ProgressiveDiscriminator(10, 1, 28, width=8)
    for level in range(3):
        critic.grow(level, 0.5)
        assert critic(coarse, label).logits.shape == (3,)


def test_equalized_layers_and_pixel_norm():
    """He's constant applied at run time: N(0, 1) weights times sqrt(2 / fan_in); pixel
    norm gives every pixel's feature vector a unit mean square."""
    conv = EqualizedConv2d(4, 6, 3)
    assert conv.weight.std().item() == pytest.approx(1.0, abs=0.2)
    assert conv.scale == pytest.approx(math.sqrt(2 / 36))
    x = torch.randn(2, 6, 5, 5) * 7
    normed = PixelNorm(6)(x)
    assert torch.allclose(normed.square().mean(dim=1), torch.ones(2, 5, 5), atol=1e-4)
    flat = torch.randn(3, 10) * 5
    assert torch.allclose(PixelNorm(10)(flat).square().mean(dim=1), torch.ones(3), atol=1e-4)


class Killed(Exception):
    """Stands for a SIGKILL: the run stops between two steps, after a checkpoint."""


def test_a_run_killed_mid_fade_resumes_exactly(registry, mnist_small, tmp_path):
    """A 9-step run killed after step 4 (level 1 two thirds faded in) and started again
    ends with the weights, growth and history of an uninterrupted one: the growth is a
    function of the step, restored with it."""
    config = TrainConfig(steps=9, batch_size=16, checkpoint_every=4, sample_every=100)
    data = TrainingData(*mnist_small)

    def train(root, kill_at=None):
        torch.use_deterministic_algorithms(True)
        try:
            variant = registry.create("progan", {"width": 8, "latent_dim": 16}, SPEC, seed=1)
            schedule = variant.at_step

            def at_step(step, steps):
                if step == kill_at:
                    raise Killed(variant.generator.stage)
                schedule(step, steps)

            variant.at_step = at_step
            fit(variant, data, config, outputs(root), seed=1, progress=False)
            return variant
        finally:
            torch.use_deterministic_algorithms(False)

    train(tmp_path / "straight")
    with pytest.raises(Killed) as killed:
        train(tmp_path / "resumed", kill_at=4)
    level, alpha = killed.value.args[0]
    assert level == 1 and alpha == pytest.approx(2 / 3)  # stopped mid-fade
    assert load_checkpoint(tmp_path / "resumed/checkpoint.pt")["step"] == 4
    resumed = train(tmp_path / "resumed")
    assert resumed.generator.stage == (2, 1.0)
    a, b = (load_checkpoint(tmp_path / name / "checkpoint.pt") for name in ("straight", "resumed"))
    for key in ("generator", "discriminator", "ema"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name} differs after the resume"
    assert a["history"] == b["history"]


def test_the_export_does_not_depend_on_batching(registry, tmp_path):
    from augment.export import export_onnx
    from augment.runtime import OnnxGenerator

    variant = registry.create("progan", {"width": 8, "latent_dim": 16}, SPEC, seed=0)
    export_onnx(variant, variant.generator.eval(), tmp_path / "progan.onnx")
    model = OnnxGenerator(tmp_path / "progan.onnx", task="synthesize")
    labels = [0, 9, 1, 4, 5]
    whole = model.generate(labels, seed=7)
    for batch in (1, 2):
        assert np.array_equal(model.generate(labels, seed=7, batch_size=batch), whole)
