"""pix2pixHD's coarse-to-fine generator, multi-scale critics and feature matching
(augment.nn.pix2pixhd, the pix2pixhd plugin); the conformance kit covers export and resume."""

from __future__ import annotations

import pytest
import torch

from augment.nn.pix2pixhd import CoarseToFineGenerator, MultiScaleDiscriminator
from augment.variant import DataSpec


@pytest.mark.parametrize("side", [28, 27, 9])
def test_the_generator_round_trips_any_side(side: int) -> None:
    generator = CoarseToFineGenerator(3, width=4, global_blocks=2, local_blocks=1)
    image = generator(torch.rand(2, 3, side, side) * 2 - 1)
    assert image.shape == (2, 3, side, side) and image.abs().max() < 1


def test_each_critic_sees_the_input_halved_once_more() -> None:
    critics = MultiScaleDiscriminator(2, width=4, layers=2, scales=3)
    outputs = critics(torch.rand(1, 2, 28, 28))
    assert len(outputs) == 3 and all(len(maps) == 4 for maps in outputs)  # 3 steps + logits
    # 28 -> 15 -> 8 -> 8 px of logits; 14 -> 8 -> 5; 7 -> 4 -> 3
    assert [maps[-1].shape[-1] for maps in outputs] == [8, 5, 3]


def test_feature_matching_trains_both_the_global_and_the_local_generator(registry) -> None:
    data = DataSpec(28, 1, tuple("01"), domains=("plain", "styled"))
    variant = registry.create("pix2pixhd", {"width": 8, "d_width": 8, "blocks": 2}, data, seed=0)
    source = torch.rand(4, 1, 28, 28) * 2 - 1
    batch = {"image": source, "target": -source, "label": torch.zeros(4, dtype=torch.int64)}
    out = variant.generator_loss(batch)
    assert out.logs["feature_matching"] > 0 and set(out.logs) >= {"g_adv", "l1"}
    out.loss.backward()
    g = variant.generator
    for part in (g.global_encoder, g.global_decoder, g.stem, g.head):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
