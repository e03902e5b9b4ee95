"""Mask to image (SPADE): spatially-adaptive norms, the generator, the masks it learns
from, the exported contract (label maps in, one image per style code), the runtime's
checks and the GANFromMask transform."""

from __future__ import annotations

from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import torch
from tiny import outputs, task_data
from torch.nn import functional as F

from augment.errors import ConfigError, DataError, ModelError
from augment.export import export_onnx
from augment.nn.spade import SPADE, SPADEGenerator, instance_normalize
from augment.registry import Registry
from augment.runtime import OnnxGenerator
from augment.tasks.mask2image import MASK_LABELS, one_hot_masks
from augment.train import TrainConfig, fit
from augment.transforms import GANFromMask
from augment.variant import DataSpec


@pytest.fixture(scope="module")
def model(registry: Registry, mnist_small, tmp_path_factory) -> Path:  # noqa: ANN001
    """A spade model trained 40 steps on (digit, inverted digit) pairs, exported."""
    root = tmp_path_factory.mktemp("spade")
    spec, data = task_data(registry.get("spade"), mnist_small)
    variant = registry.create("spade", {"width": 8, "d_width": 8, "noise": 4}, spec, seed=0)
    config = TrainConfig(steps=40, batch_size=16, checkpoint_every=40, sample_every=40)
    fit(variant, data, config, outputs(root), seed=0, progress=False)
    export_onnx(variant, variant.generator.eval(), root / "spade.onnx")
    return root / "spade.onnx"


def digit_masks(mnist_small, count: int = 4) -> np.ndarray:  # noqa: ANN001
    """Foreground (1) where a digit's stroke is, background (0) elsewhere: i64[count, 28, 28]."""
    return (mnist_small[0][:count, ..., 0] > 127).astype(np.int64)


# -- the networks ---------------------------------------------------------------------------------


def test_instance_normalize_is_torch_s_instance_norm() -> None:
    x = torch.randn(3, 5, 7, 9)
    torch.testing.assert_close(instance_normalize(x), F.instance_norm(x), atol=1e-5, rtol=1e-5)


def test_spade_modulates_each_pixel_from_the_mask_around_it() -> None:
    torch.manual_seed(0)
    spade = SPADE(4, 2)
    for conv in (spade.gamma, spade.beta):  # zero at init: a plain norm
        torch.nn.init.normal_(conv.weight, std=0.5)
    x = torch.randn(1, 4, 21, 21)
    labels = torch.zeros(1, 21, 21, dtype=torch.long)
    plain = spade(x, one_hot_masks(labels, 2))
    labels[0, 10, 10] = 1  # one foreground pixel
    changed = (spade(x, one_hot_masks(labels, 2)) - plain).abs().sum(dim=1)[0] > 1e-6
    rows, cols = torch.nonzero(changed, as_tuple=True)
    assert changed[10, 10]
    # two 3x3 convs between the mask and gamma/beta: a radius of 2 pixels, no further
    assert rows.min() >= 8 and rows.max() <= 12 and cols.min() >= 8 and cols.max() <= 12
    fresh = SPADE(4, 2)  # zero-initialised gamma and beta: the mask does not matter yet
    torch.testing.assert_close(fresh(x, one_hot_masks(labels, 2)), instance_normalize(x))


def test_generator_takes_any_size_and_its_code() -> None:
    torch.manual_seed(0)
    generator = SPADEGenerator(labels=2, channels=3, width=8, noise=4)
    for h, w in ((28, 28), (17, 23), (32, 64)):
        mask = one_hot_masks(torch.randint(0, 2, (2, h, w)), 2)
        assert generator(mask, torch.randn(2, 4)).shape == (2, 3, h, w)
    mask = one_hot_masks(torch.randint(0, 2, (1, 28, 28)), 2)
    with torch.no_grad():
        first, second = generator(mask, torch.randn(1, 4)), generator(mask, torch.randn(1, 4))
    assert not torch.allclose(first, second)  # the code reaches the image


def test_masks_are_the_plain_image_s_foreground(registry: Registry) -> None:
    spec = DataSpec(4, 1, ("a",), ("plain", "styled"))
    variant = registry.create("spade", {"width": 8, "d_width": 8, "threshold": 0.5}, spec)
    plain = torch.tensor([[[[-1.0, 0.6], [0.4, 1.0]]]])
    assert torch.equal(variant.masks(plain).argmax(dim=1), torch.tensor([[[0, 1], [0, 1]]]))
    with pytest.raises(ConfigError, match="pairs of two domains"):
        registry.create("spade", {}, DataSpec(4, 1, ("a",), ("plain",)))


def test_mask_consistency_trains_the_segmenter_on_real_pairs_and_reaches_the_generator(
    registry: Registry,
) -> None:
    """The segmenter learns from the real pairs only (the discriminator's loss never moves
    the generator); the generator's loss carries the segmenter's cross-entropy on its own
    image, so its gradient changes with the weight and vanishes without the term."""
    spec = DataSpec(4, 3, ("a",), ("plain", "styled"))
    torch.manual_seed(0)
    plain = torch.rand(4, 3, 16, 16) * 2 - 1
    batch = {"image": plain, "target": torch.rand(4, 3, 16, 16) * 2 - 1}
    recipe = {"width": 8, "d_width": 8, "noise": 4, "mode_seeking": 0.0}
    gradients = {}
    for weight in (0.0, 1.0, 10.0):
        torch.manual_seed(1)
        variant = registry.create("spade", recipe | {"segmentation": weight}, spec, seed=0)
        assert ("segmenter" in variant.discriminator) == (weight > 0)
        d_out = variant.discriminator_loss(batch)
        d_out.loss.backward()
        assert all(p.grad is None for p in variant.generator.parameters())
        if weight > 0:
            segmenter = variant.discriminator["segmenter"]
            assert all(p.grad is not None for p in segmenter.parameters())
            # the same loss on (real, mask) by hand: what the segmenter learns
            mask = variant.masks(plain).argmax(dim=1)
            expected = F.cross_entropy(segmenter(batch["target"]), mask)
            assert d_out.logs["segmenter"] == pytest.approx(expected.item(), rel=1e-5)
        variant.discriminator.zero_grad(set_to_none=True)
        torch.manual_seed(2)  # the same style codes for every weight
        g_out = variant.generator_loss(batch)
        assert ("mask_consistency" in g_out.logs) == (weight > 0)
        g_out.loss.backward()
        head = variant.generator.head.weight.grad
        gradients[weight] = head.clone()
    # the generators start equal (seed 1), so their gradients differ only by the term
    assert not torch.allclose(gradients[1.0], gradients[0.0])
    torch.testing.assert_close(
        gradients[10.0] - gradients[0.0],
        10 * (gradients[1.0] - gradients[0.0]),
        rtol=1e-3,
        atol=1e-6,
    )


# -- the exported model ---------------------------------------------------------------------------


def test_the_same_mask_with_two_codes_gives_two_images(model: Path, mnist_small) -> None:  # noqa: ANN001
    generator = OnnxGenerator(model, task="mask2image")
    assert generator.mask_labels == MASK_LABELS and generator.info.latent_dim == 4
    masks = digit_masks(mnist_small)
    first = generator.from_mask(masks, seed=1)
    assert first.shape == (4, 1, 28, 28) and first.min() >= -1 and first.max() <= 1
    np.testing.assert_allclose(first, generator.from_mask(masks, seed=1, batch_size=3), atol=1e-5)
    other = generator.from_mask(masks, seed=2)
    assert np.abs(first - other).mean() > 1e-3  # another style code, another image


def test_bad_masks_and_models_are_one_line_errors(model: Path, tiny_models) -> None:  # noqa: ANN001
    generator = OnnxGenerator(model, task="mask2image")
    with pytest.raises(DataError, match=r"hold label 2, which the model does not know \(labels: 0"):
        generator.from_mask(np.full((1, 8, 8), 2))
    with pytest.raises(DataError, match="integer label maps N x H x W, got float32"):
        generator.from_mask(np.zeros((1, 8, 8), np.float32))
    with pytest.raises(DataError, match="integer label maps"):
        generator.from_mask(np.zeros((8, 8), np.int64))
    with pytest.raises(ModelError, match="is a 'translate' model"):
        OnnxGenerator(tiny_models["translate"], task="mask2image")
    with pytest.raises(ModelError, match="is a 'mask2image' model, not 'translate'"):
        generator.translate(np.zeros((1, 1, 8, 8), np.float32))


# -- the transform ---------------------------------------------------------------------------------


def test_gan_from_mask_makes_a_new_image_and_keeps_the_mask(model: Path, mnist_small) -> None:  # noqa: ANN001
    image = mnist_small[0][5]
    mask = (image[..., 0] > 127).astype(np.uint8) * 255  # a 0/255 mask
    compose = A.Compose([GANFromMask(model, labels={0: 0, 255: 1}, p=1.0)], seed=3)
    out = compose(image=image, mask=mask)
    assert np.array_equal(out["mask"], mask)
    assert out["image"].shape == image.shape and out["image"].dtype == np.uint8
    assert not np.array_equal(out["image"], image)
    again = A.Compose([GANFromMask(model, labels={0: 0, 255: 1}, p=1.0)], seed=3)
    assert np.array_equal(again(image=image, mask=mask)["image"], out["image"])
    second = compose(image=image, mask=mask)["image"]  # the next call: a new style code
    assert not np.array_equal(second, out["image"])
    saved = A.to_dict(compose)
    assert saved["transform"]["transforms"][0]["labels"] == {0: 0, 255: 1}
    restored = A.from_dict(saved)
    restored.set_random_seed(3)
    compose.set_random_seed(3)
    assert np.array_equal(restored(image=image, mask=mask)["image"], out["image"])
    colour = compose(image=np.zeros((28, 28, 3), np.float32), mask=mask)["image"]
    assert colour.shape == (28, 28, 3) and colour.dtype == np.float32


def test_gan_from_mask_names_what_is_wrong(model: Path) -> None:
    image, mask = np.zeros((8, 8), np.uint8), np.full((8, 8), 7, np.uint8)
    with pytest.raises(ValueError, match=r"GANFromMask requires \['mask'\] missing keys"):
        GANFromMask(model, p=1.0)(image=image)  # albumentations' own check
    with pytest.raises(DataError, match="hold label 7, which the model does not know"):
        GANFromMask(model, p=1.0)(image=image, mask=mask)
    with pytest.raises(DataError, match=r"mask value 7 is not in labels \{0: 0, 255: 1\}"):
        GANFromMask(model, labels={0: 0, 255: 1}, p=1.0)(image=image, mask=mask)
    with pytest.raises(DataError, match="maps onto 5, but .* knows labels 0..1"):
        GANFromMask(model, labels={0: 5})
    with pytest.raises(ValueError, match="Height and Width of image, mask or masks should be"):
        A.Compose([GANFromMask(model, p=1.0)])(image=image, mask=mask[:6, :6])  # (a Compose)
