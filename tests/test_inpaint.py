"""Inpainting: the holes it trains on, its networks and loss, the exported contract (known
pixels untouched exactly), the runtime's checks, the transform, the CLI and the stage's
measures."""

from __future__ import annotations

import json
from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import torch
from tiny import outputs

from augment.cli import main as cli
from augment.data.batches import TrainingData
from augment.data.images import read_image, write_png
from augment.errors import DataError, ModelError
from augment.export import export_onnx
from augment.inpaint import (
    PSNR_CAP,
    InpaintConfig,
    grown,
    hole_quality,
    inpaint_dataset,
    report_markdown,
    seeded_holes,
)
from augment.nn.inpaint import (
    CompletionNetwork,
    GlobalLocalCritic,
    composite,
    critic_doublings,
    crop_around,
    reconstruction_loss,
)
from augment.registry import Registry
from augment.runtime import OnnxGenerator, from_uint8, to_uint8
from augment.tasks.inpaint import random_holes
from augment.train import TrainConfig, fit
from augment.transforms import GANInpaint
from augment.variant import DataSpec

SPEC = DataSpec(28, 1, tuple(str(k) for k in range(10)))


@pytest.fixture(scope="module")
def model(registry: Registry, mnist_small, tmp_path_factory) -> Path:  # noqa: ANN001
    """An inpaint model trained 60 steps on the small MNIST sample, exported."""
    root = tmp_path_factory.mktemp("inpaint")
    variant = registry.create("inpaint", {"width": 8, "d_width": 8}, SPEC, seed=0)
    config = TrainConfig(steps=60, batch_size=16, checkpoint_every=60, sample_every=60)
    fit(variant, TrainingData(*mnist_small), config, outputs(root), seed=0, progress=False)
    export_onnx(variant, variant.generator.eval(), root / "inpaint.onnx")
    return root / "inpaint.onnx"


# -- holes, networks, loss ----------------------------------------------------------------------


def test_random_holes_lie_inside_their_range_and_their_boxes() -> None:
    rng = torch.Generator().manual_seed(0)
    mask, boxes = random_holes(200, 28, 20, 1, (0.25, 0.5), rng)
    assert mask.shape == (200, 1, 28, 20) and set(mask.unique().tolist()) == {0.0, 1.0}
    heights, widths = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert heights.min() >= 7 and heights.max() <= 14  # 0.25 * 28 .. 0.5 * 28
    assert widths.min() >= 5 and widths.max() <= 10
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 28).all() and (boxes[:, 3] <= 20).all()
    for k in (0, 57, 199):  # one hole: the mask is exactly its box
        top, left, bottom, right = boxes[k].tolist()
        expected = torch.zeros(28, 20)
        expected[top:bottom, left:right] = 1
        assert torch.equal(mask[k, 0], expected)
    again, _ = random_holes(200, 28, 20, 1, (0.25, 0.5), torch.Generator().manual_seed(0))
    assert torch.equal(mask, again)
    several, _ = random_holes(50, 28, 28, 3, (0.1, 0.2), rng)
    assert (several.sum(dim=(1, 2, 3)) > 0).all()


def test_crop_around_centres_the_box_and_stays_inside() -> None:
    images = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8)
    boxes = torch.tensor([[3, 3, 5, 5], [0, 6, 1, 8]])  # centred; at the top-right corner
    patch = crop_around(images, boxes, 4)
    assert torch.equal(patch[0], images[0, :, 2:6, 2:6])
    assert torch.equal(patch[1], images[1, :, 0:4, 4:8])  # shifted inside the image
    images.requires_grad_(True)
    crop_around(images, boxes, 4).sum().backward()
    assert images.grad.sum() == 2 * 16  # each patch pixel once


def test_reconstruction_loss_counts_the_hole_pixels_only() -> None:
    image = torch.zeros(1, 2, 2, 2)
    predicted = torch.tensor([[[[1.0, 3.0], [5.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]]])
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    # one hole pixel, two channels: (1^2 + 1^2) / (2 * 1)
    assert reconstruction_loss(predicted, image, mask).item() == pytest.approx(1.0)
    assert reconstruction_loss(predicted, image, torch.zeros_like(mask)).item() == 0.0


def test_the_composite_keeps_known_pixels_exactly() -> None:
    image = torch.rand(4, 3, 9, 11) * 2 - 1
    predicted = torch.full_like(image, 1e6)
    mask, _ = random_holes(4, 9, 11, 2, (0.2, 0.6), torch.Generator().manual_seed(1))
    out = composite(image, predicted, mask)
    known = (mask == 0).expand_as(image)
    assert torch.equal(out[known], image[known])
    assert (out[~known] == 1e6).all()


def test_networks_take_any_size_and_the_local_critic_reads_the_box() -> None:
    network = CompletionNetwork(3, width=8, dilations=(2, 4))
    for h, w in ((28, 28), (17, 23), (64, 40)):
        assert network(torch.zeros(2, 3, h, w), torch.zeros(2, 1, h, w)).shape == (2, 3, h, w)
    critic = GlobalLocalCritic(1, 28, width=8)
    image, boxes = torch.randn(3, 1, 28, 28), torch.tensor([[0, 0, 4, 4]] * 3)
    assert critic(image, boxes).shape == (3,)
    far = image.clone()
    far[:, :, 20:, 20:] = 5.0  # outside the local patch around the box
    near = image.clone()
    near[:, :, :8, :8] = 5.0  # inside it
    local_only = GlobalLocalCritic(1, 28, width=8).eval()
    local_only.global_body = Blind(8 * 2 ** (critic_doublings(28) - 1))
    with torch.no_grad():
        same = local_only(far, boxes), local_only(image, boxes), local_only(near, boxes)
    torch.testing.assert_close(same[0], same[1])  # only the patch around the box is read
    assert not torch.allclose(same[2], same[1])


class Blind(torch.nn.Module):
    """A critic body that sees nothing: zero features of ``channels``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return image.new_zeros(len(image), self.channels, 1, 1)


def test_bad_recipes_are_config_errors(registry: Registry) -> None:
    from augment.errors import ConfigError

    for params in ({"hole_min": 0.6, "hole_max": 0.3}, {"dilations": [2, 0]}, {"holes": 0}):
        with pytest.raises(ConfigError):
            registry.create("inpaint", params, SPEC)


# -- the exported model ------------------------------------------------------------------------


def test_exported_model_fills_holes_and_leaves_the_rest(model: Path, mnist_small) -> None:  # noqa: ANN001
    generator = OnnxGenerator(model, task="inpaint")
    images = from_uint8(mnist_small[0][:16])
    masks, _ = seeded_holes(16, 28, 28, (0.25, 0.5), seed=3)
    filled = generator.inpaint(images, masks, batch_size=5)
    known = np.broadcast_to(~masks[:, None], images.shape)
    assert np.array_equal(filled[known], images[known])
    assert not np.array_equal(filled[~known], images[~known])
    assert np.array_equal(filled, generator.inpaint(images, masks[:, None]))  # N x 1 x H x W
    assert json.loads(generator.info.extra["hole_range"]) == [0.25, 0.5]


def test_bad_masks_and_models_are_one_line_errors(model: Path, tiny_models) -> None:  # noqa: ANN001
    generator = OnnxGenerator(model, task="inpaint")
    images = np.zeros((2, 1, 28, 28), np.float32)
    holes = np.zeros((2, 28, 28), bool)
    holes[:, 5:9, 5:9] = True
    with pytest.raises(DataError, match=r"masks of shape \(2, 20, 28\) do not match"):
        generator.inpaint(images, holes[:, :20])
    none = holes.copy()
    none[1] = False
    with pytest.raises(DataError, match="the mask of image 1 has no hole"):
        generator.inpaint(images, none)
    with pytest.raises(DataError, match="the mask of image 0 has nothing but holes"):
        generator.inpaint(images, np.ones_like(holes))
    with pytest.raises(ModelError, match="is a 'translate' model"):
        OnnxGenerator(tiny_models["translate"], task="inpaint")
    with pytest.raises(ModelError, match="is a 'inpaint' model, not 'upscale'"):
        generator.upscale(images)


# -- the transform ------------------------------------------------------------------------------


def test_gan_inpaint_fills_holes_keeps_masks_and_reproduces(model: Path, mnist_small) -> None:  # noqa: ANN001
    image = mnist_small[0][3]  # 28 x 28 x 1 uint8
    mask = (image[..., 0] > 100).astype(np.uint8)
    compose = A.Compose([GANInpaint(model, p=1.0)], seed=5)
    out = compose(image=image, mask=mask)
    assert out["image"].shape == image.shape and out["image"].dtype == np.uint8
    assert np.array_equal(out["mask"], mask)  # the segmentation mask keeps its labels
    changed = out["image"] != image
    assert changed.any()
    rows, cols = np.nonzero(changed[..., 0])
    area = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert area <= 14 * 14  # inside one hole of at most half the side
    again = A.Compose([GANInpaint(model, p=1.0)], seed=5)(image=image, mask=mask)
    assert np.array_equal(again["image"], out["image"])
    saved = A.to_dict(compose)
    restored = A.from_dict(saved)
    assert A.to_dict(restored) == saved
    restored.set_random_seed(5)
    compose.set_random_seed(5)
    assert np.array_equal(restored(image=image)["image"], compose(image=image)["image"])
    as_float = compose(image=image[..., 0].astype(np.float32) / 255)["image"]
    assert as_float.dtype == np.float32 and as_float.shape == (28, 28)


def test_gan_inpaint_refuses_whole_image_holes_and_bad_ranges(model: Path) -> None:
    whole = GANInpaint(model, hole_height_range=(28, 28), hole_width_range=(28, 28), p=1.0)
    with pytest.raises(DataError, match="the holes cover the whole 28x28 image"):
        whole(image=np.zeros((28, 28, 1), np.uint8))
    with pytest.raises(ValueError, match="hole_height_range"):
        GANInpaint(model, hole_height_range=(0.5, 0.2))


# -- the stage's measures and the CLI ----------------------------------------------------------


def test_hole_quality_against_hand_values() -> None:
    target = np.zeros((2, 8, 8, 1), np.uint8)
    output = target.copy()
    output[0, 2:4, 2:4] = 255  # every hole pixel wrong by 255: 0 dB
    boxes = np.array([[2, 2, 4, 4], [0, 0, 3, 3]])
    scores = hole_quality(output, target, boxes)
    assert scores["psnr"] == pytest.approx((0.0 + PSNR_CAP) / 2)  # the second: no error
    assert scores["ssim"] < 1  # over the 2x2 hole grown to 7x7: the first is wrong
    assert hole_quality(target, target, boxes) == {"psnr": PSNR_CAP, "ssim": 1.0}
    assert grown(np.array([2, 2, 4, 4]), 7, 8, 8) == (slice(0, 7), slice(0, 7))
    assert grown(np.array([0, 5, 8, 8]), 7, 8, 8) == (slice(0, 8), slice(1, 8))
    masks, boxes = seeded_holes(500, 28, 30, (0.25, 0.5), seed=1)
    sides = boxes[:, 2:] - boxes[:, :2]
    assert sides[:, 0].min() >= 7 and sides[:, 0].max() <= 14 and sides[:, 1].max() <= 15
    assert np.array_equal(masks.sum(axis=(1, 2)), sides.prod(axis=1))
    assert np.array_equal(masks, seeded_holes(500, 28, 30, (0.25, 0.5), seed=1)[0])
    with pytest.raises(ValueError, match="hole_range"):
        InpaintConfig(hole_range=(0.5, 1.0))


def test_inpaint_dataset_scores_every_method(model: Path, mnist_small) -> None:  # noqa: ANN001
    from augment.data.manifest import Manifest

    images, labels = mnist_small
    rows = [{"path": f"{k}.png", "label": str(labels[k]), "split": "test"} for k in range(24)]
    manifest = Manifest.from_rows(rows, Path("."))
    classes = list(manifest.classes)
    order = np.array([classes.index(str(labels[k])) for k in range(24)])

    def load(part: Manifest) -> tuple[np.ndarray, np.ndarray]:
        return images[:24], order

    generator = OnnxGenerator(model, task="inpaint")
    result, figure = inpaint_dataset(generator, manifest, InpaintConfig(grid=4), load)
    test = result.splits["test"]
    assert test.images == 24 and set(test.quality) == {"cut-out", "telea", "inpaint"}
    assert 0.0625 <= test.hole_fraction <= 0.25 and test.accuracy == {}
    assert figure.ndim == 3 and figure.shape[1] > figure.shape[0] // 2  # four columns
    again, _ = inpaint_dataset(generator, manifest, InpaintConfig(grid=4), load)
    assert again.splits["test"].quality == test.quality  # seeded holes
    assert "| telea |" in report_markdown(result)


def test_cli_inpaints_a_folder_with_its_masks(model: Path, mnist_small, tmp_path, capsys) -> None:  # noqa: ANN001
    images = mnist_small[0][:3]
    for k, image in enumerate(images):
        write_png(tmp_path / "in" / "sub" / f"{k}.png", image)
        hole = np.zeros((28, 28, 1), np.uint8)
        hole[4:12, 6:14] = 255
        write_png(tmp_path / "masks" / "sub" / f"{k}.png", hole)
    args = [str(model), str(tmp_path / "in"), str(tmp_path / "masks")]
    assert cli(["inpaint", *args, str(tmp_path / "out")]) == 0
    assert "wrote 3 inpainted image(s)" in capsys.readouterr().out
    for k, image in enumerate(images):
        out = read_image(tmp_path / "out" / "sub" / f"{k}.png", channels=1)
        outside = np.ones((28, 28, 1), bool)
        outside[4:12, 6:14] = False
        assert np.array_equal(out[outside], image[outside])
    (tmp_path / "masks" / "sub" / "2.png").unlink()
    assert cli(["inpaint", *args, str(tmp_path / "out2")]) != 0
    assert "no mask for the input image sub/2.png" in capsys.readouterr().err
    assert not (tmp_path / "out2").exists()  # no partial output


def test_round_trip_of_uint8_through_the_model_range() -> None:
    """The transform and the CLI go u8 -> [-1, 1] -> u8: every value comes back."""
    values = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    assert np.array_equal(to_uint8(from_uint8(values)), values)
