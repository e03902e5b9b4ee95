"""MUNIT's content/style split and UNIT's shared latent space (augment.nn.content_style and
the munit and unit plugins); the conformance kit covers their export and resume."""

from __future__ import annotations

import pytest
import torch

from augment.errors import ConfigError
from augment.nn.content_style import ContentEncoder, Decoder
from augment.variant import DataSpec

DATA = DataSpec(28, 1, tuple("0123"), domains=("plain", "styled"))


@pytest.mark.parametrize("side", [28, 27, 9])
def test_encoder_and_decoder_round_trip_any_side(side: int) -> None:
    encoder, decoder = ContentEncoder(3, 8, 1), Decoder(3, 8, 1, code_dim=5)
    content = encoder(torch.randn(2, 3, side, side))
    quarter = -(-side // 4)  # two stride-2 steps: ceil(ceil(side / 2) / 2)
    assert content.code.shape == (2, 32, quarter, quarter)
    image = decoder(content, torch.randn(2, 5))
    assert image.shape == (2, 3, side, side) and image.abs().max() < 1


def test_munit_style_is_the_noise_input_and_changes_the_translation(registry) -> None:
    munit = registry.create("munit", {"width": 8, "noise": 4}, DATA, seed=0)
    generator = munit.generator.eval()
    image, into_b = torch.rand(3, 1, 28, 28) * 2 - 1, torch.ones(3, dtype=torch.int64)
    style = torch.randn(3, 4)
    with torch.no_grad():
        first = munit.translate(generator, image, into_b, style)
        same = munit.translate(generator, image, into_b, style)
        other = munit.translate(generator, image, into_b, torch.randn(3, 4))
    assert torch.equal(first, same)  # a function of (image, style): nothing drawn inside
    assert (first - other).abs().amax(dim=(1, 2, 3)).min() > 1e-3  # every image changes
    assert munit.extra_inputs() == ("domain", "noise")


def test_munit_needs_a_style_code() -> None:
    from augment.registry import Registry

    with pytest.raises(ConfigError, match="noise is the size of MUNIT's style code"):
        Registry.from_plugins().create("munit", {"noise": 0}, DATA, seed=0)


def test_unit_shares_its_innermost_blocks_between_the_domains(registry) -> None:
    """The shared encoder and decoder blocks learn from either domain alone; a domain's
    private layers only from its own images."""
    unit = registry.create("unit", {"width": 8, "blocks": 4}, DATA, seed=0)
    g = unit.generator
    assert unit.extra_inputs() == ("domain",)  # deterministic: translates with mu
    for domain, other in (("a", "b"), ("b", "a")):
        g.zero_grad(set_to_none=True)
        image = torch.rand(2, 1, 28, 28) * 2 - 1
        # one domain's VAE path: its encoder, the shared blocks, its decoder
        unit.decode(g, domain, unit.encode(g, domain, image)).sum().backward()
        for shared in ("shared_encoder", "shared_decoder"):
            assert all(p.grad is not None for p in g[shared].parameters()), shared
        assert all(p.grad is not None for p in g[f"encoder_{domain}"].parameters())
        assert all(p.grad is None for p in g[f"encoder_{other}"].parameters())
        assert all(p.grad is None for p in g[f"decoder_{other}"].parameters())
