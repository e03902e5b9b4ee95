"""StyleGAN2 (augment.nn.stylegan, the stylegan2 plugin): modulated convolution against
per-image weights built by hand, the noise inputs (fresh while training, fixed for the
export), the mapping network's learning-rate multiplier, minibatch std's finite gradient
on identical images, and ADA's probability rising when the critic memorizes a tiny set."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny import SPEC, outputs

from augment.data.batches import TrainingData
from augment.export import export_onnx
from augment.nn.dcgan import MinibatchStd
from augment.nn.progan import EqualizedLinear
from augment.nn.stylegan import ModulatedConv2d, StyleGenerator
from augment.runtime import OnnxGenerator
from augment.train import TrainConfig, fit


def test_modulated_convolution_equals_per_image_weights_by_hand():
    """Each image's own kernel w''_ijk = s_i w_ijk / sqrt(sum_ik (s_i w_ijk)^2 + eps), built
    explicitly and convolved image by image, gives what the batched form computes."""
    torch.manual_seed(0)
    conv = ModulatedConv2d(5, 7, 3, style_dim=4)
    x, w = torch.randn(3, 5, 6, 6), torch.randn(3, 4)
    styles = conv.affine(w)  # [3, 5]
    expected = []
    for n in range(3):
        kernel = conv.weight * conv.scale * styles[n][None, :, None, None]  # [7, 5, 3, 3]
        kernel = kernel / torch.sqrt(kernel.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        expected.append(F.conv2d(x[n : n + 1], kernel, padding=1))
    assert torch.allclose(conv(x, w), torch.cat(expected), atol=1e-5)
    # demodulated: unit-variance inputs give outputs of about unit variance, whatever w's scale
    big = conv(torch.randn(64, 5, 6, 6), 10 * torch.randn(64, 4))
    assert 0.5 < big[:, :, 1:-1, 1:-1].std().item() < 1.5
    plain = ModulatedConv2d(5, 2, 1, style_dim=4, demodulate=False)  # toRGB: s_i w_ij only
    kernel = plain.weight * plain.scale * plain.affine(w)[0][None, :, None, None]
    assert torch.allclose(plain(x, w)[:1], F.conv2d(x[:1], kernel), atol=1e-5)


def test_the_style_affine_starts_unmodulated_and_the_mapping_learns_slowly():
    """A's bias starts at 1 (s = 1 + small); the mapping's lr multiplier 0.01 stores W as
    N(0, 1) / 0.01 and scales it back, so the layer's output matches an ordinary one."""
    affine = ModulatedConv2d(8, 8, 3, style_dim=16).affine
    assert torch.equal(affine.bias, torch.ones(8)) and affine.lr_mul == 1
    torch.manual_seed(1)
    slow = EqualizedLinear(32, 16, lr_mul=0.01)
    assert slow.weight.std().item() == pytest.approx(100, rel=0.2)
    x = torch.randn(500, 32)
    assert slow(x).std().item() == pytest.approx(math.sqrt(2), rel=0.2)  # He gain kept


def test_noise_is_fresh_while_training_and_fixed_for_the_export():
    torch.manual_seed(0)
    generator = StyleGenerator(16, 10, 1, 28, width=8)
    for layer in generator.modules():  # make the noise matter (its strength starts at 0)
        if hasattr(layer, "noise_strength"):
            layer.noise_strength.data.fill_(0.5)
    z, label = torch.randn(2, 16), torch.tensor([3, 3])
    generator.train()
    assert not torch.equal(generator(z, label), generator(z, label))
    generator.eval()
    assert torch.equal(generator(z, label), generator(z, label))


def test_minibatch_std_has_a_finite_gradient_where_a_group_agrees():
    """Real digits share an exactly constant background; the std of identical features
    must not send NaN into the critic's gradients (the 1e-8 inside the root)."""
    x = torch.zeros(8, 3, 4, 4, requires_grad=True)
    MinibatchStd()(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_the_exported_generator_does_not_depend_on_batching(registry, tmp_path):
    variant = registry.create("stylegan2", {"width": 8, "latent_dim": 16}, SPEC, seed=0)
    export_onnx(variant, variant.generator.eval(), tmp_path / "stylegan2.onnx")
    model = OnnxGenerator(tmp_path / "stylegan2.onnx", task="synthesize")
    labels = [0, 9, 1, 4, 5]
    whole = model.generate(labels, seed=7)
    for batch in (1, 2):
        assert np.array_equal(model.generate(labels, seed=7, batch_size=batch), whole)


def test_ada_raises_p_when_the_critic_memorizes_a_tiny_set(registry, mnist_small, tmp_path):
    """Eight real digits: the critic soon tells them from the generator's (sign D(real) > 0
    beyond the 0.6 target) and ADA turns the augmentation up from 0."""
    images, labels = mnist_small[0][:8], mnist_small[1][:8]
    params = {"width": 8, "latent_dim": 16, "style_dim": 16, "ada_speed": 400}
    variant = registry.create("stylegan2", params, SPEC, seed=0)
    config = TrainConfig(steps=30, batch_size=8, checkpoint_every=100, sample_every=100)
    fit(variant, TrainingData(images, labels), config, outputs(tmp_path), seed=0, progress=False)
    assert float(variant.discriminator.ada.p) > 0.1
