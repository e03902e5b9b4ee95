"""The residual conditional GAN networks (augment.nn.resnet_gan) and exporting them."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from augment import losses
from augment.export import baked, running_norms, standing_statistics
from augment.nn.attention import SelfAttention2d
from augment.nn.resnet_gan import (
    ConditionalBatchNorm2d,
    ResNetDiscriminator,
    ResNetGenerator,
    latent_chunks,
    stage_channels,
)
from augment.variant import DataSpec

NORM_BUFFERS = {"running_mean", "running_var", "num_batches_tracked"}


@pytest.mark.parametrize(("size", "channels"), [(28, 1), (32, 3), (64, 3)])
def test_networks_fit_every_square_size_of_the_spatial_plan(size: int, channels: int) -> None:
    torch.manual_seed(0)
    generator = ResNetGenerator(40, 5, channels, size, width=8, embed_dim=6).train()
    critic = ResNetDiscriminator(5, channels, size, width=8)
    labels = torch.tensor([0, 4, 2])
    images = generator(torch.randn(3, 40), labels)
    assert images.shape == (3, channels, size, size)
    assert images.abs().max() < 1  # tanh
    logits, classes = critic(images, labels)
    assert logits.shape == (3,) and classes is None
    logits.sum().backward()  # gradients reach the generator through the critic
    assert generator.embed.weight.grad is not None


def test_channels_and_latent_chunks() -> None:
    assert stage_channels(32, 2) == [128, 64, 32]  # 7, 14, 28 px
    assert stage_channels(32, 4) == [128, 128, 128, 64, 32]  # capped at 4 x width
    assert latent_chunks(64, 2) == [22, 21, 21] and sum(latent_chunks(65, 4)) == 65
    with pytest.raises(ValueError, match="one chunk of z per block"):
        latent_chunks(2, 2)
    with pytest.raises(ValueError, match="conditions by projection"):
        ResNetDiscriminator(3, 1, 28, conditioning="concat")


def test_conditional_batch_norm_is_batch_norm_at_a_zero_condition() -> None:
    torch.manual_seed(0)
    norm = ConditionalBatchNorm2d(4, 3, spectral_norm=False).train()
    x = torch.randn(6, 4, 5, 5) * 3 + 1
    plain = nn.functional.batch_norm(x, None, None, training=True)
    assert torch.allclose(norm(x, torch.zeros(6, 3)), plain, atol=1e-5)
    assert not torch.allclose(norm(x, torch.ones(6, 3)), plain, atol=1e-3)


def test_the_class_reaches_every_block_unless_faded_out() -> None:
    torch.manual_seed(0)
    generator = ResNetGenerator(30, 4, 1, 28, width=8).eval()
    z = torch.randn(1, 30).repeat(2, 1)
    with torch.no_grad():
        two = generator(z, torch.tensor([0, 3]))
        assert not torch.allclose(two[0], two[1])
        generator.condition_strength.fill_(0.0)  # transitional conditioning at lambda = 0
        faded = generator(z, torch.tensor([0, 3]))
    assert torch.allclose(faded[0], faded[1])


def test_export_bakes_spectral_norm_into_a_copy() -> None:
    torch.manual_seed(0)
    module = nn.Sequential(spectral_norm(nn.Linear(4, 3)), nn.Tanh()).eval()
    x = torch.randn(2, 4)
    plain = baked(module)
    assert not any(parametrize.is_parametrized(m) for m in plain.modules())
    assert parametrize.is_parametrized(module[0])  # the live module keeps its spectral norm
    with torch.no_grad():
        assert torch.allclose(plain(x), module(x), atol=1e-6)
    free = nn.Linear(2, 2)
    assert baked(free) is free  # nothing to bake: no copy


def test_standing_statistics_are_the_generators_own_and_move_nothing_else(registry) -> None:
    torch.manual_seed(0)
    spec = DataSpec(image_size=32, channels=3, classes=("a", "b", "c"))
    variant = registry.create("biggan", {"width": 8}, spec, seed=0)
    generator = variant.generator.eval()
    for norm in running_norms(generator):  # statistics that are not this generator's
        norm.running_mean.add_(2.0)
        norm.running_var.mul_(4.0)
    generator.beside = nn.BatchNorm2d(4).eval()  # BN off the sampling path (an encoder's)
    generator.beside.running_mean.fill_(3.0)
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    standing = standing_statistics(variant, generator, batches=4, batch_size=64)

    assert standing is not generator and not standing.training
    assert all(torch.equal(v, before[k]) for k, v in generator.state_dict().items())
    moved = {k for k, v in standing.state_dict().items() if not torch.equal(v, before[k])}
    assert moved and all(k.rsplit(".", 1)[1] in NORM_BUFFERS for k in moved)
    assert not any(k.startswith("beside.") for k in moved)  # never ran: keeps its statistics
    # eval mode with standing statistics ~ batch statistics of a fresh large batch
    inputs = variant.example_inputs(512, seed=7)
    with torch.no_grad():
        batch_stats = standing_statistics(variant, generator, batches=1, batch_size=512)
        for norm in running_norms(batch_stats):
            norm.train()  # normalize by the batch's own mean and variance
        reference = batch_stats(*inputs.values())
        err_standing = (standing(*inputs.values()) - reference).abs().mean()
        err_copied = (generator(*inputs.values()) - reference).abs().mean()
    assert err_standing < 0.1 and err_standing < err_copied / 5  # measured: 0.06 and 0.73
    assert standing_statistics(variant, generator, batches=0) is generator


def test_self_attention_starts_as_the_identity_and_reads_every_position() -> None:
    torch.manual_seed(0)
    attend = SelfAttention2d(16, spectral_norm=False)
    x = torch.randn(2, 16, 6, 6)
    assert torch.equal(attend(x), x)  # gamma = 0 at the start (SAGAN section 4)
    with torch.no_grad():
        attend.gamma.fill_(1.0)
        attend.query.weight.zero_()  # equal scores: every position reads the mean value
        pooled = nn.functional.max_pool2d(attend.value(x), 2).mean(dim=(2, 3))  # [N, C/2]
        expected = x + attend.out(pooled[:, :, None, None]).expand_as(x)
        assert torch.allclose(attend(x), expected, atol=1e-5)
        x2 = x.clone()
        x2[:, :, 5, 5] += 10.0  # one far corner changes the output at the opposite one
        attend.query.weight.normal_()
        assert not torch.allclose(attend(x2)[:, :, 0, 0], attend(x)[:, :, 0, 0])


def test_attention_goes_where_asked_and_adds_no_weights_elsewhere() -> None:
    torch.manual_seed(0)
    plain = ResNetGenerator(40, 5, 1, 28, width=8)
    torch.manual_seed(0)
    attending = ResNetGenerator(40, 5, 1, 28, width=8, attention=14)
    assert [type(m).__name__ for m in attending.attention] == ["SelfAttention2d", "Identity"]
    extra = set(attending.state_dict()) - set(plain.state_dict())
    assert extra and all(key.startswith("attention.0.") for key in extra)
    critic = ResNetDiscriminator(5, 1, 28, width=8, attention=7)
    assert [type(m).__name__ for m in critic.attention] == [
        "Identity",
        "SelfAttention2d",
        "Identity",
    ]
    assert not any(k.startswith("attention") for k in ResNetDiscriminator(5, 1, 28).state_dict())
    with pytest.raises(
        ValueError, match=r"attention at side 9: the blocks output sides \[14, 28\]"
    ):
        ResNetGenerator(40, 5, 1, 28, attention=9)
    with pytest.raises(ValueError, match="needs >= 8 channels"):
        SelfAttention2d(4)


def test_class_affines_are_each_norms_gains_and_biases_at_a_zero_latent() -> None:
    generator = ResNetGenerator(9, 3, 1, 28, width=8, embed_dim=4)
    affines = generator.class_affines()
    norms = [n for b in generator.blocks for n in (b.norm1, b.norm2)]
    assert len(affines) == 2 * len(norms) == 8
    labels = torch.arange(3)
    for i, norm in enumerate(norms):
        chunk = norm.gain.weight.shape[1] - 4  # the block's share of z, set to 0
        condition = torch.cat([generator.embed(labels), torch.zeros(3, chunk)], dim=1)
        assert torch.allclose(affines[2 * i], norm.gain(condition), atol=1e-6)
        assert torch.allclose(affines[2 * i + 1], norm.bias(condition), atol=1e-6)


def test_gsr_adds_its_penalty_to_the_generator_loss_and_shrinks_the_spectra(registry) -> None:
    from augment.variant import DataSpec

    data = DataSpec(28, 1, tuple("abc"))
    plain = registry.create("biggan", {"width": 8}, data, 0)
    regularized = registry.create("biggan", {"width": 8, "gsr": 0.5}, data, 0)
    batch = {"image": torch.zeros(4, 1, 28, 28), "label": torch.tensor([0, 1, 2, 0])}
    assert "gsr" not in plain.generator_loss(batch).logs
    out = regularized.generator_loss(batch)
    assert out.logs["gsr"] > 0 and torch.isfinite(out.loss)
    # the penalty's gradient alone, a few steps: every class's grouped spectrum shrinks
    generator = regularized.generator
    optimizer = torch.optim.SGD(generator.parameters(), lr=0.05)
    before = [losses.group_spectral_penalty(a).item() for a in generator.class_affines()]
    for _ in range(5):
        optimizer.zero_grad()
        regularized.group_spectral_penalty().backward()
        optimizer.step()
    after = [losses.group_spectral_penalty(a).item() for a in generator.class_affines()]
    assert all(a < b for a, b in zip(after, before, strict=True))
